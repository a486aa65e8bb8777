"""The checkout gate (下单闸口): a checkout's flood limits and held-stock limits, counted inside the order's own
transaction before the order exists, in one statement (on PostgreSQL after one statement taking the advisory locks
of both). Used when no order-stage rule is enabled (a shop without rules, the flash-sale path): the rules' screening
runs transactions of its own and keeps the older sequence (risk.checkout).

The limits are the same as `engine.hit_flood_limits` and `holdings.check_held_stock` apply: a checkout is counted
against the flood limits whether it is refused or not (the caller writes `events` with the order, or alone when it
refuses), and one client's checkouts are serialized the same way (SQLite's writer lock; the same advisory locks on
PostgreSQL, held to the end of the order's transaction). The gate counts by who checks out (`Client`), known before
the SKU is read, so the checkout's SKU read rides in the count statement (`Beside`, catalog.sku_row): one statement
fewer per checkout.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import bindparam, select, true
from sqlalchemy.ext.asyncio import AsyncSession

from quanyi import db_direct, db_driven
from quanyi.db import Database, utcnow
from quanyi.errors import DomainError
from quanyi.orders.models import Order
from quanyi.orders.one_statement import ORDER_ID, Rider
from quanyi.risk.counters import DatabaseCounters, Event, fresh_member
from quanyi.risk.engine import CheckoutRateLimited, RiskRuntime, flood_keys
from quanyi.risk.holdings import HeldCount, client_lock_ids, held_checks, held_refusal, held_since, lock_ids
from quanyi.risk.locks import PG_LOCKS, lock_params
from quanyi.risk.models import CounterEvent, OrderRiskSignals
from quanyi.risk.rules import Signals

__all__ = ["Beside", "Client", "Gate", "Opening", "count_checkout"]

_PG_LOCKS = db_direct.Direct(PG_LOCKS)


@dataclass
class Gate:
    """What the gate found. `flood`: the flood-limit refusal (429), checked first; `held`: the held-stock refusal,
    which checkout raises only once stock is found (a sold-out answer comes first, as it always did); `events`:
    this checkout's flood-limit hits, still to be written in the caller's transaction (database counters)."""

    runtime: RiskRuntime
    flood: DomainError | None = None
    held: DomainError | None = None
    events: list[Event] = field(default_factory=list)

    def check_held(self) -> None:
        if self.held is not None:
            raise self.held

    async def write_events(self, session: AsyncSession, at: float) -> None:
        """A refused checkout still counts: its hits go into the caller's transaction, which then commits."""
        if self.events:
            await self.runtime.counters.record(self.events, at=at, session=session)
            self.events = []

    def riders(self, signals: Signals) -> list[Rider] | None:
        """What `engine.remember_order` writes for a placed order (its risk signals: the database counters count placed
        orders from them, no `placed` event) and this checkout's flood-limit hits, as rows that go with the order's
        insert (orders.one_statement: on PostgreSQL in the same statement). None when the counters are not in the
        database (Redis): then `remember_order` records them once the order commits, as always."""
        if not isinstance(self.runtime.counters, DatabaseCounters):
            return None
        rows = [Rider(OrderRiskSignals.__table__, {
            "order_id": ORDER_ID, "ip": signals.ip, "device": signals.device, "contact": signals.contact,
            "sku_id": signals.sku_id, "quantity": signals.quantity, "amount_cents": signals.amount_cents,
            "at": signals.at, "paid": False, "review_reason": None, "payer": None})]
        rows += [Rider(CounterEvent.__table__, {"key": key[:200], "member": member, "at": signals.at})
                 for key, member in self.events]
        return rows

    async def riders_written(self, session: AsyncSession, at: float) -> None:
        """The riders went in with the order; prune old counter events now and then. (`events` stay: should the
        transaction still roll back, `write_events_alone` counts them.)"""
        if isinstance(self.runtime.counters, DatabaseCounters):
            await self.runtime.counters.prune_now_and_then(session, at)

    async def write_events_alone(self, db: Database, at: float) -> None:
        """The order's transaction rolled back with the hits in it: count them in a transaction of their own."""
        if self.events:
            async with db.transaction() as session:
                await self.runtime.counters.record(self.events, at=at, session=session)
            self.events = []


@dataclass(frozen=True)
class Client:
    """Who checks out, as the gate counts them (known before the SKU is read): the signals' ip, device, contact,
    quantity and risk clock (`Signals.at`)."""

    ip: str
    device: str
    contact: str
    quantity: int
    at: float

    def value(self, dimension: str) -> str:
        """As `Signals.value` for the dimensions the gate counts by."""
        return {"ip": self.ip, "device": self.device, "contact": self.contact}.get(dimension, "")


@dataclass(frozen=True)
class Beside:
    """A read of at most one row that rides in the gate's count statement (the checkout's SKU, catalog.sku_row):
    `subquery` built once (its first column is never NULL in a row it finds), `params` its bind values."""

    subquery: Any
    params: dict[str, Any]


@dataclass
class Opening:
    """The gate counted in the database; `beside` the row read beside the counts (None: none found, or none asked).
    `open` finishes it once the checkout goes on."""

    runtime: RiskRuntime
    client: Client
    flood: dict[str, int]
    checks: list[tuple[str, str, int]]
    events: list[Event]
    row: tuple[Any, ...]
    now: Any
    beside: tuple[Any, ...] | None = None
    also: tuple[Any, ...] = ()

    async def open(self) -> Gate:
        """The gate: the flood hits counted (Redis counters: recorded now), the refusals found. Raises nothing."""
        gate = Gate(self.runtime, events=self.events)
        row, counts = self.row, []
        if self.events:
            counts = [int(n) + 1 for n in row[:len(self.events)]]  # + this checkout's own hit, written later
            row = row[len(self.events):]
        elif self.flood:  # Redis: counted and recorded at once, atomically, by the counters themselves
            counts = await self.runtime.counters.hit_many(list(self.flood), at=self.client.at,
                                                          window_seconds=self.runtime.checkout_window_seconds)
        if any(n > limit for n, limit in zip(counts, self.flood.values(), strict=True)):
            gate.flood = CheckoutRateLimited("too many checkouts in a short time; please wait and try again",
                                             retry_after=self.runtime.checkout_window_seconds)
        elif self.checks:
            gate.held = held_refusal(self.checks, self.now, row, self.client.quantity)
        return gate


async def count_checkout(*, session: AsyncSession, runtime: RiskRuntime, client: Client,
                         beside: Beside | None = None, also: Beside | None = None) -> Opening:
    """In the order's transaction, before anything is written: count the checkout against the flood limits and the
    client's held stock (on PostgreSQL after the advisory locks, in a statement of their own), reading `beside` in
    the same statement, and `also` (a read of exactly one row: the order-stage rules' counts, risk.order_stage) into
    `Opening.also`. Raises nothing; `Opening.open` gives the gate (the caller raises `gate.flood`, then
    `gate.check_held()` once it has stock)."""
    flood = flood_keys(runtime, client)  # type: ignore[arg-type]  # Client.value: the dimensions it counts by
    checks = held_checks(runtime.held, ip=client.ip, device=client.device, contact=client.contact)
    counters = runtime.counters
    events: list[Event] = []
    params: dict[str, object] = {}
    locks: set[int] = set()
    if flood and isinstance(counters, DatabaseCounters):
        events = [(key[:200], fresh_member()) for key in flood]
        params.update({f"g_flood_{n}": key for n, (key, _) in enumerate(events)})
        params.update(g_low=client.at - runtime.checkout_window_seconds, g_at=client.at)
        locks |= counters.lock_ids(list(flood))
    now = utcnow()
    if checks:
        params.update({f"g_{dim}": value for dim, value, _ in checks})
        params.update(g_since=held_since(runtime.held, client.at), g_now=now)
        locks |= lock_ids(checks)
    if also is not None:
        # The order-stage rules count this client's attempts (risk.order_stage), which commit with its order: one
        # client's checkouts in turn, so each count sees what the previous one committed, even with the held-stock
        # limits (whose locks these are) off. The general way takes the same locks around its attempt and its count
        # (engine.screen_checkout): the two ways count one client's checkouts one after the other too.
        locks |= client_lock_ids(ip=client.ip, device=client.device, contact=client.contact)
    if locks and session.bind.dialect.name == "postgresql":
        # Before counting, in a statement of its own: the count's snapshot then sees what the previous checkout of
        # this client committed. One statement, one sorted order: two checkouts never wait crosswise.
        # In a driven transaction not begun yet (quanyi.db_driven), BEGIN goes in the same round trip.
        driven = db_driven.driven_of(session)
        if driven is None or await db_driven.begin_with_locks(driven, sorted(locks)) is None:
            await db_direct.execute(session, _PG_LOCKS, lock_params(locks))
    opening = Opening(runtime, client, flood, checks, events, (), now)
    if params or beside is not None or also is not None:
        statement = _count_statement(len(events), tuple(dim for dim, _, _ in checks),
                                     None if beside is None else beside.subquery,
                                     None if also is None else also.subquery)
        if beside is not None:
            params.update(beside.params)
        if also is not None:
            params.update(also.params)
        row = await db_direct.fetch_one(session, statement, params) or ()  # counts: always one row
        width = len(row) - (len(beside.subquery.c) if beside is not None and row else 0)
        if beside is not None and row and row[width] is not None:
            opening.beside = row[width:]
        if also is not None:
            opening.also = row[width - len(also.subquery.c):width]
            width -= len(also.subquery.c)
        opening.row = row[:width]
    return opening


_BUILT: dict[tuple[int, tuple[str, ...], Any, Any], db_direct.Direct] = {}


def _count_statement(flood_keys: int, dimensions: tuple[str, ...], beside: Any = None,
                     also: Any = None) -> db_direct.Direct:
    """The gate's count for this shape (how many flood keys, which held-stock dimensions, what is read beside and
    also), built once per process with bind parameters (g_flood_<n>, g_low, g_at; g_<dimension>, g_since, g_now; the
    beside's and also's own): only the values change. The counts (and `also`, one row) are one row; `beside` is LEFT
    JOINed onto it (its columns NULL when it finds nothing), or selected alone when nothing is counted."""
    shape = (flood_keys, dimensions, beside, also)
    statement = _BUILT.get(shape)
    if statement is None:
        columns: list[Any] = []
        if flood_keys:
            key_type, at_type = CounterEvent.__table__.c.key.type, CounterEvent.__table__.c.at.type
            columns.append(DatabaseCounters.counts_subquery(
                [bindparam(f"g_flood_{n}", type_=key_type) for n in range(flood_keys)],
                low=bindparam("g_low", type_=at_type), high=bindparam("g_at", type_=at_type)))
        if dimensions:
            signals = OrderRiskSignals.__table__
            held = HeldCount([(dim, bindparam(f"g_{dim}", type_=signals.c[dim].type), 0) for dim in dimensions],
                             since=bindparam("g_since", type_=signals.c.at.type),
                             now=bindparam("g_now", type_=Order.__table__.c.expires_at.type), order_id=None)
            columns += [held.pending, held.review]
        if also is not None:
            columns.append(also)
        if beside is not None:
            columns.append(beside)
        joined = columns[0]
        for other in columns[1:]:
            joined = joined.outerjoin(other, true()) if other is beside else joined.join(other, true())
        statement = _BUILT[shape] = db_direct.Direct(select(*columns).select_from(joined))
    return statement
