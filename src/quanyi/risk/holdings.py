"""Stock held per client (防囤货): orders placed only to lock stock are bounded.

An order holds its units from checkout until it is paid and delivered: while it waits for payment (a reservation,
until it expires or is cancelled) and while it is held for risk review (paid, keys still reserved). One client may
hold at most `held_units_limit_per_ip` / `_per_device` / `_per_contact` units at once in such orders; past a limit
checkout answers `429 too_much_stock_held` (with Retry-After: when the oldest of those reservations runs out) and
places nothing. A payer account may have at most `held_units_limit_per_payer` units under review: a paid order past
it is not held but waits for its refund (orders.service.apply_payment). A single order is always allowed when its
client holds nothing else, so a SKU's largest order stays possible (the review rules judge it).

Counted in the order's own transaction, serialized per client: SQLite's writer lock (BEGIN IMMEDIATE) and on
PostgreSQL a transaction-scoped advisory lock per address / device / contact, so parallel checkouts from one client
cannot pass a limit together.
"""

from __future__ import annotations

import datetime as dt
import zlib
from dataclasses import dataclass

from sqlalchemy import case, func, or_, select, text, true
from sqlalchemy.ext.asyncio import AsyncSession

from quanyi.config import Settings
from quanyi.errors import DomainError
from quanyi.orders.models import Order
from quanyi.orders.state import OrderStatus
from quanyi.risk.models import OrderRiskSignals

__all__ = ["HeldLimits", "TooMuchStockHeld", "check_held_stock", "payer_held_units"]

_PG_LOCKS = text("SELECT pg_advisory_xact_lock(k) FROM (SELECT unnest(CAST(:locks AS bigint[])) AS k ORDER BY 1 "
                 "OFFSET 0) AS ordered")
_SLACK_SECONDS = 300  # the risk clock and the wall clock may differ a little; pending orders older than TTL are out


class TooMuchStockHeld(DomainError):
    """This client already holds as much stock in unpaid / under-review orders as one client may."""
    code = "too_much_stock_held"


@dataclass(frozen=True)
class HeldLimits:
    per_ip: int
    per_device: int
    per_contact: int
    per_payer: int
    reservation_ttl_seconds: int

    @classmethod
    def from_settings(cls, settings: Settings) -> HeldLimits:
        return cls(per_ip=settings.held_units_limit_per_ip, per_device=settings.held_units_limit_per_device,
                   per_contact=settings.held_units_limit_per_contact, per_payer=settings.held_units_limit_per_payer,
                   reservation_ttl_seconds=settings.reservation_ttl_seconds)


_COLUMNS = {"ip": OrderRiskSignals.ip, "device": OrderRiskSignals.device, "contact": OrderRiskSignals.contact}
_MESSAGES = {
    "ip": "too many items are already reserved in unpaid or under-review orders from this network",
    "device": "too many items are already reserved in unpaid or under-review orders from this device",
    "contact": "too many items are already reserved in unpaid or under-review orders for this contact",
}


async def _held(session: AsyncSession, checks: list[tuple[str, str, int]], *, since: float, now: dt.datetime,
                order_id: int) -> dict[str, tuple[int, dt.datetime | None]]:
    """Per dimension of `checks`: the units its value holds in other orders (unexpired unpaid ones placed since
    `since`, and ones under review), and when the first of those unpaid ones expires. Both counts for all
    dimensions in one statement (the checkout hot path)."""
    matches = {dim: _COLUMNS[dim] == value for dim, value, _ in checks}
    pending = (
        select(*[func.coalesce(func.sum(case((match, OrderRiskSignals.quantity), else_=0)), 0)
                 for match in matches.values()],
               *[func.min(case((match, Order.expires_at))) for match in matches.values()])
        .join(Order, Order.id == OrderRiskSignals.order_id)
        .where(or_(*matches.values()), OrderRiskSignals.at >= since, OrderRiskSignals.order_id != order_id,
               Order.status == OrderStatus.PENDING_PAYMENT, Order.expires_at > now)).subquery("pending")
    # Driven from the (small, status-indexed) review queue: under review can be days old.
    review = (
        select(*[func.coalesce(func.sum(case((match, OrderRiskSignals.quantity), else_=0)), 0)
                 for match in matches.values()]).select_from(Order)
        .join(OrderRiskSignals, OrderRiskSignals.order_id == Order.id)
        .where(Order.status == OrderStatus.UNDER_REVIEW, or_(*matches.values()), Order.id != order_id)
    ).subquery("review")
    # Both one-row aggregates in one round trip (each keeps its own plan and index).
    row = (await session.execute(select(pending, review).select_from(pending.join(review, true())))).one()
    n = len(matches)
    return {dim: (int(row[k]) + int(row[2 * n + k]), row[n + k]) for k, dim in enumerate(matches)}


async def check_held_stock(*, session: AsyncSession, limits: HeldLimits, order_id: int, quantity: int, ip: str,
                           device: str, contact: str, at: float, now: dt.datetime) -> None:
    """Inside the transaction placing order `order_id` (`quantity` units): raise TooMuchStockHeld (rolling the
    order back) if its client would hold more than a limit. `at`: the checkout on the risk clock."""
    checks = [(dim, value, limit) for dim, value, limit in (("ip", ip, limits.per_ip),
                                                             ("device", device, limits.per_device),
                                                             ("contact", contact, limits.per_contact))
              if value and limit]
    if not checks:
        return
    if session.bind.dialect.name == "postgresql":
        # One client's checkouts one after the other: each counts what the previous one committed.
        await session.execute(_PG_LOCKS, {"locks": sorted({zlib.crc32(f"held:{dim}:{value}".encode()) - 2**31
                                                           for dim, value, _ in checks})})
    held = await _held(session, checks, since=at - limits.reservation_ttl_seconds - _SLACK_SECONDS, now=now,
                       order_id=order_id)
    for dimension, _, limit in checks:
        units, first_expiry = held[dimension]
        if units and units + quantity > limit:
            retry_after = max(int((first_expiry - now).total_seconds()) + 1, 1) if first_expiry else 3600
            raise TooMuchStockHeld(f"{_MESSAGES[dimension]}: pay or cancel them first, or wait until they expire",
                                   dimension=dimension, held_units=units, limit=limit, retry_after=retry_after)


async def payer_held_units(*, session: AsyncSession, payer: str, order_id: int) -> int:
    """Units the payer account (its keyed hash) has in other orders under review. Inside the payment's transaction;
    on PostgreSQL one payer's payments are counted one after the other (advisory lock, as at checkout)."""
    if session.bind.dialect.name == "postgresql":
        await session.execute(_PG_LOCKS, {"locks": [zlib.crc32(f"held:payer:{payer}".encode()) - 2**31]})
    return int(await session.scalar(
        select(func.coalesce(func.sum(OrderRiskSignals.quantity), 0)).select_from(Order)
        .join(OrderRiskSignals, OrderRiskSignals.order_id == Order.id)
        .where(Order.status == OrderStatus.UNDER_REVIEW, OrderRiskSignals.payer == payer,
               Order.id != order_id)) or 0)
