"""Benefit campaigns (福利活动): an enterprise gives each employee on a roster goods worth up to a budget, picked
from a list of options; employees claim once on a mobile page (claim_pages.py) with a claim code or by logging in
through WeCom / DingTalk (oauth.py). Making, funding, ending and reporting a campaign: here; an employee's claim:
campaign_claims.py.

Money: activation moves headcount x budget from the enterprise's balance to the campaign's own customer account
(`campaign:<no>`, `ledger.transfer_between_customers`); each claim is an order paid from that account with
`pay_order_from_balance` (the normal payment path: delivered in the same transaction); at the end the rest goes
back to the enterprise under the campaign row lock, so exactly once (a refund of a claim arriving later is swept
back the same way). One claim per employee: the claim row is written first and its employee_id is unique.
"""

from __future__ import annotations

import datetime as dt
import re
import secrets
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from quanyi.catalog import service as catalog_service
from quanyi.catalog.models import DeliveryType, Sku
from quanyi.db import Database, utcnow
from quanyi.enterprises import pricing
from quanyi.enterprises import service as enterprises_service
from quanyi.enterprises.models import (
    Campaign,
    CampaignClaim,
    CampaignEmployee,
    CampaignOption,
    CampaignStatus,
    Enterprise,
)
from quanyi.errors import Conflict, InvalidInput, NotFound
from quanyi.inventory.crypto import CardKeyCipher
from quanyi.ledger import service as ledger_service
from quanyi.ledger.models import CustomerAccount, LedgerPosting
from quanyi.money import line_total
from quanyi.orders.contact import normalize_contact

__all__ = [
    "CampaignNotFound", "CampaignClosed", "EmployeeIn", "Option", "Report", "create_campaign", "get_campaign",
    "campaign_by_no", "list_campaigns", "add_employees", "activate_campaign", "options_of", "new_claim_code",
    "normalize_claim_code", "hash_claim_code", "end_campaign", "end_due_campaigns", "report", "roster_rows",
    "MAX_EMPLOYEES",
]

MAX_EMPLOYEES = 20_000
MAX_OPTIONS = 30
_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"  # no I L O 0 1: read aloud and typed on phones
_EMPLOYEE_NO = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class CampaignNotFound(NotFound):
    code = "campaign_not_found"


class CampaignClosed(Conflict):
    """Not open for claims: not active yet, before its start, or over."""

    code = "campaign_closed"


@dataclass(frozen=True, slots=True)
class EmployeeIn:
    employee_no: str
    name: str
    phone: str = ""
    email: str = ""
    wecom_userid: str = ""
    dingtalk_union_id: str = ""


@dataclass(frozen=True, slots=True)
class Option:
    sku: Sku
    unit_price_cents: int
    max_quantity: int  # how many the budget buys, within the SKU's order limits


@dataclass(frozen=True, slots=True)
class Report:
    campaign: Campaign
    enterprise_code: str
    employees: int
    claimed: int
    claimed_cents: int
    balance_cents: int  # still in the campaign's account
    by_option: list[tuple[str, int, int]]  # (SKU code, claims, items)
    by_via: dict[str, int]


def _new_no(prefix: str, length: int) -> str:
    return prefix + "".join(secrets.choice(_ALPHABET) for _ in range(length))


def new_claim_code() -> str:
    raw = "".join(secrets.choice(_ALPHABET) for _ in range(12))  # 59 bits
    return f"{raw[:4]}-{raw[4:8]}-{raw[8:]}"


def normalize_claim_code(text: str) -> str:
    return re.sub(r"[\s-]", "", unicodedata.normalize("NFKC", text)).upper()[:32]


def hash_claim_code(cipher: CardKeyCipher, campaign_no: str, code: str) -> bytes:
    """The keyed hash a roster keeps of an employee's claim code (the code itself is shown once)."""
    return cipher.fingerprint(f"claim:{campaign_no}:{normalize_claim_code(code)}")


async def create_campaign(
    *, session: AsyncSession, code: str, name: str, sku_codes: Sequence[str], starts_at: dt.datetime,
    ends_at: dt.datetime, budget_per_employee_cents: int | None = None, name_en: str = "", greeting: str = "",
    allow_wecom: bool = False, allow_dingtalk: bool = False, actor: str = "admin", now: dt.datetime | None = None,
) -> Campaign:
    """A campaign in draft with its options. Without a budget, each employee gets one item of their choice
    (the budget is the dearest option's price)."""
    now = now or utcnow()
    enterprise = await enterprises_service.get_enterprise(session=session, code=code)
    if not name.strip():
        raise InvalidInput("name must not be empty")
    if ends_at <= starts_at:
        raise InvalidInput("ends_at must be after starts_at")
    if ends_at <= now:
        raise InvalidInput("ends_at is already past")
    wanted = list(dict.fromkeys(c.strip().upper() for c in sku_codes))
    if not 1 <= len(wanted) <= MAX_OPTIONS:
        raise InvalidInput(f"list 1 to {MAX_OPTIONS} SKUs employees can choose from")
    account = await enterprises_service.account_of(session=session, enterprise=enterprise)
    priced: list[tuple[Sku, int]] = []
    for sku_code in wanted:
        sku = await catalog_service.get_sku_by_code(session=session, code=sku_code)
        if sku.delivery_type is not DeliveryType.CARD_KEY:
            raise InvalidInput(f"{sku.code} is not a card-key product: employees claim codes")
        if sku.currency != account.currency:
            raise InvalidInput(f"{sku.code} is sold in {sku.currency}, the enterprise pays in {account.currency}")
        priced.append((sku, await pricing.unit_price(session=session, enterprise_id=enterprise.id, sku=sku,
                                                     quantity=1)))
    budget = budget_per_employee_cents if budget_per_employee_cents is not None else max(p for _, p in priced)
    if not isinstance(budget, int) or budget <= 0:
        raise InvalidInput("budget_per_employee_cents must be a positive whole number of cents")
    if all(price > budget for _, price in priced):
        raise InvalidInput("no option fits in the budget per employee")
    campaign_no = _new_no("BC", 12)
    campaign_account = await ledger_service.open_customer_account(
        session=session, code=f"campaign:{campaign_no}", name=f"{enterprise.name} · {name}"[:200],
        currency=account.currency, now=now)
    campaign = Campaign(campaign_no=campaign_no, enterprise_id=enterprise.id, name=name.strip()[:200],
                        name_en=name_en.strip()[:200], greeting=greeting.strip()[:500],
                        budget_per_employee_cents=budget, currency=account.currency, account_id=campaign_account.id,
                        status=CampaignStatus.DRAFT.value, starts_at=starts_at, ends_at=ends_at,
                        allow_wecom=allow_wecom, allow_dingtalk=allow_dingtalk, funded_cents=0, returned_cents=0,
                        created_by=actor[:64], created_at=now)
    session.add(campaign)
    await session.flush()
    session.add_all([CampaignOption(campaign_id=campaign.id, sku_id=sku.id, unit_price_cents=price)
                     for sku, price in priced])
    await session.flush()
    return campaign


async def get_campaign(*, session: AsyncSession, code: str, campaign_no: str, lock: bool = False) -> Campaign:
    enterprise = await enterprises_service.get_enterprise(session=session, code=code)
    stmt = select(Campaign).where(Campaign.campaign_no == campaign_no, Campaign.enterprise_id == enterprise.id)
    found = await session.scalar(stmt.with_for_update().execution_options(populate_existing=True) if lock else stmt)
    if found is None:
        raise CampaignNotFound(f"enterprise {code} has no campaign {campaign_no!r}")
    return found


async def campaign_by_no(*, session: AsyncSession, campaign_no: str) -> tuple[Campaign, Enterprise]:
    """A campaign by its public number (claim pages); drafts do not exist for employees."""
    row = (await session.execute(select(Campaign, Enterprise).join(Enterprise, Enterprise.id == Campaign.enterprise_id)
                                 .where(Campaign.campaign_no == campaign_no))).first()
    if row is None or row[0].status == CampaignStatus.DRAFT.value:
        raise CampaignNotFound("no such campaign")
    return row[0], row[1]


async def list_campaigns(*, session: AsyncSession, code: str) -> Sequence[Campaign]:
    enterprise = await enterprises_service.get_enterprise(session=session, code=code)
    return (await session.scalars(select(Campaign).where(Campaign.enterprise_id == enterprise.id)
                                  .order_by(Campaign.id.desc()))).all()


async def options_of(*, session: AsyncSession, campaign: Campaign) -> list[Option]:
    rows = (await session.execute(select(CampaignOption, Sku).join(Sku, Sku.id == CampaignOption.sku_id)
                                  .where(CampaignOption.campaign_id == campaign.id)
                                  .order_by(CampaignOption.unit_price_cents, Sku.code))).all()
    options = []
    for option, _ in rows:
        sku = await catalog_service.get_sku(session=session, sku_id=option.sku_id)  # with its product
        fits = min(sku.max_quantity, campaign.budget_per_employee_cents // option.unit_price_cents)
        options.append(Option(sku=sku, unit_price_cents=option.unit_price_cents,
                              max_quantity=fits if fits >= sku.min_quantity else 0))
    return options


def _checked_employee(item: EmployeeIn) -> EmployeeIn:
    if not _EMPLOYEE_NO.match(item.employee_no):
        raise InvalidInput(f"employee_no {item.employee_no!r}: 1-64 letters, digits, _ . -")
    if not item.name.strip():
        raise InvalidInput(f"employee {item.employee_no}: name must not be empty")
    phone = email = ""
    if item.phone.strip():
        try:
            kind, phone = normalize_contact(item.phone)
        except ValueError:
            kind = ""
        if kind != "phone":
            raise InvalidInput(f"employee {item.employee_no}: not a valid mobile number")
    if item.email.strip():
        try:
            kind, email = normalize_contact(item.email)
        except ValueError:
            kind = ""
        if kind != "email":
            raise InvalidInput(f"employee {item.employee_no}: not a valid e-mail address")
    for value in (item.wecom_userid, item.dingtalk_union_id):
        if len(value) > 64 or any(ord(ch) < 32 for ch in value):
            raise InvalidInput(f"employee {item.employee_no}: WeCom / DingTalk ids are at most 64 characters")
    return EmployeeIn(employee_no=item.employee_no, name=item.name.strip()[:100], phone=phone, email=email,
                      wecom_userid=item.wecom_userid.strip(), dingtalk_union_id=item.dingtalk_union_id.strip())


async def add_employees(
    *, session: AsyncSession, cipher: CardKeyCipher, code: str, campaign_no: str, employees: Sequence[EmployeeIn],
    actor: str = "admin", now: dt.datetime | None = None,
) -> list[tuple[CampaignEmployee, str]]:
    """Put employees on the roster; returns each with its claim code, shown this once (only a keyed hash is
    kept). On an active campaign their budget is taken from the enterprise's balance in the same transaction."""
    now = now or utcnow()
    campaign = await get_campaign(session=session, code=code, campaign_no=campaign_no, lock=True)
    if campaign.status == CampaignStatus.ENDED.value:
        raise CampaignClosed(f"campaign {campaign_no} has ended")
    checked = [_checked_employee(item) for item in employees]
    if not checked:
        raise InvalidInput("no employees given")
    numbers = [item.employee_no for item in checked]
    if len(set(numbers)) != len(numbers):
        raise InvalidInput("an employee_no appears twice in the list")
    count = int(await session.scalar(select(func.count()).select_from(CampaignEmployee)
                                     .where(CampaignEmployee.campaign_id == campaign.id)) or 0)
    if count + len(checked) > MAX_EMPLOYEES:
        raise InvalidInput(f"a campaign has at most {MAX_EMPLOYEES} employees")
    issued = []
    for item in checked:
        claim_code = new_claim_code()
        row = CampaignEmployee(campaign_id=campaign.id, employee_no=item.employee_no, name=item.name,
                               phone=item.phone, email=item.email, wecom_userid=item.wecom_userid or None,
                               dingtalk_union_id=item.dingtalk_union_id or None,
                               claim_code_hash=hash_claim_code(cipher, campaign.campaign_no, claim_code),
                               created_at=now)
        session.add(row)
        issued.append((row, claim_code))
    try:
        async with session.begin_nested():
            await session.flush()
    except IntegrityError:
        raise Conflict("an employee_no, WeCom user id or DingTalk union id is already on this campaign's roster") \
            from None
    if campaign.status == CampaignStatus.ACTIVE.value:
        amount = line_total(campaign.budget_per_employee_cents, len(issued))
        await _fund(session, campaign, amount, f"campaign_fund:{campaign.campaign_no}:{issued[0][0].id}", actor, now)
    return issued


async def _fund(session: AsyncSession, campaign: Campaign, amount: int, reference: str, actor: str,
                now: dt.datetime) -> None:
    enterprise = await session.get(Enterprise, campaign.enterprise_id)
    assert enterprise is not None
    await ledger_service.transfer_between_customers(
        session=session, from_account_id=enterprise.account_id, to_account_id=campaign.account_id,
        amount_cents=amount, reference=reference, actor=actor, now=now,
        memo=f"budget of benefit campaign {campaign.campaign_no}")
    campaign.funded_cents += amount


async def activate_campaign(*, session: AsyncSession, code: str, campaign_no: str, actor: str = "admin",
                            now: dt.datetime | None = None) -> Campaign:
    """Fund the campaign (headcount x budget from the enterprise's balance) and open it. The options are
    priced again at the enterprise's tier for the headcount (tiers never rise, so never dearer)."""
    now = now or utcnow()
    campaign = await get_campaign(session=session, code=code, campaign_no=campaign_no, lock=True)
    if campaign.status != CampaignStatus.DRAFT.value:
        raise Conflict(f"campaign {campaign_no} is {campaign.status}; only a draft is activated")
    if campaign.ends_at <= now:
        raise CampaignClosed("this campaign's end is already past; change the dates")
    headcount = int(await session.scalar(select(func.count()).select_from(CampaignEmployee)
                                         .where(CampaignEmployee.campaign_id == campaign.id)) or 0)
    if headcount == 0:
        raise InvalidInput("add employees before activating the campaign")
    for option in (await session.scalars(select(CampaignOption).where(
            CampaignOption.campaign_id == campaign.id))).all():
        sku = await catalog_service.get_sku(session=session, sku_id=option.sku_id)
        option.unit_price_cents = await pricing.unit_price(session=session, enterprise_id=campaign.enterprise_id,
                                                           sku=sku, quantity=headcount)
    await _fund(session, campaign, line_total(campaign.budget_per_employee_cents, headcount),
                f"campaign_fund:{campaign.campaign_no}", actor, now)
    campaign.status, campaign.activated_at = CampaignStatus.ACTIVE.value, now
    await session.flush()
    return campaign


async def end_campaign(*, session: AsyncSession, campaign: Campaign, actor: str = "system",
                       now: dt.datetime | None = None) -> int:
    """Close a campaign and return what is left in its account to the enterprise; returns the cents returned.
    Under the campaign row lock and moving exactly the account's balance, so it returns once; called again
    (a claim refunded after the end) it returns only what came back since."""
    now = now or utcnow()
    locked = await session.scalar(select(Campaign).where(Campaign.id == campaign.id).with_for_update()
                                  .execution_options(populate_existing=True))
    assert locked is not None
    if locked.status == CampaignStatus.DRAFT.value:
        raise Conflict("a draft campaign is not running; there is nothing to end")
    enterprise = await session.get(Enterprise, locked.enterprise_id)
    assert enterprise is not None
    first = locked.status == CampaignStatus.ACTIVE.value
    if first:
        locked.status, locked.ended_at = CampaignStatus.ENDED.value, now
        # No claim is paid from it any more (a claim racing the end finds it frozen, or empty).
        await ledger_service.set_customer_account(session=session, account_id=locked.account_id, frozen=True,
                                                  now=now)
    # Later sweeps get their own reference (numbered under the lock); the amount is the balance read under it.
    earlier = int(await session.scalar(select(func.count()).select_from(LedgerPosting).where(
        LedgerPosting.reference.like(f"customer_transfer:campaign_return:{locked.campaign_no}%"))) or 0)
    reference = f"campaign_return:{locked.campaign_no}" + (f":{earlier + 1}" if earlier else "")
    _, moved = await ledger_service.transfer_between_customers(
        session=session, from_account_id=locked.account_id, to_account_id=enterprise.account_id, amount_cents=None,
        reference=reference, actor=actor, require_active=False, now=now,
        memo=f"unclaimed budget of benefit campaign {locked.campaign_no}")
    locked.returned_cents += moved
    await session.flush()
    return moved


async def end_due_campaigns(*, db: Database, now: dt.datetime | None = None) -> int:
    """End active campaigns whose end has come, and sweep back money refunded into ended ones. Every process
    may run this: the campaign row lock makes each return happen once."""
    now = now or utcnow()
    async with db.read_session() as session:
        due = (await session.scalars(select(Campaign.id).where(
            Campaign.status == CampaignStatus.ACTIVE.value, Campaign.ends_at <= now))).all()
        refunded = (await session.scalars(select(Campaign.id).join(
            CustomerAccount, CustomerAccount.id == Campaign.account_id).where(
            Campaign.status == CampaignStatus.ENDED.value, CustomerAccount.balance_cents > 0))).all()
    count = 0
    for campaign_id in [*due, *refunded]:
        async with db.transaction() as session:
            campaign = await session.get(Campaign, campaign_id)
            assert campaign is not None
            await end_campaign(session=session, campaign=campaign, now=now)
            count += 1
    return count


async def report(*, session: AsyncSession, campaign: Campaign) -> Report:
    enterprise = await session.get(Enterprise, campaign.enterprise_id)
    account = await ledger_service.get_customer_account(session=session, account_id=campaign.account_id)
    employees = int(await session.scalar(select(func.count()).select_from(CampaignEmployee)
                                         .where(CampaignEmployee.campaign_id == campaign.id)) or 0)
    claims = (await session.execute(select(CampaignClaim, Sku.code).join(Sku, Sku.id == CampaignClaim.sku_id)
                                    .where(CampaignClaim.campaign_id == campaign.id))).all()
    by_option: dict[str, list[int]] = {}
    by_via: dict[str, int] = {}
    for row, sku_code in claims:
        entry = by_option.setdefault(sku_code, [0, 0])
        entry[0] += 1
        entry[1] += row.quantity
        by_via[row.via] = by_via.get(row.via, 0) + 1
    return Report(campaign=campaign, enterprise_code=enterprise.code if enterprise else "?", employees=employees,
                  claimed=len(claims), claimed_cents=sum(row.amount_cents for row, _ in claims),
                  balance_cents=account.balance_cents,
                  by_option=sorted((code, n, items) for code, (n, items) in by_option.items()), by_via=by_via)


async def roster_rows(*, session: AsyncSession, campaign: Campaign) -> list[list[object]]:
    """One row per employee for the report file: who claimed what and when (no codes)."""
    rows = (await session.execute(
        select(CampaignEmployee, CampaignClaim, Sku.code)
        .outerjoin(CampaignClaim, CampaignClaim.employee_id == CampaignEmployee.id)
        .outerjoin(Sku, Sku.id == CampaignClaim.sku_id)
        .where(CampaignEmployee.campaign_id == campaign.id).order_by(CampaignEmployee.employee_no))).all()
    return [[e.employee_no, e.name, "yes" if c else "no", sku_code, c.quantity if c else None,
             c.amount_cents if c else None, c.via if c else None, c.claimed_at if c else None]
            for e, c, sku_code in rows]
