"""Which suppliers may fill an order, best first (选路): cheapest, then preferred, then oldest supplier."""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Iterable
from dataclasses import dataclass

from sqlalchemy import ColumnElement, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from quanyi.db import utcnow
from quanyi.suppliers.adapter import ProductKind
from quanyi.suppliers.models import SkuSupplierMapping, Supplier, SupplierProduct, SupplierStatus

__all__ = ["Candidate", "rank_candidates", "find_candidates", "next_circuit_reopen"]


@dataclass(frozen=True, slots=True)
class Candidate:
    supplier_id: int
    supplier_code: str
    supplier_product_id: int
    product_code: str
    cost_cents: int
    priority: int
    stock: int | None  # None: the supplier does not count it


def rank_candidates(candidates: Iterable[Candidate]) -> list[Candidate]:
    """Cost ascending, then mapping priority (lower first), then supplier id: a total, stable order."""
    return sorted(candidates, key=lambda c: (c.cost_cents, c.priority, c.supplier_id, c.supplier_product_id))


def _could_fill(sku_id: int, kind: ProductKind, quantity: int) -> list[ColumnElement[bool]]:
    """Enabled mappings of active suppliers whose product is available and has the stock (or does not count it)."""
    return [SkuSupplierMapping.sku_id == sku_id, SkuSupplierMapping.enabled.is_(True),
            Supplier.status == SupplierStatus.ACTIVE, SupplierProduct.available.is_(True),
            SupplierProduct.kind == kind,
            or_(SupplierProduct.stock.is_(None), SupplierProduct.stock >= quantity)]


async def find_candidates(*, session: AsyncSession, sku_id: int, kind: ProductKind, quantity: int,
                          exclude_products: Collection[int] = (), now: dt.datetime | None = None) -> list[Candidate]:
    """Suppliers that could fill it and whose circuit is not open, ranked. Stock and cost are as last synced;
    the purchase itself decides."""
    now = now or utcnow()
    rows = await session.execute(
        select(Supplier.id, Supplier.code, SupplierProduct.id, SupplierProduct.product_code,
               SupplierProduct.cost_cents, SkuSupplierMapping.priority, SupplierProduct.stock)
        .join(SupplierProduct, SupplierProduct.id == SkuSupplierMapping.supplier_product_id)
        .join(Supplier, Supplier.id == SupplierProduct.supplier_id)
        .where(*_could_fill(sku_id, kind, quantity),
               # Open circuits are skipped; one whose open period is over gets its trial call.
               or_(Supplier.circuit_open_until.is_(None), Supplier.circuit_open_until <= now)))
    found = [Candidate(*row) for row in rows.all()]
    return rank_candidates(c for c in found if c.supplier_product_id not in set(exclude_products))


async def next_circuit_reopen(*, session: AsyncSession, sku_id: int, kind: ProductKind, quantity: int,
                              exclude_products: Collection[int] = (), now: dt.datetime | None = None
                              ) -> dt.datetime | None:
    """When the first supplier that could fill it, but is paused by an open circuit, may be tried again;
    None if no such supplier."""
    now = now or utcnow()
    query = (select(func.min(Supplier.circuit_open_until))
             .join(SupplierProduct, Supplier.id == SupplierProduct.supplier_id)
             .join(SkuSupplierMapping, SupplierProduct.id == SkuSupplierMapping.supplier_product_id)
             .where(*_could_fill(sku_id, kind, quantity), Supplier.circuit_open_until > now))
    if exclude_products:
        query = query.where(SupplierProduct.id.not_in(list(exclude_products)))
    return await session.scalar(query)  # type: ignore[no-any-return]
