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
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, case, func, or_, select, true
from sqlalchemy.ext.asyncio import AsyncSession

from quanyi.config import Settings
from quanyi.errors import DomainError
from quanyi.orders.models import Order
from quanyi.orders.state import OrderStatus
from quanyi.risk.locks import PG_LOCKS, lock_params
from quanyi.risk.models import OrderRiskSignals

__all__ = ["HeldLimits", "HeldCount", "TooMuchStockHeld", "held_checks", "held_refusal", "held_since", "lock_ids",
           "client_lock_ids", "lock_client", "check_held_stock", "payer_held_units"]

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


def held_checks(limits: HeldLimits, *, ip: str, device: str, contact: str) -> list[tuple[str, str, int]]:
    """(dimension, value, limit) of each held-stock limit that applies to this client."""
    dimensions = (("ip", ip, limits.per_ip), ("device", device, limits.per_device),
                  ("contact", contact, limits.per_contact))
    return [(dim, value, limit) for dim, value, limit in dimensions if value and limit]


def lock_ids(checks: list[tuple[str, str, int]]) -> set[int]:
    """The PostgreSQL advisory locks that serialize one client's checkouts (taken before counting)."""
    return {zlib.crc32(f"held:{dim}:{value}".encode()) - 2**31 for dim, value, _ in checks}


def client_lock_ids(*, ip: str, device: str, contact: str) -> set[int]:
    """The locks of every dimension this client has, whichever limits are on: what serializes one client's counted
    checkouts, both ways (risk.gate when the order-stage rules count; engine.screen_checkout's attempt and count)."""
    return lock_ids([(dim, value, 0) for dim, value in (("ip", ip), ("device", device), ("contact", contact)) if value])


class HeldCount:
    """The held-stock count of `checks` as one-row subqueries, to be selected alone or beside other counts in one
    statement (risk.gate.count_checkout); `refusal` reads their columns back (pending's, then review's)."""

    def __init__(self, checks: list[tuple[str, Any, int]], *, since: Any, now: Any, order_id: int | None) -> None:
        # The client's values, `since` and `now` may be bind parameters (risk.gate builds the statement once).
        self.checks, self.now = checks, now
        matches = {dim: _COLUMNS[dim] == value for dim, value, _ in checks}
        others = [] if order_id is None else [OrderRiskSignals.order_id != order_id]
        # Driven from the client's own signals (the ip / device / contact indexes), each looked up in orders by its
        # primary key: never from the orders waiting for payment, of which a flash sale has hundreds at any moment
        # (a join let PostgreSQL walk all of them per checkout: ~300 buffers instead of ~10).
        # Only the id in its WHERE (the rest in a CASE): no other index of orders can serve it.
        reserved_until = (select(case((and_(Order.status == OrderStatus.PENDING_PAYMENT, Order.expires_at > now),
                                       Order.expires_at)))
                          .where(Order.id == OrderRiskSignals.order_id)
                          .correlate(OrderRiskSignals).scalar_subquery())
        mine = (select(*[_COLUMNS[dim] for dim in matches], OrderRiskSignals.quantity,
                       reserved_until.label("reserved_until"))
                .where(or_(*matches.values()), OrderRiskSignals.at >= since, *others)
                .offset(0)  # a planner fence: the signals first, the order lookup once per signal row
                .subquery("mine"))
        held = {dim: mine.c[_COLUMNS[dim].key] == value for dim, value, _ in checks}
        self.pending = (
            select(*[func.coalesce(func.sum(case((match, mine.c.quantity), else_=0)), 0) for match in held.values()],
                   *[func.min(case((match, mine.c.reserved_until))) for match in held.values()])
            .where(mine.c.reserved_until.is_not(None))).subquery("pending")
        # Driven from the (small, status-indexed) review queue: under review can be days old.
        self.review = (
            select(*[func.coalesce(func.sum(case((match, OrderRiskSignals.quantity), else_=0)), 0)
                     for match in matches.values()]).select_from(Order)
            .join(OrderRiskSignals, OrderRiskSignals.order_id == Order.id)
            .where(Order.status == OrderStatus.UNDER_REVIEW, or_(*matches.values()),
                   *([] if order_id is None else [Order.id != order_id]))
        ).subquery("review")

    @property
    def width(self) -> int:
        return 3 * len(self.checks)  # pending: units, then first expiry, per dimension; review: units

    def refusal(self, row: Sequence[Any], quantity: int) -> TooMuchStockHeld | None:
        """The refusal for a checkout of `quantity` units given the selected columns (`width` of them), or None."""
        return held_refusal(self.checks, self.now, row, quantity)


def held_refusal(checks: list[tuple[str, str, int]], now: dt.datetime, row: Sequence[Any],
                 quantity: int) -> TooMuchStockHeld | None:
    """`HeldCount.refusal` for a count selected by a statement built once (risk.gate): the client's `checks`, the
    `now` it counted at."""
    n = len(checks)
    for k, (dimension, _, limit) in enumerate(checks):
        units, first_expiry = int(row[k]) + int(row[2 * n + k]), row[n + k]
        if units and units + quantity > limit:
            retry_after = max(int((first_expiry - now).total_seconds()) + 1, 1) if first_expiry else 3600
            return TooMuchStockHeld(f"{_MESSAGES[dimension]}: pay or cancel them first, or wait until they expire",
                                    dimension=dimension, held_units=units, limit=limit, retry_after=retry_after)
    return None


def held_since(limits: HeldLimits, at: float) -> float:
    """Unpaid orders placed before this (risk clock) hold nothing any more."""
    return at - limits.reservation_ttl_seconds - _SLACK_SECONDS


async def lock_client(*, session: AsyncSession, limits: HeldLimits, ip: str, device: str, contact: str) -> None:
    """PostgreSQL: take now the advisory locks `check_held_stock` will take, for a transaction that locks rows before
    it checks (the general way's order: a shared code's row, coupons, supplier mappings). The one-transaction
    checkout takes them before any row (risk.gate); taken after those rows, the two could wait for each other."""
    checks = held_checks(limits, ip=ip, device=device, contact=contact)
    if checks and session.bind.dialect.name == "postgresql":
        await session.execute(PG_LOCKS, lock_params(lock_ids(checks)))


async def check_held_stock(*, session: AsyncSession, limits: HeldLimits, order_id: int, quantity: int, ip: str,
                           device: str, contact: str, at: float, now: dt.datetime) -> None:
    """Inside the transaction placing order `order_id` (`quantity` units): raise TooMuchStockHeld (rolling the
    order back) if its client would hold more than a limit. `at`: the checkout on the risk clock."""
    checks = held_checks(limits, ip=ip, device=device, contact=contact)
    if not checks:
        return
    if session.bind.dialect.name == "postgresql":
        # One client's checkouts one after the other: each counts what the previous one committed.
        await session.execute(PG_LOCKS, lock_params(lock_ids(checks)))
    count = HeldCount(checks, since=held_since(limits, at), now=now, order_id=order_id)
    # Both one-row aggregates in one round trip (each keeps its own plan and index).
    row = (await session.execute(select(count.pending, count.review)
                                 .select_from(count.pending.join(count.review, true())))).one()
    refusal = count.refusal(row, quantity)
    if refusal is not None:
        raise refusal


async def payer_held_units(*, session: AsyncSession, payer: str, order_id: int) -> int:
    """Units the payer account (its keyed hash) has in other orders under review. Inside the payment's transaction;
    on PostgreSQL one payer's payments are counted one after the other (advisory lock, as at checkout)."""
    if session.bind.dialect.name == "postgresql":
        await session.execute(PG_LOCKS, lock_params([zlib.crc32(f"held:payer:{payer}".encode()) - 2**31]))
    return int(await session.scalar(
        select(func.coalesce(func.sum(OrderRiskSignals.quantity), 0)).select_from(Order)
        .join(OrderRiskSignals, OrderRiskSignals.order_id == Order.id)
        .where(Order.status == OrderStatus.UNDER_REVIEW, OrderRiskSignals.payer == payer,
               Order.id != order_id)) or 0)
