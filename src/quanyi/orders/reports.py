"""Sales figures for the operator (销售统计): what was sold in a period, when and what, per currency.

A sale counts when the order is paid (`paid_at`), at the amount it was sold for; refunds are reported by the
refunds feature. Figures are of the caller's scope (a merchant's staff: their merchant's orders). Time buckets
are computed in the database as 15-minute UTC buckets, which every shop time zone (whole, half and quarter
hours) maps onto exactly, so the shop's hours and days come out right.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import Integer, case, cast, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from quanyi.orders.models import Order
from quanyi.orders.state import OrderStatus
from quanyi.scope import PLATFORM, Scope

__all__ = ["BUCKET_SECONDS", "SalesTotals", "SkuSales", "sales_totals", "placed_orders", "paid_buckets", "sales_by_sku",
           "status_counts"]

BUCKET_SECONDS = 900


@dataclass(frozen=True, slots=True)
class SalesTotals:
    currency: str
    paid_orders: int
    paid_cents: int


@dataclass(frozen=True, slots=True)
class SkuSales:
    sku_id: int
    sku_code: str
    title: str
    currency: str
    units: int
    cents: int


def _bucket(session: AsyncSession, column: ColumnElement[dt.datetime]) -> ColumnElement[int]:
    """The 15-minute UTC bucket number of a timestamp column (seconds since the epoch // 900)."""
    if session.get_bind().dialect.name == "postgresql":
        return cast(func.floor(func.extract("epoch", column) / BUCKET_SECONDS), Integer)
    # SQLite keeps UTC timestamps as text; strftime('%s') reads them as UTC. `//`: SQLAlchemy renders `/` as a
    # real division (`/ (? + 0.0)`), which gave every paid order a bucket of its own.
    return cast(func.strftime("%s", column), Integer) // BUCKET_SECONDS


def _paid_scope(scope: Scope) -> ColumnElement[bool]:
    """The scope of a query of orders paid in a period, which reads them on the paid_at index: `merchant_id + 0`
    keeps SQLite (no statistics) from reading all of a merchant's orders on the (merchant_id, created_at) index
    instead (docs/PERFORMANCE.md section 30)."""
    return scope.where(Order.merchant_id + 0)


async def sales_totals(*, session: AsyncSession, start: dt.datetime, end: dt.datetime,
                       scope: Scope = PLATFORM) -> list[SalesTotals]:
    """Orders paid in [start, end) and their amount, per currency."""
    rows = await session.execute(
        select(Order.currency, func.count(), func.coalesce(func.sum(Order.total_cents), 0))
        .where(Order.paid_at >= start, Order.paid_at < end, _paid_scope(scope))
        .group_by(Order.currency))
    return [SalesTotals(currency, int(count), int(cents)) for currency, count, cents in rows.all()]


async def placed_orders(*, session: AsyncSession, start: dt.datetime, end: dt.datetime,
                        scope: Scope = PLATFORM) -> tuple[int, int]:
    """(orders placed in [start, end), how many of those were paid): the paid conversion (支付转化率)."""
    row = (await session.execute(
        select(func.count(), func.coalesce(func.sum(case((Order.paid_at.is_not(None), 1), else_=0)), 0))
        .where(Order.created_at >= start, Order.created_at < end, scope.where(Order.merchant_id)))).one()
    return int(row[0]), int(row[1])


async def paid_buckets(*, session: AsyncSession, start: dt.datetime, end: dt.datetime,
                       currency: str, scope: Scope = PLATFORM) -> list[tuple[dt.datetime, int, int]]:
    """(bucket start in UTC, orders, cents) for every 15-minute bucket with paid orders in [start, end)."""
    bucket = _bucket(session, Order.paid_at).label("bucket")
    rows = await session.execute(
        select(bucket, func.count(), func.coalesce(func.sum(Order.total_cents), 0))
        .where(Order.paid_at >= start, Order.paid_at < end, Order.currency == currency, _paid_scope(scope))
        .group_by(bucket).order_by(bucket))
    return [(dt.datetime.fromtimestamp(int(b) * BUCKET_SECONDS, dt.UTC), int(count), int(cents))
            for b, count, cents in rows.all()]


async def sales_by_sku(*, session: AsyncSession, start: dt.datetime, end: dt.datetime, currency: str,
                       limit: int = 10, scope: Scope = PLATFORM) -> list[SkuSales]:
    """The best-selling SKUs of [start, end) by amount, in one currency."""
    cents = func.coalesce(func.sum(Order.total_cents), 0).label("cents")
    rows = await session.execute(
        select(Order.sku_id, func.max(Order.sku_code), func.max(Order.product_name), func.max(Order.sku_name),
               func.coalesce(func.sum(Order.quantity), 0), cents)
        .where(Order.paid_at >= start, Order.paid_at < end, Order.currency == currency, _paid_scope(scope))
        .group_by(Order.sku_id).order_by(cents.desc(), Order.sku_id).limit(limit))
    return [SkuSales(sku_id, code, f"{product} {name}", currency, int(units), int(total))
            for sku_id, code, product, name, units, total in rows.all()]


async def status_counts(*, session: AsyncSession, statuses: list[OrderStatus],
                        scope: Scope = PLATFORM) -> dict[OrderStatus, int]:
    """How many orders are in each of these states now (work waiting: paid but undelivered, refunds due)."""
    rows = await session.execute(select(Order.status, func.count())
                                 .where(Order.status.in_(statuses), scope.where(Order.merchant_id))
                                 .group_by(Order.status))
    found = {status: int(count) for status, count in rows.all()}
    return {status: found.get(status, 0) for status in statuses}
