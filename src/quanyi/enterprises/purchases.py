"""Bulk purchases (批量采购): an enterprise buys N codes of one SKU, placed by a background job in chunks.

Exactly once under crashes: each chunk is one transaction that writes the chunk row (`BulkPurchaseOrder`,
unique per (purchase, seq)), places an order at the purchase's fixed unit price and pays it from the
enterprise's balance with `payments.balance.pay_order_from_balance` (the normal payment path: card keys are
delivered in that same transaction, `charge_customer` takes the money at most once per order) and advances
`placed_quantity`. A crash before the commit leaves nothing of the chunk; after it, the chunk is counted. The
purchase row is locked first, so two workers never place the same chunk (and the unique seq would stop them).

A refusal (sold out, balance short, account frozen, SKU off sale) pauses the purchase with its reason and
changes nothing of the refused chunk; `resume_purchase` queues it again. Workers hold a lease on the purchase
they work; a worker that died leaves a lease that runs out, and the next worker resumes where it stopped.
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from quanyi.catalog import service as catalog_service
from quanyi.catalog.models import DeliveryType
from quanyi.db import Database, utcnow
from quanyi.enterprises import pricing
from quanyi.enterprises import service as enterprises_service
from quanyi.enterprises.models import BulkPurchase, BulkPurchaseOrder, Enterprise, EnterpriseContact, PurchaseStatus
from quanyi.errors import Conflict, DomainError, InvalidInput, NotFound
from quanyi.money import line_total
from quanyi.orders import service as orders_service
from quanyi.orders.models import Order
from quanyi.orders.state import OrderStatus
from quanyi.payments.balance import pay_order_from_balance

__all__ = [
    "PurchaseNotFound", "PurchaseProgress", "MAX_QUANTITY", "LEASE", "create_purchase", "get_purchase",
    "list_purchases", "progress_of", "resume_purchase", "cancel_purchase", "claim_purchase", "place_next_chunk",
    "work_purchase", "run_due_purchases", "purchase_orders", "order_contact",
]

MAX_QUANTITY = 100_000
LEASE = dt.timedelta(seconds=60)
RESERVATION = dt.timedelta(minutes=15)  # never used up: each chunk's order is paid in the transaction placing it
_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"


class PurchaseNotFound(NotFound):
    code = "purchase_not_found"


@dataclass(frozen=True, slots=True)
class PurchaseProgress:
    purchase: BulkPurchase
    enterprise_code: str
    sku_code: str
    orders: int
    delivered_quantity: int  # codes delivered so far (placed orders may still wait for suppliers or review)


def _new_purchase_no(now: dt.datetime) -> str:
    return "BP" + now.strftime("%y%m%d") + "".join(secrets.choice(_ALPHABET) for _ in range(10))


async def order_contact(*, session: AsyncSession, enterprise: Enterprise) -> str:
    """The contact the enterprise's orders carry: its purchasing contact, any contact, its invoice e-mail. No
    message goes there (account customers' orders are announced by callback only); it identifies the buyer."""
    contacts = (await session.scalars(select(EnterpriseContact).where(
        EnterpriseContact.enterprise_id == enterprise.id).order_by(EnterpriseContact.id))).all()
    for contact in sorted(contacts, key=lambda c: c.role != "purchasing"):
        if contact.email or contact.phone:
            return contact.email or contact.phone
    if enterprise.invoice_email:
        return enterprise.invoice_email
    raise InvalidInput(f"enterprise {enterprise.code} has no contact yet: add one (or an invoice e-mail) first")


async def create_purchase(
    *, session: AsyncSession, code: str, sku_code: str, quantity: int, actor: str,
    max_unit_price_cents: int | None = None, reference: str | None = None, now: dt.datetime | None = None,
) -> tuple[BulkPurchase, bool]:
    """Queue a bulk purchase at the enterprise's tier price for `quantity`. A repeated `reference` returns the
    first purchase (created False), or 409 when its terms differ. Nothing is charged here: each chunk pays."""
    now = now or utcnow()
    if not isinstance(quantity, int) or not 1 <= quantity <= MAX_QUANTITY:
        raise InvalidInput(f"quantity must be between 1 and {MAX_QUANTITY}")
    enterprise = await enterprises_service.get_enterprise(session=session, code=code)
    sku = await catalog_service.get_sku_by_code(session=session, code=sku_code)
    if reference is not None:
        earlier = await session.scalar(select(BulkPurchase).where(BulkPurchase.enterprise_id == enterprise.id,
                                                                  BulkPurchase.reference == reference))
        if earlier is not None:
            if (earlier.sku_id, earlier.quantity) != (sku.id, quantity):
                raise Conflict(f"Idempotency-Key {reference} was used for a different purchase",
                               purchase_no=earlier.purchase_no)
            return earlier, False
    if sku.delivery_type is not DeliveryType.CARD_KEY:
        raise InvalidInput(f"{sku.code} is not a card-key product: bulk purchases buy codes")
    catalog_service.check_orderable(sku, sku.min_quantity)  # on sale at all (the chunks keep to its limits)
    await order_contact(session=session, enterprise=enterprise)  # refuse now, not at the first chunk
    unit = await pricing.unit_price(session=session, enterprise_id=enterprise.id, sku=sku, quantity=quantity)
    if max_unit_price_cents is not None and unit > max_unit_price_cents:
        raise Conflict(f"the price of {sku.code} for {quantity} is {unit}, above max_unit_price_cents",
                       unit_price_cents=unit)
    line_total(unit, quantity)  # refuses a total beyond the largest amount
    purchase = BulkPurchase(purchase_no=_new_purchase_no(now), enterprise_id=enterprise.id, reference=reference,
                            sku_id=sku.id, quantity=quantity, unit_price_cents=unit, currency=sku.currency,
                            status=PurchaseStatus.QUEUED.value, placed_quantity=0, created_by=actor[:64],
                            created_at=now, updated_at=now)
    try:
        async with session.begin_nested():  # a concurrent request with the same key loses here
            session.add(purchase)
            await session.flush()
    except IntegrityError:
        raise Conflict("a purchase with this Idempotency-Key is being made right now; retry") from None
    return purchase, True


async def get_purchase(*, session: AsyncSession, code: str, purchase_no: str, lock: bool = False) -> BulkPurchase:
    enterprise = await enterprises_service.get_enterprise(session=session, code=code)
    stmt = select(BulkPurchase).where(BulkPurchase.purchase_no == purchase_no,
                                      BulkPurchase.enterprise_id == enterprise.id)
    purchase = await session.scalar(stmt.with_for_update().execution_options(populate_existing=True)
                                    if lock else stmt)
    if purchase is None:
        raise PurchaseNotFound(f"enterprise {code} has no purchase {purchase_no!r}")
    return purchase


async def list_purchases(*, session: AsyncSession, code: str, limit: int = 100) -> Sequence[BulkPurchase]:
    enterprise = await enterprises_service.get_enterprise(session=session, code=code)
    return (await session.scalars(select(BulkPurchase).where(BulkPurchase.enterprise_id == enterprise.id)
                                  .order_by(BulkPurchase.id.desc()).limit(limit))).all()


async def purchase_orders(*, session: AsyncSession, purchase_id: int) -> Sequence[Order]:
    return (await session.scalars(
        select(Order).join(BulkPurchaseOrder, BulkPurchaseOrder.order_id == Order.id)
        .where(BulkPurchaseOrder.purchase_id == purchase_id).order_by(BulkPurchaseOrder.seq))).all()


async def progress_of(*, session: AsyncSession, purchase: BulkPurchase) -> PurchaseProgress:
    enterprise = await session.get(Enterprise, purchase.enterprise_id)
    sku = await catalog_service.get_sku(session=session, sku_id=purchase.sku_id)
    orders, delivered = (await session.execute(
        select(func.count(Order.id), func.coalesce(func.sum(Order.quantity).filter(
            Order.status == OrderStatus.DELIVERED), 0))
        .join(BulkPurchaseOrder, BulkPurchaseOrder.order_id == Order.id)
        .where(BulkPurchaseOrder.purchase_id == purchase.id))).one()
    return PurchaseProgress(purchase=purchase, enterprise_code=enterprise.code if enterprise else "?",
                            sku_code=sku.code, orders=int(orders), delivered_quantity=int(delivered))


async def resume_purchase(*, session: AsyncSession, code: str, purchase_no: str,
                          now: dt.datetime | None = None) -> BulkPurchase:
    """Queue a paused purchase again (after a top-up or a restock)."""
    purchase = await get_purchase(session=session, code=code, purchase_no=purchase_no, lock=True)
    if purchase.status != PurchaseStatus.PAUSED.value:
        raise Conflict(f"purchase {purchase_no} is {purchase.status}; only a paused purchase resumes")
    purchase.status, purchase.error_code, purchase.error = PurchaseStatus.QUEUED.value, None, None
    purchase.lease_owner, purchase.lease_until, purchase.updated_at = None, None, now or utcnow()
    await session.flush()
    return purchase


async def cancel_purchase(*, session: AsyncSession, code: str, purchase_no: str,
                          now: dt.datetime | None = None) -> BulkPurchase:
    """Stop a purchase for good. What was placed stays placed and paid (its codes are the enterprise's); a
    chunk being placed right now either committed before this (and counts) or is refused after it."""
    now = now or utcnow()
    purchase = await get_purchase(session=session, code=code, purchase_no=purchase_no, lock=True)
    if purchase.status in (PurchaseStatus.COMPLETED.value, PurchaseStatus.CANCELLED.value):
        raise Conflict(f"purchase {purchase_no} is already {purchase.status}")
    purchase.status, purchase.finished_at, purchase.updated_at = PurchaseStatus.CANCELLED.value, now, now
    purchase.lease_owner, purchase.lease_until = None, None
    await session.flush()
    return purchase


# ---------------------------------------------------------------- the job

async def claim_purchase(*, db: Database, owner: str, now: dt.datetime | None = None) -> int | None:
    """Take the lease of one purchase that is queued, or running under a lease that ran out (its worker died)."""
    now = now or utcnow()
    async with db.transaction() as session:
        due = (select(BulkPurchase.id)
               .where(BulkPurchase.status.in_([PurchaseStatus.QUEUED.value, PurchaseStatus.RUNNING.value]),
                      or_(BulkPurchase.lease_until.is_(None), BulkPurchase.lease_until < now))
               .order_by(BulkPurchase.id).limit(1).with_for_update(skip_locked=True))
        purchase_id = await session.scalar(due)
        if purchase_id is None:
            return None
        # Conditional on the lease still being free: of two claimers only one matches (SQLite has no SKIP LOCKED).
        claimed = await session.execute(
            update(BulkPurchase).where(BulkPurchase.id == purchase_id, or_(
                BulkPurchase.lease_until.is_(None), BulkPurchase.lease_until < now))
            .values(status=PurchaseStatus.RUNNING.value, lease_owner=owner, lease_until=now + LEASE, updated_at=now))
        return purchase_id if claimed.rowcount else None  # type: ignore[attr-defined]


_PAUSING = {"sold_out", "insufficient_balance", "customer_account_frozen", "sku_not_purchasable",
            "quantity_out_of_range", "risk_denied", "not_found"}


async def place_next_chunk(*, db: Database, purchase_id: int, owner: str, now: dt.datetime | None = None) -> bool:
    """Place and pay the next chunk in one transaction; True if one was placed, False when the purchase needs
    nothing more from this worker (completed, paused, cancelled, or its lease taken over)."""
    now = now or utcnow()
    try:
        async with db.transaction() as session:
            # Row lock first: the chunk number and the progress are read and advanced under it.
            purchase = await session.scalar(select(BulkPurchase).where(BulkPurchase.id == purchase_id)
                                            .with_for_update().execution_options(populate_existing=True))
            if (purchase is None or purchase.status != PurchaseStatus.RUNNING.value
                    or purchase.lease_owner != owner):
                return False
            if purchase.placed_quantity >= purchase.quantity:
                purchase.status, purchase.finished_at = PurchaseStatus.COMPLETED.value, now
                purchase.lease_owner = purchase.lease_until = None
                purchase.updated_at = now
                return False
            enterprise = await session.get(Enterprise, purchase.enterprise_id)
            assert enterprise is not None
            sku = await catalog_service.get_sku(session=session, sku_id=purchase.sku_id)
            quantity = min(sku.max_quantity, purchase.quantity - purchase.placed_quantity)
            seq = int(await session.scalar(select(func.count()).select_from(BulkPurchaseOrder)
                                           .where(BulkPurchaseOrder.purchase_id == purchase.id)) or 0)
            order = await orders_service.create_order(
                session=session, sku_id=sku.id, sku=sku, quantity=quantity,
                contact=await order_contact(session=session, enterprise=enterprise), ip="",
                reservation_ttl=RESERVATION, unit_price_cents=purchase.unit_price_cents,
                customer_account_id=enterprise.account_id, now=now)
            session.add(BulkPurchaseOrder(purchase_id=purchase.id, seq=seq, order_id=order.id, quantity=quantity,
                                          created_at=now))
            await session.flush()  # the unique (purchase, seq) stops a second placer of this chunk here
            await pay_order_from_balance(session=session, order_id=order.id, account_id=enterprise.account_id,
                                         now=now)
            purchase.placed_quantity += quantity
            purchase.lease_until, purchase.updated_at = now + LEASE, now
            if purchase.placed_quantity >= purchase.quantity:
                purchase.status, purchase.finished_at = PurchaseStatus.COMPLETED.value, now
                purchase.lease_owner = purchase.lease_until = None
            return True
    except DomainError as exc:
        code = exc.code if exc.code in _PAUSING else "refused"
        await _pause(db, purchase_id, owner, code, exc.message, now)
        return False


async def _pause(db: Database, purchase_id: int, owner: str, code: str, message: str, now: dt.datetime) -> None:
    async with db.transaction() as session:
        await session.execute(
            update(BulkPurchase).where(BulkPurchase.id == purchase_id, BulkPurchase.lease_owner == owner,
                                       BulkPurchase.status == PurchaseStatus.RUNNING.value)
            .values(status=PurchaseStatus.PAUSED.value, error_code=code, error=message[:500], lease_owner=None,
                    lease_until=None, updated_at=now))


async def work_purchase(*, db: Database, purchase_id: int, owner: str, max_chunks: int | None = None) -> int:
    """Place chunks until the purchase is done, paused or taken over; returns how many were placed."""
    placed = 0
    while max_chunks is None or placed < max_chunks:
        if not await place_next_chunk(db=db, purchase_id=purchase_id, owner=owner):
            break
        placed += 1
    return placed


async def run_due_purchases(*, db: Database, owner: str, max_purchases: int = 10) -> int:
    """One round of the purchase worker: claim due purchases and work each to its end. Returns how many."""
    worked = 0
    for _ in range(max_purchases):
        purchase_id = await claim_purchase(db=db, owner=owner)
        if purchase_id is None:
            break
        await work_purchase(db=db, purchase_id=purchase_id, owner=owner)
        worked += 1
    return worked
