"""Enterprise customers (企业客户, B2B) as operators manage them: register, invoice data, contacts, status,
credit, prepaid top-ups (预存款充值).

An enterprise pays from a ledger customer account (`enterprise:<code>`), exactly like a reseller: a top-up is
`ledger.top_up_customer` (D platform_cash C customer_prepaid), a purchase is an order paid with
`payments.balance.pay_order_from_balance`. Prices are in pricing.py, bulk purchases in purchases.py,
benefit campaigns in campaigns.py.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from quanyi.db import utcnow
from quanyi.enterprises.models import Enterprise, EnterpriseContact, EnterpriseStatus
from quanyi.errors import Conflict, InvalidInput, NotFound
from quanyi.ledger import service as ledger_service
from quanyi.ledger.models import CustomerAccount
from quanyi.orders.contact import normalize_contact

__all__ = [
    "EnterpriseNotFound", "EnterpriseExists", "ContactNotFound", "InvoiceData", "CONTACT_ROLES",
    "create_enterprise", "get_enterprise", "list_enterprises", "update_enterprise", "account_of", "add_contact",
    "remove_contact", "contacts_of", "top_up", "check_code", "statement", "EnterpriseSuspended", "check_not_suspended",
]

_CODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,47}$")
# 统一社会信用代码 (18 characters, no I O Z S V) or an older 15/17/20-character taxpayer number.
_TAX_NUMBER = re.compile(r"^(?:[0-9A-HJ-NPQRTUWXY]{18}|[0-9A-Z]{15}|[0-9A-Z]{17}|[0-9A-Z]{20})$")
_BANK_ACCOUNT = re.compile(r"^[0-9 -]{6,40}$")
CONTACT_ROLES = ("purchasing", "finance", "hr", "it", "other")


class EnterpriseNotFound(NotFound):
    code = "enterprise_not_found"


class EnterpriseExists(Conflict):
    code = "enterprise_exists"


class ContactNotFound(NotFound):
    code = "enterprise_contact_not_found"


class EnterpriseSuspended(Conflict):
    code = "enterprise_suspended"


def check_not_suspended(status: str) -> None:
    """A suspended enterprise's users still see everything (statement, purchases, codes, campaigns) and may wind
    down (cancel a purchase, end a campaign, disable a user, secure their own login, report a transfer), but start
    nothing new: no purchase, campaign, employees or portal user. Raises EnterpriseSuspended."""
    if status == EnterpriseStatus.SUSPENDED.value:
        raise EnterpriseSuspended("the enterprise's account is suspended: nothing new can be started until the shop "
                                  "reactivates it; please contact the shop")


@dataclass(frozen=True, slots=True)
class InvoiceData:
    """开票信息: what a VAT invoice (增值税发票) for the enterprise needs. Empty strings: not given."""

    invoice_title: str = ""
    tax_number: str = ""
    invoice_address: str = ""
    invoice_phone: str = ""
    bank_name: str = ""
    bank_account: str = ""
    invoice_email: str = ""

    def checked(self) -> InvoiceData:
        """The same data trimmed and validated; raises InvalidInput naming the field."""
        tax = self.tax_number.strip().upper()
        if tax and not _TAX_NUMBER.match(tax):
            raise InvalidInput("tax_number: a 统一社会信用代码 has 18 characters (digits and capitals without I O Z S "
                               "V); older taxpayer numbers 15, 17 or 20", field="tax_number")
        account = self.bank_account.strip()
        if account and not _BANK_ACCOUNT.match(account):
            raise InvalidInput("bank_account: 6-40 digits (spaces and dashes allowed)", field="bank_account")
        email = self.invoice_email.strip()
        if email:
            try:
                kind, email = normalize_contact(email)
            except ValueError as exc:
                raise InvalidInput(f"invoice_email: {exc}", field="invoice_email") from None
            if kind != "email":
                raise InvalidInput("invoice_email must be an e-mail address", field="invoice_email")
        return InvoiceData(invoice_title=self.invoice_title.strip()[:200], tax_number=tax,
                           invoice_address=self.invoice_address.strip()[:300],
                           invoice_phone=self.invoice_phone.strip()[:40], bank_name=self.bank_name.strip()[:200],
                           bank_account=account, invoice_email=email)


def check_code(code: str) -> str:
    if not _CODE.match(code):
        raise InvalidInput("enterprise code: 1-48 characters of letters, digits, _ . - (starting alphanumeric)")
    return code


def _apply_invoice(enterprise: Enterprise, invoice: InvoiceData) -> None:
    for name in InvoiceData.__dataclass_fields__:
        setattr(enterprise, name, getattr(invoice, name))


async def create_enterprise(
    *, session: AsyncSession, code: str, name: str, invoice: InvoiceData | None = None, credit_limit_cents: int = 0,
    currency: str = "CNY", now: dt.datetime | None = None,
) -> Enterprise:
    """Register an enterprise customer with a prepaid account at zero."""
    now = now or utcnow()
    check_code(code)
    if not name.strip():
        raise InvalidInput("name must not be empty")
    checked = (invoice or InvoiceData()).checked()
    if await session.scalar(select(Enterprise.id).where(Enterprise.code == code)) is not None:
        raise EnterpriseExists(f"enterprise {code} already exists")
    account = await ledger_service.open_customer_account(
        session=session, code=f"enterprise:{code}", name=name, currency=currency,
        credit_limit_cents=credit_limit_cents, now=now)
    enterprise = Enterprise(code=code, name=name.strip()[:200], status=EnterpriseStatus.ACTIVE.value,
                            account_id=account.id, created_at=now, updated_at=now)
    _apply_invoice(enterprise, checked)
    try:
        async with session.begin_nested():  # a concurrent registration of the same code loses here
            session.add(enterprise)
            await session.flush()
    except IntegrityError:
        raise EnterpriseExists(f"enterprise {code} already exists") from None
    return enterprise


async def get_enterprise(*, session: AsyncSession, code: str) -> Enterprise:
    enterprise = await session.scalar(select(Enterprise).where(Enterprise.code == code))
    if enterprise is None:
        raise EnterpriseNotFound(f"no enterprise {code!r}")
    return enterprise


async def list_enterprises(*, session: AsyncSession) -> Sequence[Enterprise]:
    return (await session.scalars(select(Enterprise).order_by(Enterprise.code))).all()


async def account_of(*, session: AsyncSession, enterprise: Enterprise) -> CustomerAccount:
    return await ledger_service.get_customer_account(session=session, account_id=enterprise.account_id)


async def update_enterprise(
    *, session: AsyncSession, code: str, name: str | None = None, status: EnterpriseStatus | None = None,
    invoice: InvoiceData | None = None, credit_limit_cents: int | None = None, now: dt.datetime | None = None,
) -> Enterprise:
    """Change name, invoice data, credit limit or status; suspending freezes the prepaid account (nothing is
    paid from it until it is active again)."""
    now = now or utcnow()
    enterprise = await get_enterprise(session=session, code=code)
    if name is not None:
        if not name.strip():
            raise InvalidInput("name must not be empty")
        enterprise.name = name.strip()[:200]
    if invoice is not None:
        _apply_invoice(enterprise, invoice.checked())
    if credit_limit_cents is not None or status is not None:
        await ledger_service.set_customer_account(
            session=session, account_id=enterprise.account_id, credit_limit_cents=credit_limit_cents,
            frozen=None if status is None else status is EnterpriseStatus.SUSPENDED, now=now)
    if status is not None:
        enterprise.status = status.value
    enterprise.updated_at = now
    await session.flush()  # the session does not autoflush: readers of the account in this unit see the change
    return enterprise


async def contacts_of(*, session: AsyncSession, enterprise: Enterprise) -> Sequence[EnterpriseContact]:
    return (await session.scalars(select(EnterpriseContact).where(EnterpriseContact.enterprise_id == enterprise.id)
                                  .order_by(EnterpriseContact.id))).all()


async def add_contact(*, session: AsyncSession, code: str, name: str, role: str, email: str = "", phone: str = "",
                      now: dt.datetime | None = None) -> EnterpriseContact:
    """Add a contact person; at least one of e-mail and phone, each validated."""
    enterprise = await get_enterprise(session=session, code=code)
    if not name.strip():
        raise InvalidInput("contact name must not be empty")
    if role not in CONTACT_ROLES:
        raise InvalidInput(f"role must be one of {', '.join(CONTACT_ROLES)}")
    values = {}
    for field, given, want in (("email", email, "email"), ("phone", phone, "phone")):
        if given.strip():
            try:
                kind, value = normalize_contact(given)
            except ValueError as exc:
                raise InvalidInput(f"{field}: {exc}", field=field) from None
            if kind != want:
                raise InvalidInput(f"{field}: not a valid {'e-mail address' if want == 'email' else 'phone number'}",
                                   field=field)
            values[field] = value
    if not values:
        raise InvalidInput("a contact needs an e-mail address or a phone number")
    contact = EnterpriseContact(enterprise_id=enterprise.id, name=name.strip()[:100], role=role,
                                email=values.get("email", ""), phone=values.get("phone", ""),
                                created_at=now or utcnow())
    session.add(contact)
    await session.flush()
    return contact


async def remove_contact(*, session: AsyncSession, code: str, contact_id: int) -> None:
    enterprise = await get_enterprise(session=session, code=code)
    result = await session.execute(delete(EnterpriseContact).where(EnterpriseContact.id == contact_id,
                                                                   EnterpriseContact.enterprise_id == enterprise.id))
    if result.rowcount == 0:  # type: ignore[attr-defined]
        raise ContactNotFound(f"enterprise {code} has no contact {contact_id}")


async def top_up(*, session: AsyncSession, code: str, amount_cents: int, note: str, actor: str,
                 reference: str | None = None, gateway: str | None = None) -> tuple[CustomerAccount, bool]:
    """Record money the enterprise paid in (预存款充值), booked in the ledger; a repeated reference credits once.
    `gateway`: paid online through it (booked to its clearing account, not the shop's cash)."""
    enterprise = await get_enterprise(session=session, code=code)
    _, created = await ledger_service.top_up_customer(session=session, account_id=enterprise.account_id,
                                                      amount_cents=amount_cents, note=note, actor=actor,
                                                      reference=reference, gateway=gateway)
    return await account_of(session=session, enterprise=enterprise), created


async def statement(*, session: AsyncSession, code: str, start: dt.datetime, end: dt.datetime,
                    limit: int = 500) -> ledger_service.AccountStatement:
    """The enterprise's prepaid account statement (对账单) for [start, end): the ledger's own statement of
    `customer_prepaid:<account>` (a liability: money in is a credit, so its amounts are negative there)."""
    enterprise = await get_enterprise(session=session, code=code)
    return await ledger_service.customer_account_statement(session=session, account_id=enterprise.account_id,
                                                           start=start, end=end, limit=limit)
