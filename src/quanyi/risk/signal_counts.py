"""What the risk rules count, as the database counts it: the orders a client placed and paid in a window (read
through the (dimension, at) index of risk_order_signals, sections 24 and 28), and the `Probe` the rules read their
counters and the order history through (`risk.rules.Probe`). Split from risk.engine, which builds the probe
(`engine.probe_of`)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from quanyi.db import utcnow
from quanyi.orders.models import Order
from quanyi.orders.state import OrderStatus
from quanyi.risk.counters import DatabaseCounters
from quanyi.risk.models import CounterEvent, OrderRiskSignals

if TYPE_CHECKING:
    from quanyi.risk.engine import RiskRuntime

__all__ = ["placed_orders_count", "PAID_COUNTED_WITHIN", "paid_counted_here", "paid_orders_count", "CountingProbe"]


def placed_orders_count(dimension: str, value: Any, *, low: Any, high: Any) -> Any:
    """The orders placed by one client's ip, device or contact (`dimension`) in the window (low, high], as the
    database counts them: their signals rows (written with each order, at its checkout's moment: what a `placed`
    counter event held, which the database counters no longer write). `value`, `low` and `high` are values or bind
    parameters standing for them (risk.order_stage builds the statement once). Read through the (dimension, at)
    index of risk_order_signals."""
    return select(func.count()).select_from(OrderRiskSignals).where(
        getattr(OrderRiskSignals, dimension) == value, OrderRiskSignals.at > low, OrderRiskSignals.at <= high)


# How long after its checkout (risk clock) a payment may come and still be counted from its signals row: a payment
# later than this (or before its checkout's moment, a clock set back) writes `paid` counter events as before, so the
# read of one window's paid orders walks the (dimension, at) index from the window's start less this only.
PAID_COUNTED_WITHIN = 3600.0


def paid_counted_here(signals_at: float | None, at: float) -> bool:
    """Whether the database counters count a payment at `at` (risk clock) of an order whose signals row has the
    checkout moment `signals_at` (None: no row) from that row (`paid_risk_at = at`), writing no `paid` events:
    `signals_at <= at` and `signals_at > at - PAID_COUNTED_WITHIN`, the bound `paid_orders_count` reads within (the
    same floats: a payment in (low, high] then has `signals_at > (low - PAID_COUNTED_WITHIN)`, rounding being
    monotonic)."""
    return signals_at is not None and signals_at <= at and signals_at > at - PAID_COUNTED_WITHIN


def paid_orders_count(dimension: str, value: Any, *, key: Any, low: Any, high: Any, floor: Any,
                      order_id: int | None = None) -> Any:
    """The orders paid by one client's ip, device or contact (`dimension`) in the window (low, high], as the database
    counts them: the signals rows of the orders paid within `PAID_COUNTED_WITHIN` of their checkout
    (`paid_risk_at`, read through the (dimension, at) index from `floor` = low - PAID_COUNTED_WITHIN), plus the
    distinct orders of the `paid:<dimension>:<value>` counter events (`key`, cut to 200 characters) the other
    payments still write. An order is counted by one of the two only. `order_id`: an order left out of the rows (the
    payment being judged, which its caller adds). Values or bind parameters (risk.order_stage builds it once)."""
    signals = select(func.count()).select_from(OrderRiskSignals).where(
        getattr(OrderRiskSignals, dimension) == value, OrderRiskSignals.at > floor, OrderRiskSignals.at <= high,
        OrderRiskSignals.paid_risk_at > low, OrderRiskSignals.paid_risk_at <= high)
    if order_id is not None:
        signals = signals.where(OrderRiskSignals.order_id != order_id)
    events = select(func.count(func.distinct(CounterEvent.member))).where(
        CounterEvent.key == key, CounterEvent.at > low, CounterEvent.at <= high)
    return select(signals.scalar_subquery() + events.scalar_subquery())


class CountingProbe:
    """Counters and order history as the rules see them; reads inside `session` when given."""

    def __init__(self, runtime: RiskRuntime, session: AsyncSession, at: float, order_id: int | None, *,
                 open_ended: bool = False) -> None:
        self._runtime, self._session, self._at, self._order_id = runtime, session, at, order_id
        self._open_ended = open_ended  # a count up to now counts later moments too (`_counted`)

    async def count(self, key: str, window_seconds: float, until: float | None = None) -> int:
        if until is None and self._open_ended:
            until = math.inf
        return await self._runtime.counters.count(key, window_seconds=window_seconds, at=self._at, until=until,
                                                  session=self._session)

    async def placed_orders(self, dimension: str, value: str, window_seconds: float, until: float) -> int:
        """Orders placed by this ip / device / contact in (at - window, until]: their signals rows (database
        counters), the `placed` counter events in Redis."""
        if isinstance(self._runtime.counters, DatabaseCounters):
            return int(await self._session.scalar(
                placed_orders_count(dimension, value, low=self._at - window_seconds, high=until)) or 0)
        return await self.count(f"placed:{dimension}:{value}", window_seconds, until)

    async def paid_orders(self, dimension: str, value: str, window_seconds: float) -> int:
        """Orders paid by this ip / device / contact in (at - window, at]: their signals rows and `paid` events
        (database counters, `paid_orders_count`; this probe's own order is left out of the rows: the payment stage
        adds its payment), the `paid` counter events in Redis."""
        if isinstance(self._runtime.counters, DatabaseCounters):
            low = self._at - window_seconds
            return int(await self._session.scalar(paid_orders_count(
                dimension, value, key=f"paid:{dimension}:{value}"[:200], low=low, high=self._at,
                floor=low - PAID_COUNTED_WITHIN, order_id=self._order_id)) or 0)
        return await self.count(f"paid:{dimension}:{value}", window_seconds)

    async def day_totals(self, contact: str | None, sku_id: int | None, since: float) -> tuple[int, int]:
        """What was bought since `since` (by this contact, of this SKU, where given): orders paid, or still
        payable (pending, not expired). Abandoned orders (cancelled or expired unpaid) do not count."""
        # Expiry is wall-clock time (the reservation sweeper's clock), not the risk clock.
        payable = (Order.status == OrderStatus.PENDING_PAYMENT) & (Order.expires_at > utcnow())
        query = select(func.coalesce(func.sum(OrderRiskSignals.quantity), 0),
                       func.coalesce(func.sum(OrderRiskSignals.amount_cents), 0)).join(
            Order, Order.id == OrderRiskSignals.order_id).where(
            OrderRiskSignals.at >= since, or_(OrderRiskSignals.paid.is_(True), payable))
        if contact is not None:
            query = query.where(OrderRiskSignals.contact == contact)
        if sku_id is not None:
            query = query.where(OrderRiskSignals.sku_id == sku_id)
        if self._order_id is not None:
            query = query.where(OrderRiskSignals.order_id != self._order_id)
        quantity, amount = (await self._session.execute(query)).one()
        return int(quantity), int(amount)

    async def has_paid_before(self, contact: str) -> bool:
        query = select(OrderRiskSignals.order_id).where(OrderRiskSignals.contact == contact,
                                                        OrderRiskSignals.paid.is_(True)).limit(1)
        if self._order_id is not None:
            query = query.where(OrderRiskSignals.order_id != self._order_id)
        return await self._session.scalar(query) is not None

    async def known_from(self, contact: str, device: str, ip: str) -> tuple[bool, bool]:
        """Has this contact paid from this device / this IP before?"""
        base = select(OrderRiskSignals.order_id).where(OrderRiskSignals.contact == contact,
                                                       OrderRiskSignals.paid.is_(True)).limit(1)
        if self._order_id is not None:
            base = base.where(OrderRiskSignals.order_id != self._order_id)
        device_known = await self._session.scalar(base.where(OrderRiskSignals.device == device)) is not None
        ip_known = await self._session.scalar(base.where(OrderRiskSignals.ip == ip)) is not None
        return device_known, ip_known
