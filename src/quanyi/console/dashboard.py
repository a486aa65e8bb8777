"""The dashboard's figures (经营概览), gathered from each feature's own reports: sales, paid conversion and
refunds of today / 7 / 30 shop days, sales by hour and by SKU, stock alerts, supplier balances and circuits,
the review queue and dead notifications. Read only; no FastAPI here."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from quanyi.catalog import service as catalog_service
from quanyi.db import Database, utcnow
from quanyi.money import format_money
from quanyi.notifications import service as notifications_service
from quanyi.notifications.models import MessageStatus, OutboxMessage
from quanyi.orders import reports as order_reports
from quanyi.orders.state import OrderStatus
from quanyi.refunds import reports as refund_reports
from quanyi.risk import review as review_service
from quanyi.scope import PLATFORM, Scope
from quanyi.shoptime import day_bounds, shop_day
from quanyi.suppliers import records as supplier_records
from quanyi.suppliers.circuit import circuit_state

__all__ = ["PERIODS", "Dashboard", "StockAlert", "SupplierLine", "build_dashboard"]

PERIODS = {"today": 1, "7d": 7, "30d": 30}


@dataclass(frozen=True, slots=True)
class StockAlert:
    sku_id: int
    sku_code: str
    title: str
    available: int
    sold_out: bool


@dataclass(frozen=True, slots=True)
class SupplierLine:
    code: str
    name: str
    status: str
    balance: str
    credit_limit: str
    low_balance: bool
    circuit: str
    last_error: str | None


@dataclass
class Dashboard:
    period: str
    first_day: dt.date
    last_day: dt.date
    currency: str
    sales: dict[str, int]  # currency -> cents paid in the period
    paid_orders: int
    placed_orders: int
    placed_and_paid: int
    refunds: dict[str, int]  # currency -> cents refunded in the period
    refund_count: int
    open_refunds: dict[str, int]
    by_hour: list[int]  # 24 hours of the shop's clock, cents in `currency`
    by_day: list[tuple[dt.date, int]]  # each shop day of the period, cents in `currency`
    by_sku: list[order_reports.SkuSales]
    stock_alerts: list[StockAlert] = field(default_factory=list)
    suppliers: list[SupplierLine] = field(default_factory=list)
    review_queue: int = 0
    waiting: dict[str, int] = field(default_factory=dict)  # paid but not delivered / refund pending, now
    dead_notifications: int = 0
    recent_dead: list[OutboxMessage] = field(default_factory=list)

    @property
    def conversion(self) -> float | None:
        """Paid share of the orders placed in the period (None: nothing placed)."""
        return self.placed_and_paid / self.placed_orders if self.placed_orders else None

    def money(self, amounts: dict[str, int]) -> list[str]:
        """Amounts per currency for display, the shop's main currency first."""
        ordered = sorted(amounts, key=lambda c: (c != self.currency, c))
        return [format_money(amounts[c], c) for c in ordered if amounts[c] or c == self.currency] or \
            [format_money(0, self.currency)]


async def _main_currency(db: Database, scope: Scope) -> str:
    """The currency most SKUs are sold in (charts are drawn in it; other currencies appear in the totals)."""
    async with db.read_session() as session:
        products = await catalog_service.list_products(session=session, active_only=False, scope=scope)
    counts = Counter(sku.currency for product in products for sku in product.skus)
    return counts.most_common(1)[0][0] if counts else "CNY"


async def build_dashboard(*, db: Database, zone: ZoneInfo, period: str, low_stock_threshold: int,
                          now: dt.datetime | None = None, scope: Scope = PLATFORM) -> Dashboard:
    """Everything on the dashboard, of the caller's scope (a merchant's staff: their merchant's figures)."""
    now = now or utcnow()
    days = PERIODS.get(period, 1)
    today = shop_day(now, zone)
    first_day = today - dt.timedelta(days=days - 1)
    start, end = day_bounds(first_day, zone, days)
    currency = await _main_currency(db, scope)
    async with db.read_session() as session:
        totals = await order_reports.sales_totals(session=session, start=start, end=end, scope=scope)
        placed, placed_paid = await order_reports.placed_orders(session=session, start=start, end=end, scope=scope)
        refunds = await refund_reports.refund_totals(session=session, start=start, end=end, scope=scope)
        open_refunds = await refund_reports.open_refunds(session=session, scope=scope)
        buckets = await order_reports.paid_buckets(session=session, start=start, end=end, currency=currency,
                                                   scope=scope)
        by_sku = await order_reports.sales_by_sku(session=session, start=start, end=end, currency=currency,
                                                  scope=scope)
        review_queue = await review_service.count_held_orders(session=session, scope=scope)
        waiting = await order_reports.status_counts(session=session, statuses=[OrderStatus.PAID,
                                                                              OrderStatus.REFUND_PENDING],
                                                    scope=scope)
        dead = await notifications_service.count_messages(session=session, status=MessageStatus.DEAD, scope=scope)
        recent_dead = list(await notifications_service.list_messages(session=session, status=MessageStatus.DEAD,
                                                                     limit=5, scope=scope))
    by_hour = [0] * 24
    per_day = {first_day + dt.timedelta(days=i): 0 for i in range(days)}
    for moment, _count, cents in buckets:
        local = moment.astimezone(zone)
        by_hour[local.hour] += cents
        per_day[local.date()] = per_day.get(local.date(), 0) + cents
    board = Dashboard(
        period=period if period in PERIODS else "today", first_day=first_day, last_day=today, currency=currency,
        sales={t.currency: t.paid_cents for t in totals}, paid_orders=sum(t.paid_orders for t in totals),
        placed_orders=placed, placed_and_paid=placed_paid, refunds={r.currency: r.cents for r in refunds},
        refund_count=sum(r.refunds for r in refunds), open_refunds=open_refunds, by_hour=by_hour,
        by_day=sorted(per_day.items()), by_sku=by_sku, review_queue=review_queue, dead_notifications=dead,
        waiting={status.value: count for status, count in waiting.items()},
        recent_dead=recent_dead)
    board.stock_alerts = await _stock_alerts(db, low_stock_threshold, scope)
    board.suppliers = await _suppliers(db, now, scope)
    return board


async def _stock_alerts(db: Database, threshold: int, scope: Scope) -> list[StockAlert]:
    """SKUs on sale that are sold out, or below the low-stock threshold (the same one as the robot alerts)."""
    async with db.read_session() as session:
        products = await catalog_service.list_products(session=session, active_only=True, scope=scope)
        skus = [sku for product in products for sku in product.skus if sku.on_sale]
        states = await catalog_service.stock_states(session=session, skus=skus)
    alerts = []
    for sku in skus:
        state = states[sku.id]
        if state.status == "sold_out" or (state.status == "in_stock" and state.available < threshold):
            alerts.append(StockAlert(sku.id, sku.code, f"{sku.product.name} {sku.name}", state.available,
                                     state.status == "sold_out"))
    return sorted(alerts, key=lambda a: (not a.sold_out, a.available, a.sku_code))


async def _suppliers(db: Database, now: dt.datetime, scope: Scope) -> list[SupplierLine]:
    async with db.read_session() as session:
        suppliers = await supplier_records.list_suppliers(session=session, scope=scope)
    lines = []
    for s in suppliers:
        # Low: a prepaid balance that cannot pay much more before the credit limit stops purchases.
        headroom = s.balance_cents + s.credit_limit_cents
        lines.append(SupplierLine(
            code=s.code, name=s.name, status=s.status.value, balance=format_money(s.balance_cents, s.currency),
            credit_limit=format_money(s.credit_limit_cents, s.currency), low_balance=headroom <= 0,
            circuit=circuit_state(s, now).value, last_error=s.last_error))
    return lines
