"""Supplier prepaid balances (预付余额): charge a purchase attempt, release a failed one, top up.

The balance lives on `suppliers_supplier.balance_cents` and may go down to `-credit_limit_cents`. Every
change is one conditional UPDATE of that row (the row lock it takes serializes concurrent purchases of one
supplier across processes; READ COMMITTED re-checks the WHERE on the newest row version), written in the
same transaction as its SupplierCharge row and its balanced posting.
"""

from __future__ import annotations

import datetime as dt
import secrets

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from quanyi.db import utcnow
from quanyi.errors import Conflict, InvalidInput, NotFound
from quanyi.ledger import accounts
from quanyi.ledger.models import LedgerPosting, SupplierCharge, SupplierChargeStatus
from quanyi.ledger.postings import Line, post
from quanyi.merchants.models import Merchant
from quanyi.money import MAX_AMOUNT_CENTS
from quanyi.scope import PLATFORM_MERCHANT_ID
from quanyi.suppliers.models import Supplier

__all__ = [
    "SupplierBalanceInsufficient", "SupplierChargeNotFound", "SupplierChargeConflict", "UnknownSupplier",
    "InvalidLedgerAmount", "charge_supplier", "release_supplier_charge", "settle_supplier_charge",
    "book_late_supplier_goods", "top_up_supplier", "get_charge",
]


class SupplierBalanceInsufficient(Conflict):
    code = "supplier_balance_insufficient"


class SupplierChargeNotFound(NotFound):
    code = "supplier_charge_not_found"


class SupplierChargeConflict(Conflict):
    code = "supplier_charge_conflict"


class UnknownSupplier(NotFound):
    code = "supplier_not_found"


class InvalidLedgerAmount(InvalidInput):
    code = "invalid_ledger_amount"


def _check_amount(amount_cents: int) -> None:
    if not isinstance(amount_cents, int) or isinstance(amount_cents, bool) or not 0 < amount_cents <= MAX_AMOUNT_CENTS:
        raise InvalidLedgerAmount(f"amount must be a positive whole number of cents up to {MAX_AMOUNT_CENTS}")


async def get_charge(*, session: AsyncSession, reference: str) -> SupplierCharge:
    charge = await session.scalar(select(SupplierCharge).where(SupplierCharge.reference == reference))
    if charge is None:
        raise SupplierChargeNotFound(f"no supplier charge with reference {reference!r}")
    return charge


async def charge_supplier(
    *,
    session: AsyncSession,
    supplier_id: int,
    amount_cents: int,
    reference: str,
    order_id: int | None = None,
    now: dt.datetime | None = None,
) -> SupplierCharge:
    """Debit a supplier's prepaid balance for one purchase attempt (预付扣款), idempotent per `reference`
    (the attempt's idempotency key): a repeat returns the first charge and debits nothing.

    Raises SupplierBalanceInsufficient, changing nothing, when the balance would fall below -credit_limit;
    SupplierChargeConflict when the reference was used for another supplier, amount or order."""
    _check_amount(amount_cents)
    if not reference or len(reference) > 128:
        raise InvalidInput("a supplier charge needs a reference of 1 to 128 characters")
    now = now or utcnow()
    existing = await session.scalar(select(SupplierCharge).where(SupplierCharge.reference == reference))
    if existing is None:
        try:
            # Savepoint: an insufficient balance or a concurrent charge with this reference undoes exactly
            # this charge, and the caller's transaction (e.g. trying the next supplier) carries on.
            async with session.begin_nested():
                return await _debit(session, supplier_id, amount_cents, reference, order_id, now)
        except IntegrityError:
            # Another transaction committed this reference first (PostgreSQL made us wait for it).
            existing = await session.scalar(select(SupplierCharge).where(SupplierCharge.reference == reference))
            if existing is None:
                if await session.get(Supplier, supplier_id) is None:
                    raise UnknownSupplier(f"no supplier with id {supplier_id}") from None
                raise
    if (existing.supplier_id, existing.amount_cents, existing.order_id) != (supplier_id, amount_cents, order_id):
        raise SupplierChargeConflict(f"reference {reference!r} was already used for a different charge",
                                     reference=reference)
    return existing


async def _debit(session: AsyncSession, supplier_id: int, amount_cents: int, reference: str, order_id: int | None,
                 now: dt.datetime) -> SupplierCharge:
    # The reference first: a concurrent duplicate blocks on the unique index here and never debits.
    charge = SupplierCharge(reference=reference, supplier_id=supplier_id, order_id=order_id,
                            amount_cents=amount_cents, currency="", status=SupplierChargeStatus.CHARGED.value,
                            balance_after_cents=0, created_at=now)
    session.add(charge)
    await session.flush()
    # One conditional UPDATE: it either debits within the credit limit or matches no row. Never read-then-write.
    row = (await session.execute(
        update(Supplier)
        .where(Supplier.id == supplier_id, Supplier.balance_cents - amount_cents >= -Supplier.credit_limit_cents)
        .values(balance_cents=Supplier.balance_cents - amount_cents, updated_at=now)
        .returning(Supplier.balance_cents, Supplier.currency)
        .execution_options(synchronize_session="fetch")
    )).first()
    if row is None:
        supplier = await session.get(Supplier, supplier_id, populate_existing=True)
        if supplier is None:
            raise UnknownSupplier(f"no supplier with id {supplier_id}")
        raise SupplierBalanceInsufficient(
            f"supplier {supplier.code}'s prepaid balance {supplier.balance_cents} (credit limit "
            f"{supplier.credit_limit_cents}) does not cover {amount_cents}",
            supplier=supplier.code, balance_cents=supplier.balance_cents, amount_cents=amount_cents)
    charge.balance_after_cents, charge.currency = int(row[0]), str(row[1])
    # The money is paid to the supplier for goods not yet delivered: prepaid becomes a claim on the supplier,
    # cleared against cost of goods when the order delivers (see order_events.record_order_delivered).
    await post(session, reference=f"supplier_charge:{reference}", kind="supplier_charge", order_id=order_id,
               supplier_id=supplier_id, attempt_key=reference, now=now,
               memo=f"purchase attempt {reference}",
               lines=[Line(accounts.supplier_payable(supplier_id), amount_cents, charge.currency),
                      Line(accounts.supplier_prepaid(supplier_id), -amount_cents, charge.currency)])
    await session.flush()
    return charge


async def _locked_charge(session: AsyncSession, reference: str) -> SupplierCharge:
    # The charge row lock queues concurrent releases and adjustments of one charge; the later one sees the
    # earlier one's result.
    charge = await session.scalar(
        select(SupplierCharge).where(SupplierCharge.reference == reference).with_for_update()
        .execution_options(populate_existing=True))
    if charge is None:
        raise SupplierChargeNotFound(f"no supplier charge with reference {reference!r}")
    return charge


async def _credit_back(session: AsyncSession, charge: SupplierCharge, amount_cents: int, *, kind: str, memo: str,
                       now: dt.datetime) -> None:
    """Give `amount_cents` of a charge back to the supplier's balance, with its balanced posting."""
    # Crediting can never break balance >= -credit_limit, so no condition is needed here.
    await session.execute(
        update(Supplier).where(Supplier.id == charge.supplier_id)
        .values(balance_cents=Supplier.balance_cents + amount_cents, updated_at=now)
        .execution_options(synchronize_session="fetch"))
    await post(session, reference=f"{kind}:{charge.reference}", kind=kind, order_id=charge.order_id,
               supplier_id=charge.supplier_id, attempt_key=charge.reference, now=now, memo=memo[:500],
               lines=[Line(accounts.supplier_prepaid(charge.supplier_id), amount_cents, charge.currency),
                      Line(accounts.supplier_payable(charge.supplier_id), -amount_cents, charge.currency)])


async def release_supplier_charge(
    *, session: AsyncSession, reference: str, reason: str, now: dt.datetime | None = None
) -> SupplierCharge:
    """The purchase definitely failed: credit the charge back to the supplier's balance and post the
    reversal. Idempotent: releasing a released charge returns it unchanged."""
    now = now or utcnow()
    charge = await _locked_charge(session, reference)
    if charge.status == SupplierChargeStatus.RELEASED:
        return charge
    await _credit_back(session, charge, charge.amount_cents, kind="supplier_release", now=now,
                       memo=f"purchase attempt {reference} failed: {reason}")
    charge.status = SupplierChargeStatus.RELEASED.value
    charge.released_at, charge.release_reason = now, reason[:500]
    return charge


async def settle_supplier_charge(
    *, session: AsyncSession, reference: str, actual_cents: int, now: dt.datetime | None = None
) -> SupplierCharge:
    """The purchase went through for `actual_cents`, less than was debited up front (the supplier's price fell
    since the last sync): credit the difference back and keep the charge at what the supplier really took, so
    the cost of goods and the statements are true. More than was debited is never taken here (the purchase
    capped the unit cost); reconciliation reports such a supplier. Idempotent."""
    now = now or utcnow()
    charge = await _locked_charge(session, reference)
    difference = charge.amount_cents - actual_cents
    if charge.status != SupplierChargeStatus.CHARGED.value or actual_cents <= 0 or difference <= 0:
        return charge
    await _credit_back(session, charge, difference, kind="supplier_adjust", now=now,
                       memo=f"purchase attempt {reference} cost {actual_cents}, {difference} less than debited")
    charge.amount_cents = actual_cents
    return charge


async def _merchant_funds_account(session: AsyncSession, supplier_id: int) -> str | None:
    """`merchant_supplier_funds:<code>` when the supplier account is a merchant's (not the platform store's)."""
    row = (await session.execute(select(Merchant.id, Merchant.code).join(Supplier, Supplier.merchant_id == Merchant.id)
                                 .where(Supplier.id == supplier_id))).first()
    return accounts.merchant_supplier_funds(row[1]) if row and row[0] != PLATFORM_MERCHANT_ID else None


async def book_late_supplier_goods(
    *, session: AsyncSession, reference: str, amount_cents: int, to_stock: bool, now: dt.datetime | None = None
) -> None:
    """A purchase that succeeded after its order was settled by hand (refunded): the goods are ours but no order
    will book them. Card keys go on sale, so their cost moves to card-key stock (booked as cost of goods when a
    later order sells them); a recharge already credited to the buyer's account is a cost with nothing to show.
    Idempotent per charge."""
    if amount_cents <= 0:
        return
    charge = await get_charge(session=session, reference=reference)
    merchant_funds = await _merchant_funds_account(session, charge.supplier_id)
    target = merchant_funds or (accounts.CARD_KEY_STOCK if to_stock else accounts.COST_OF_GOODS)
    kind = "supplier_goods_stocked" if to_stock else "supplier_goods_written_off"
    await post(session, reference=f"{kind}:{reference}", kind=kind, order_id=charge.order_id,
               supplier_id=charge.supplier_id, attempt_key=reference, now=now or utcnow(),
               memo=f"purchase attempt {reference} succeeded after its order was settled",
               lines=[Line(target, amount_cents, charge.currency),
                      Line(accounts.supplier_payable(charge.supplier_id), -amount_cents, charge.currency)])


async def top_up_supplier(
    *,
    session: AsyncSession,
    supplier_id: int,
    amount_cents: int,
    note: str,
    actor: str,
    reference: str | None = None,
    now: dt.datetime | None = None,
) -> LedgerPosting:
    """Record money the shop paid into a supplier's prepaid balance (预付充值). A repeated `reference`
    (e.g. the admin's Idempotency-Key) returns the first top-up and credits nothing."""
    _check_amount(amount_cents)
    now = now or utcnow()
    # A merchant's references are its own: another merchant's key can neither collide with it nor be learnt.
    merchant_id = await session.scalar(select(Supplier.merchant_id).where(Supplier.id == supplier_id))
    owner = f"m{merchant_id}:" if merchant_id not in (None, PLATFORM_MERCHANT_ID) else ""
    full_reference = f"supplier_top_up:{owner}{reference or secrets.token_hex(12)}"
    if len(full_reference) > 160:
        raise InvalidInput("top-up reference is too long (at most 128 characters)")
    existing = await session.scalar(select(LedgerPosting).where(LedgerPosting.reference == full_reference))
    if existing is not None:
        if existing.supplier_id != supplier_id:
            raise SupplierChargeConflict("this reference was already used for another supplier's top-up")
        return existing
    row = (await session.execute(
        update(Supplier).where(Supplier.id == supplier_id)
        .values(balance_cents=Supplier.balance_cents + amount_cents, updated_at=now)
        .returning(Supplier.currency)
        .execution_options(synchronize_session="fetch"))).first()
    if row is None:
        raise UnknownSupplier(f"no supplier with id {supplier_id}")
    # The platform's suppliers are paid from its cash; a merchant's supplier account with the merchant's money.
    funding = await _merchant_funds_account(session, supplier_id) or accounts.PLATFORM_CASH
    posting, _ = await post(
        session, reference=full_reference, kind="supplier_top_up", supplier_id=supplier_id, memo=note[:500],
        actor=actor, now=now,
        lines=[Line(accounts.supplier_prepaid(supplier_id), amount_cents, str(row[0])),
               Line(funding, -amount_cents, str(row[0]))])
    assert posting is not None
    return posting
