"""Customer prepaid balances (客户预存款): resellers (下游) and enterprise customers pay orders from them.

One mechanism for every kind of account customer: an account is opened once (`open_customer_account`),
money paid in is recorded as a top-up, an order paid from the balance is one conditional UPDATE
(`charge_customer`, called by the `balance` payment method in `payments.balance`), and refunds of such a
payment credit the balance back (`refund_customer_charge`, called by the balance gateway's refund).

Ledger (D = debit, C = credit; `customer_prepaid:<id>` is a liability: money we hold for the customer):
- top-up:   D platform_cash                 C customer_prepaid:<id>      (money that came to the shop's bank
            account: a bank transfer an operator confirmed, or an operator's own top-up)
            D gateway_clearing:<gateway>   C customer_prepaid:<id>      (paid online through a gateway: the same
            clearing account as order payments, so the gateway's statement finds it; see `top_up_customer`)
- payment:  D customer_prepaid:<id>         C gateway_clearing:balance   (the payment itself posts
            D gateway_clearing:balance C customer_liability, like any gateway's)
- refund:   D gateway_clearing:balance      C customer_prepaid:<id>      (refund_paid posts the other side)
- transfer: D customer_prepaid:<from>       C customer_prepaid:<to>      (an enterprise funding a benefit
            campaign's own account, and the campaign's unspent rest going back: `transfer_between_customers`)
so `gateway_clearing:balance` returns to zero for every payment and refund.
"""

from __future__ import annotations

import datetime as dt
import re
import secrets
from collections import defaultdict

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from quanyi.db import utcnow
from quanyi.errors import Conflict, DomainError, InvalidInput, NotFound
from quanyi.ledger import accounts
from quanyi.ledger.models import CustomerAccount, CustomerAccountStatus, CustomerCharge, LedgerEntry, LedgerPosting
from quanyi.ledger.postings import Line, account_balances, post
from quanyi.money import CURRENCIES, MAX_AMOUNT_CENTS

__all__ = [
    "CustomerAccountNotFound", "CustomerAccountExists", "CustomerBalanceInsufficient", "CustomerAccountFrozen",
    "CustomerChargeNotFound", "InvalidCustomerAmount", "open_customer_account", "get_customer_account",
    "customer_account_by_code", "set_customer_account", "top_up_customer", "charge_customer", "charge_for_payment",
    "refund_customer_charge", "customer_refund_posted", "customer_balance_drift", "transfer_between_customers",
]

_CODE = re.compile(r"^[a-z]+:[A-Za-z0-9_.-]{1,48}$")


class CustomerAccountNotFound(NotFound):
    code = "customer_account_not_found"


class CustomerAccountExists(Conflict):
    code = "customer_account_exists"


class CustomerBalanceInsufficient(DomainError):
    """The balance (plus credit) does not cover the payment; nothing was taken."""

    code = "insufficient_balance"


class CustomerAccountFrozen(DomainError):
    code = "customer_account_frozen"


class CustomerChargeNotFound(NotFound):
    code = "customer_charge_not_found"


class InvalidCustomerAmount(InvalidInput):
    code = "invalid_ledger_amount"


def _check_amount(amount_cents: int) -> None:
    if not isinstance(amount_cents, int) or isinstance(amount_cents, bool) or not 0 < amount_cents <= MAX_AMOUNT_CENTS:
        raise InvalidCustomerAmount(f"amount must be a positive whole number of cents up to {MAX_AMOUNT_CENTS}")


async def open_customer_account(
    *, session: AsyncSession, code: str, name: str, currency: str = "CNY", credit_limit_cents: int = 0,
    now: dt.datetime | None = None,
) -> CustomerAccount:
    """Open a customer's prepaid account at zero. `code` is `<kind>:<key>`, e.g. `reseller:R001`."""
    if not _CODE.match(code):
        raise InvalidInput(f"account code {code!r} must look like 'reseller:R001'")
    if currency not in CURRENCIES:
        raise InvalidInput(f"unknown currency {currency!r}")
    if not isinstance(credit_limit_cents, int) or not 0 <= credit_limit_cents <= MAX_AMOUNT_CENTS:
        raise InvalidCustomerAmount("credit limit must be whole cents, 0 or more")
    now = now or utcnow()
    account = CustomerAccount(code=code, name=name[:200], currency=currency, credit_limit_cents=credit_limit_cents,
                              balance_cents=0, status=CustomerAccountStatus.ACTIVE.value, created_at=now,
                              updated_at=now)
    try:
        async with session.begin_nested():  # a concurrent opener wins the unique code; we say so
            session.add(account)
            await session.flush()
    except IntegrityError:
        raise CustomerAccountExists(f"customer account {code} already exists") from None
    return account


async def get_customer_account(*, session: AsyncSession, account_id: int, lock: bool = False) -> CustomerAccount:
    stmt = select(CustomerAccount).where(CustomerAccount.id == account_id).execution_options(populate_existing=True)
    account = await session.scalar(stmt.with_for_update() if lock else stmt)
    if account is None:
        raise CustomerAccountNotFound(f"no customer account {account_id}")
    return account


async def customer_account_by_code(*, session: AsyncSession, code: str) -> CustomerAccount:
    account = await session.scalar(select(CustomerAccount).where(CustomerAccount.code == code))
    if account is None:
        raise CustomerAccountNotFound(f"no customer account {code!r}")
    return account


async def set_customer_account(
    *, session: AsyncSession, account_id: int, credit_limit_cents: int | None = None, frozen: bool | None = None,
    now: dt.datetime | None = None,
) -> CustomerAccount:
    """Change an account's credit limit or freeze it. A lower limit never applies to money already spent: it
    is refused while the balance is below the new limit."""
    now = now or utcnow()
    account = await get_customer_account(session=session, account_id=account_id, lock=True)
    if credit_limit_cents is not None:
        if not isinstance(credit_limit_cents, int) or not 0 <= credit_limit_cents <= MAX_AMOUNT_CENTS:
            raise InvalidCustomerAmount("credit limit must be whole cents, 0 or more")
        if account.balance_cents < -credit_limit_cents:
            raise Conflict(f"the balance {account.balance_cents} is already below -{credit_limit_cents}",
                           balance_cents=account.balance_cents)
        account.credit_limit_cents = credit_limit_cents
    if frozen is not None:
        account.status = (CustomerAccountStatus.FROZEN if frozen else CustomerAccountStatus.ACTIVE).value
    account.updated_at = now
    return account


async def top_up_customer(
    *, session: AsyncSession, account_id: int, amount_cents: int, note: str, actor: str,
    reference: str | None = None, gateway: str | None = None, now: dt.datetime | None = None,
) -> tuple[LedgerPosting, bool]:
    """Record money a customer paid in (充值). A repeated `reference` (e.g. the bank transfer's number or the
    admin's Idempotency-Key) credits nothing and returns the first top-up: (posting, created). `gateway`: paid
    online through that gateway, so the money is in its clearing account (like an order's payment), not yet in
    the shop's cash. (Top-ups paid online before this was so were booked to platform_cash and stay there: postings
    are never rewritten.)"""
    _check_amount(amount_cents)
    now = now or utcnow()
    full_reference = f"customer_top_up:{account_id}:{reference or secrets.token_hex(12)}"
    if len(full_reference) > 160:
        raise InvalidInput("top-up reference is too long (at most 128 characters)")
    existing = await session.scalar(select(LedgerPosting).where(LedgerPosting.reference == full_reference))
    if existing is not None:
        return existing, False
    # Crediting can never break balance >= -credit_limit, so no condition is needed; the row lock it takes
    # orders it with concurrent charges.
    row = (await session.execute(
        update(CustomerAccount).where(CustomerAccount.id == account_id)
        .values(balance_cents=CustomerAccount.balance_cents + amount_cents, updated_at=now)
        .returning(CustomerAccount.currency)
        .execution_options(synchronize_session="fetch"))).first()
    if row is None:
        raise CustomerAccountNotFound(f"no customer account {account_id}")
    posting, _ = await post(
        session, reference=full_reference, kind="customer_top_up", memo=note[:500], actor=actor, now=now,
        lines=[Line(accounts.gateway_clearing(gateway) if gateway else accounts.PLATFORM_CASH, amount_cents,
                    str(row[0])),
               Line(accounts.customer_prepaid(account_id), -amount_cents, str(row[0]))])
    assert posting is not None
    return posting, True


async def transfer_between_customers(
    *, session: AsyncSession, from_account_id: int, to_account_id: int, amount_cents: int | None, reference: str,
    memo: str, actor: str, require_active: bool = True, now: dt.datetime | None = None,
) -> tuple[LedgerPosting | None, int]:
    """Move money from one customer account to another of the same currency, once per `reference` (a repeat
    moves nothing and returns the first posting). `amount_cents` None moves the whole positive balance of the
    source (nothing when there is none). Returns (posting or None, cents moved).

    The source is debited with one conditional UPDATE like a charge (within its credit limit, active unless
    `require_active` is False): CustomerBalanceInsufficient / CustomerAccountFrozen change nothing."""
    now = now or utcnow()
    full_reference = f"customer_transfer:{reference}"
    if len(full_reference) > 160:
        raise InvalidInput("transfer reference is too long")
    existing = await session.scalar(select(LedgerPosting).where(LedgerPosting.reference == full_reference))
    if existing is not None:
        moved = await session.scalar(select(LedgerEntry.amount_cents).where(
            LedgerEntry.posting_id == existing.id, LedgerEntry.amount_cents > 0))
        return existing, int(moved or 0)
    source = await get_customer_account(session=session, account_id=from_account_id, lock=True)
    target = await get_customer_account(session=session, account_id=to_account_id)
    if source.currency != target.currency:
        raise InvalidInput(f"accounts {source.code} and {target.code} hold different currencies")
    if amount_cents is None:
        amount_cents = source.balance_cents  # read under the row lock: the whole balance, exactly
        if amount_cents <= 0:
            return None, 0
    _check_amount(amount_cents)
    conditions = [CustomerAccount.id == from_account_id,
                  CustomerAccount.balance_cents - amount_cents >= -CustomerAccount.credit_limit_cents]
    if require_active:
        conditions.append(CustomerAccount.status == CustomerAccountStatus.ACTIVE.value)
    row = (await session.execute(
        update(CustomerAccount).where(*conditions)
        .values(balance_cents=CustomerAccount.balance_cents - amount_cents, updated_at=now)
        .returning(CustomerAccount.balance_cents).execution_options(synchronize_session="fetch"))).first()
    if row is None:
        fresh = await get_customer_account(session=session, account_id=from_account_id)
        if require_active and fresh.status != CustomerAccountStatus.ACTIVE.value:
            raise CustomerAccountFrozen(f"customer account {fresh.code} is frozen")
        raise CustomerBalanceInsufficient(
            f"the prepaid balance does not cover {amount_cents} (balance {fresh.balance_cents}, credit limit "
            f"{fresh.credit_limit_cents})", balance_cents=fresh.balance_cents, amount_cents=amount_cents)
    await session.execute(
        update(CustomerAccount).where(CustomerAccount.id == to_account_id)
        .values(balance_cents=CustomerAccount.balance_cents + amount_cents, updated_at=now)
        .execution_options(synchronize_session="fetch"))
    posting, _ = await post(session, reference=full_reference, kind="customer_transfer", memo=memo[:500],
                            actor=actor, now=now,
                            lines=[Line(accounts.customer_prepaid(from_account_id), amount_cents, source.currency),
                                   Line(accounts.customer_prepaid(to_account_id), -amount_cents, source.currency)])
    return posting, amount_cents


async def charge_for_payment(*, session: AsyncSession, payment_no: str) -> CustomerCharge | None:
    return await session.scalar(select(CustomerCharge).where(CustomerCharge.payment_no == payment_no))


async def charge_customer(
    *, session: AsyncSession, account_id: int, amount_cents: int, currency: str, payment_no: str, order_id: int,
    now: dt.datetime | None = None,
) -> CustomerCharge:
    """Take a payment from a customer's balance, at most once per order (余额扣款).

    Raises CustomerBalanceInsufficient, changing nothing, when balance - amount would fall below -credit_limit;
    CustomerAccountFrozen for a frozen account. Call inside a savepoint or a transaction that rolls back on
    error (the balance payment does)."""
    _check_amount(amount_cents)
    now = now or utcnow()
    # The charge row first: a concurrent payment of the same order blocks on its unique order_id and never debits.
    charge = CustomerCharge(payment_no=payment_no, account_id=account_id, order_id=order_id,
                            amount_cents=amount_cents, refunded_cents=0, currency=currency, balance_after_cents=0,
                            created_at=now)
    session.add(charge)
    await session.flush()
    # One conditional UPDATE: it debits within the credit limit or matches no row (never read-then-write; the
    # row lock it takes queues concurrent payments from many processes, and READ COMMITTED re-checks the WHERE
    # against the newest balance).
    row = (await session.execute(
        update(CustomerAccount)
        .where(CustomerAccount.id == account_id, CustomerAccount.currency == currency,
               CustomerAccount.status == CustomerAccountStatus.ACTIVE.value,
               CustomerAccount.balance_cents - amount_cents >= -CustomerAccount.credit_limit_cents)
        .values(balance_cents=CustomerAccount.balance_cents - amount_cents, updated_at=now)
        .returning(CustomerAccount.balance_cents)
        .execution_options(synchronize_session="fetch"))).first()
    if row is None:
        account = await get_customer_account(session=session, account_id=account_id)
        if account.status != CustomerAccountStatus.ACTIVE.value:
            raise CustomerAccountFrozen(f"customer account {account.code} is frozen")
        if account.currency != currency:
            raise InvalidInput(f"customer account {account.code} holds {account.currency}, not {currency}")
        raise CustomerBalanceInsufficient(
            f"the prepaid balance does not cover {amount_cents} (balance {account.balance_cents}, credit limit "
            f"{account.credit_limit_cents})", balance_cents=account.balance_cents, amount_cents=amount_cents)
    charge.balance_after_cents = int(row[0])
    await post(session, reference=f"customer_charge:{payment_no}", kind="customer_charge", order_id=order_id,
               payment_no=payment_no, now=now, memo=f"paid from customer account {account_id}",
               lines=[Line(accounts.customer_prepaid(account_id), amount_cents, currency),
                      Line(accounts.BALANCE_CLEARING, -amount_cents, currency)])
    return charge


async def customer_refund_posted(*, session: AsyncSession, refund_no: str) -> int | None:
    """Cents a refund credited back to a customer's balance, or None if it never did."""
    posting_id = await session.scalar(select(LedgerPosting.id).where(
        LedgerPosting.reference == f"customer_refund:{refund_no}"))
    if posting_id is None:
        return None
    # The clearing line of the posting is the debit: its amount is what went back.
    amount = await session.scalar(select(LedgerEntry.amount_cents).where(
        LedgerEntry.posting_id == posting_id, LedgerEntry.amount_cents > 0))
    return int(amount or 0)


async def refund_customer_charge(
    *, session: AsyncSession, payment_no: str, refund_no: str, amount_cents: int, now: dt.datetime | None = None,
) -> CustomerCharge:
    """Credit (part of) a balance payment back to its account, once per refund number. Never more than the
    payment took: the charge row lock queues concurrent refunds and its CHECK is the last line of defence."""
    _check_amount(amount_cents)
    now = now or utcnow()
    charge = await session.scalar(select(CustomerCharge).where(CustomerCharge.payment_no == payment_no)
                                  .with_for_update().execution_options(populate_existing=True))
    if charge is None:
        raise CustomerChargeNotFound(f"no balance payment {payment_no!r}")
    reference = f"customer_refund:{refund_no}"
    if await session.scalar(select(LedgerPosting.id).where(LedgerPosting.reference == reference)) is not None:
        return charge  # this refund was credited already
    if charge.refunded_cents + amount_cents > charge.amount_cents:
        raise Conflict(f"refunding {amount_cents} would exceed what payment {payment_no} took "
                       f"({charge.refunded_cents} of {charge.amount_cents} already refunded)")
    charge.refunded_cents += amount_cents
    await session.execute(
        update(CustomerAccount).where(CustomerAccount.id == charge.account_id)
        .values(balance_cents=CustomerAccount.balance_cents + amount_cents, updated_at=now)
        .execution_options(synchronize_session="fetch"))
    await post(session, reference=reference, kind="customer_refund", order_id=charge.order_id,
               payment_no=payment_no, refund_no=refund_no, now=now,
               memo=f"refund {refund_no} credited to customer account {charge.account_id}",
               lines=[Line(accounts.BALANCE_CLEARING, amount_cents, charge.currency),
                      Line(accounts.customer_prepaid(charge.account_id), -amount_cents, charge.currency)])
    return charge


async def customer_balance_drift(*, session: AsyncSession) -> dict[str, int]:
    """Customer accounts whose balance differs from their ledger account (balance minus ledger, by code).
    The ledger account is a liability (credit balance), so an account in step has balance == -ledger."""
    ledger = await account_balances(session, prefix="customer_prepaid:")
    by_id: dict[int, int] = defaultdict(int)
    for (code, _currency), total in ledger.items():
        by_id[int(code.partition(":")[2])] += total
    drift = {}
    for account_id, code, balance in (await session.execute(
            select(CustomerAccount.id, CustomerAccount.code, CustomerAccount.balance_cents))).all():
        if int(balance) != -by_id.get(account_id, 0):
            drift[code] = int(balance) + by_id.get(account_id, 0)
    return drift
