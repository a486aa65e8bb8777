"""Writing what a supplier told us (pull or push) onto `suppliers_product`, newest observation wins.

Every write carries the time the information was observed: a pull's is the moment we sent the request,
a push's is the supplier's event time when the dialect gives one, else its arrival. A row is only
changed by an observation at least as new as its `last_synced_at`, so an old push arriving late never
overwrites a newer pull, and a pull answered after a push arrived never overwrites the push.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy import case, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from quanyi.inventory import service as inventory_service
from quanyi.suppliers.adapter import CatalogItem, StockEvent, StockQuote
from quanyi.suppliers.models import SkuSupplierMapping, Supplier, SupplierProduct

__all__ = ["Applied", "apply_catalog", "apply_quotes", "apply_stock_events", "event_time", "mapped_sku_ids"]


@dataclass
class Applied:
    products_seen: int = 0
    new_products: int = 0
    updated: int = 0
    vanished: int = 0
    stale_ignored: int = 0
    unknown_products: int = 0
    changed_product_ids: set[int] = field(default_factory=set)


async def _locked_products(session: AsyncSession, supplier: Supplier,
                           codes: Sequence[str] | None = None) -> dict[str, SupplierProduct]:
    # Row locks in id order: a concurrent push and pull of one supplier take turns instead of deadlocking.
    stmt = (select(SupplierProduct).where(SupplierProduct.supplier_id == supplier.id)
            .order_by(SupplierProduct.id).with_for_update().execution_options(populate_existing=True))
    if codes is not None:
        stmt = stmt.where(SupplierProduct.product_code.in_(list(codes)))
    return {row.product_code: row for row in (await session.scalars(stmt)).all()}


def _valid_numbers(cost: int | None, stock: int | None) -> bool:
    return (cost is None or 0 <= cost <= 10_000_000_000) and (stock is None or 0 <= stock <= 2_000_000_000)


def _update(row: SupplierProduct, *, cost: int | None, stock: int | None, available: bool,
            observed_at: dt.datetime, source: str, applied: Applied) -> None:
    before = (row.cost_cents, row.stock, row.available)
    if cost is not None:
        row.cost_cents = cost
    row.stock = stock
    row.available = available
    row.last_synced_at = observed_at
    row.last_sync_source = source
    applied.updated += 1
    if (row.cost_cents, row.stock, row.available) != before:
        applied.changed_product_ids.add(row.id)


async def apply_catalog(*, session: AsyncSession, supplier: Supplier, items: Sequence[CatalogItem],
                        observed_at: dt.datetime) -> Applied:
    """A full catalog: new products appear (unmapped), known ones refresh, vanished ones become unavailable."""
    applied = Applied()
    rows = await _locked_products(session, supplier)
    seen: set[str] = set()
    for item in items:
        code = item.product_code
        if not code or len(code) > 128 or code in seen or not _valid_numbers(item.cost_cents, item.stock):
            applied.unknown_products += 1
            continue
        seen.add(code)
        applied.products_seen += 1
        row = rows.get(code)
        if row is None:
            product = SupplierProduct(
                supplier_id=supplier.id, product_code=code, name=(item.name or code)[:200], kind=item.kind,
                face_value_cents=max(0, item.face_value_cents), cost_cents=item.cost_cents,
                currency=(item.currency or supplier.currency)[:3], stock=item.stock, available=item.available,
                last_synced_at=observed_at, last_sync_source="pull")
            session.add(product)
            applied.new_products += 1
            continue
        if row.last_synced_at > observed_at:
            applied.stale_ignored += 1
            continue
        # The kind stays as first imported: mappings were checked against it.
        row.name = (item.name or code)[:200]
        row.face_value_cents = max(0, item.face_value_cents)
        _update(row, cost=item.cost_cents, stock=item.stock, available=item.available, observed_at=observed_at,
                source="pull", applied=applied)
    for code, row in rows.items():
        if code in seen:
            continue
        if row.last_synced_at > observed_at:
            applied.stale_ignored += 1
        elif row.available:
            _update(row, cost=None, stock=row.stock, available=False, observed_at=observed_at, source="pull",
                    applied=applied)
            applied.updated -= 1
            applied.vanished += 1
    await session.flush()
    if applied.changed_product_ids:
        inventory_service.stock_returned(session)  # supplier stock may sell again: re-arm the stock gate
    return applied


async def apply_quotes(*, session: AsyncSession, supplier: Supplier, requested: Sequence[str],
                       quotes: Sequence[StockQuote], observed_at: dt.datetime) -> Applied:
    """Stock and cost of mapped products; a requested product the supplier no longer quotes is unavailable."""
    applied = Applied()
    rows = await _locked_products(session, supplier, requested)
    quoted: set[str] = set()
    for quote in quotes:
        row = rows.get(quote.product_code)
        if row is None or quote.product_code in quoted or not _valid_numbers(quote.cost_cents, quote.stock):
            applied.unknown_products += 1
            continue
        quoted.add(quote.product_code)
        applied.products_seen += 1
        if row.last_synced_at > observed_at:
            applied.stale_ignored += 1
            continue
        _update(row, cost=quote.cost_cents, stock=quote.stock, available=quote.available,
                observed_at=observed_at, source="pull", applied=applied)
    for code, row in rows.items():
        if code in quoted:
            continue
        if row.last_synced_at > observed_at:
            applied.stale_ignored += 1
        elif row.available:
            _update(row, cost=None, stock=row.stock, available=False, observed_at=observed_at, source="pull",
                    applied=applied)
            applied.updated -= 1
            applied.vanished += 1
    await session.flush()
    if applied.changed_product_ids:
        inventory_service.stock_returned(session)  # supplier stock may sell again: re-arm the stock gate
    return applied


def event_time(event: StockEvent, arrived_at: dt.datetime) -> dt.datetime:
    """When the supplier says the change happened (if its dialect says), else when it reached us."""
    when = getattr(event, "occurred_at", None)
    if not isinstance(when, dt.datetime):
        return arrived_at
    when = when if when.tzinfo is not None else when.replace(tzinfo=dt.UTC)
    # A clock far in the future must not freeze the row against every later pull.
    return min(when.astimezone(dt.UTC), arrived_at)


async def apply_stock_events(*, session: AsyncSession, supplier: Supplier, events: Sequence[StockEvent],
                             arrived_at: dt.datetime) -> Applied:
    """Pushed stock/cost changes, applied in event-time order; unknown products are ignored (the next
    catalog pull brings them in with their name and kind)."""
    applied = Applied()
    rows = await _locked_products(session, supplier, sorted({e.product_code for e in events}))
    for event in sorted(events, key=lambda e: event_time(e, arrived_at)):
        row = rows.get(event.product_code)
        if row is None or not _valid_numbers(event.cost_cents, event.stock):
            applied.unknown_products += 1
            continue
        applied.products_seen += 1
        observed_at = event_time(event, arrived_at)
        if row.last_synced_at > observed_at:
            applied.stale_ignored += 1
            continue
        _update(row, cost=event.cost_cents, stock=event.stock, available=event.available,
                observed_at=observed_at, source="push", applied=applied)
    await session.flush()
    if applied.changed_product_ids:
        inventory_service.stock_returned(session)  # supplier stock may sell again: re-arm the stock gate
    return applied


async def mapped_sku_ids(*, session: AsyncSession, product_ids: Sequence[int]) -> list[int]:
    """SKUs that map any of these supplier products (their price policy may need a second look)."""
    if not product_ids:
        return []
    return sorted(set((await session.scalars(select(SkuSupplierMapping.sku_id).where(
        SkuSupplierMapping.supplier_product_id.in_(list(product_ids))))).all()))


async def apply_purchase_refusal(*, session: AsyncSession, supplier_product_id: int, cost_cents: int | None,
                                 out_of_stock: bool, observed_at: dt.datetime) -> Applied:
    """A purchase was refused for its price or stock: the supplier told us its current cost or that it has none,
    which is news as fresh as any pull, so the next order does not try it at the stale numbers."""
    applied = Applied()
    row = await session.scalar(select(SupplierProduct).where(SupplierProduct.id == supplier_product_id)
                               .with_for_update().execution_options(populate_existing=True))
    if row is None or not _valid_numbers(cost_cents, None) or row.last_synced_at > observed_at:
        return applied
    applied.products_seen += 1
    _update(row, cost=cost_cents, stock=0 if out_of_stock else row.stock, available=row.available,
            observed_at=observed_at, source="purchase", applied=applied)
    await session.flush()
    if applied.changed_product_ids:
        inventory_service.stock_returned(session)  # supplier stock may sell again: re-arm the stock gate
    return applied


async def apply_purchase_taken(*, session: AsyncSession, supplier_product_id: int, quantity: int) -> None:
    """A purchase went through: the supplier has that many fewer (if it counts its stock), until the next sync
    says otherwise, so checkouts do not count on units we have already bought."""
    await session.execute(
        update(SupplierProduct).where(SupplierProduct.id == supplier_product_id, SupplierProduct.stock.is_not(None))
        .values(stock=case((SupplierProduct.stock > quantity, SupplierProduct.stock - quantity), else_=0))
        .execution_options(synchronize_session="fetch"))
