"""A card-key checkout on PostgreSQL in one statement (一条语句下单): lock the keys, insert the order and its first
event, reserve the keys and write the rows that go with a new order (its risk signals and counter events), all in
one round trip.

    WITH keys AS (SELECT id FROM inventory_card_key WHERE <sellable> ... LIMIT q FOR UPDATE SKIP LOCKED),
         placed AS (INSERT INTO orders_order ... SELECT ... WHERE (SELECT count(*) FROM keys) = q
                    ON CONFLICT (order_no) DO NOTHING RETURNING id),
         reserved AS (UPDATE inventory_card_key SET status = 'reserved', order_id = (SELECT id FROM placed) ...
                      WHERE id IN (SELECT id FROM keys) AND EXISTS (SELECT FROM placed)),
         event AS (INSERT INTO orders_order_event ... SELECT ... FROM placed),
         rider_0 AS (INSERT INTO <table> ... SELECT ... FROM placed), ...
         <takes: a coupon taken, points spent: data-modifying CTEs of their features, each only with the order>
    SELECT (SELECT id FROM placed), (SELECT count(*) FROM keys), <what each take did>

The same guarantees as the statements it replaces (orders.checkout): too few free keys -> nothing is written
(the keys it found stay locked until the transaction ends, as before); an order-number clash (the unique
constraint, 40 random bits a day) inserts nothing and the statement runs again with a fresh number, finding the
same keys (a transaction's own row locks never make it skip a row). SKIP LOCKED never waits, so the keys
cannot deadlock with another checkout. A take (`Take`: a member's coupon, points spent) may wait for a row lock (the
coupon's count, the member's points): each goes on only once the one before it took (`go_on`), so they lock in the
order given, the order of the statements they replace. SQLite keeps the statement-per-write path (it has no
data-modifying CTEs).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import (
    DateTime,
    Integer,
    String,
    Table,
    bindparam,
    cast,
    exists,
    func,
    insert,
    literal,
    null,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from quanyi import db_direct, sqlite_trip
from quanyi.inventory import service as inventory_service
from quanyi.inventory.models import CardKey, CardKeyStatus
from quanyi.orders import numbers
from quanyi.orders.models import Order, OrderEvent
from quanyi.shoptime import zone_of

__all__ = ["ORDER_ID", "ORDER_ID_TEXT", "Rider", "Take", "place_with_keys", "rider_rows", "write_riders"]


class _OrderIdMarker:
    def __init__(self, text: bool) -> None:
        self.text = text


ORDER_ID = _OrderIdMarker(text=False)  # a rider's column takes the new order's id
ORDER_ID_TEXT = _OrderIdMarker(text=True)  # ... as text (a counter event's member)


@dataclass(frozen=True)
class Rider:
    """A row that goes with a new order, written in the order's statement; `values` by column name, with
    ORDER_ID / ORDER_ID_TEXT where the new order's id belongs."""

    table: Table
    values: dict[str, Any]


# A take's part of the statement: (the new order's id, what must hold for it to go on, its name: the prefix of its
# CTEs and bind parameters) -> (its data-modifying CTEs, the columns the statement returns for it, what must hold
# for the next take to go on).
TakeBuilder = Callable[[Any, Any, str], tuple[Sequence[Any], Sequence[Any], Any]]


@dataclass(eq=False)
class Take:
    """Writes that go with a new order in its statement and may find they cannot be made (a coupon used up, points
    spent meanwhile): `build` (see TakeBuilder) gives its CTEs, built once per `shape` (with the statement's other
    parts); `params` its values (names without the prefix). Once the order is placed, `results` holds the columns
    it returned and `after(session, order_id, take)` (its feature's) answers for it: raises its refusal (the caller's
    transaction rolls back, the order with it) or finishes it."""

    shape: Hashable
    build: TakeBuilder
    params: dict[str, Any]
    after: Callable[[AsyncSession, int, Take], Awaitable[None]]
    results: tuple[Any, ...] = field(default=())


async def place_with_keys(session: AsyncSession, order: Order, *, sku_id: int, quantity: int, now: dt.datetime,
                          riders: Sequence[Rider] = (), takes: Sequence[Take] = ()) -> bool:
    """Insert `order` (all its columns set but id and number) holding `quantity` keys of the SKU, in one statement.
    False when fewer keys are free: nothing was written. On True the order has its id and number and is in the
    session like a loaded row (nothing is read back later), and each of `takes` has its `results` (the caller
    calls their `after`)."""
    values = numbers.column_values(order)
    built = _prebuilt(tuple(values), riders, takes)
    params: dict[str, Any] = {"q_sku_id": sku_id, "q_quantity": quantity, "q_now": now}
    for (names, keys), rider in zip(built.rider_params, riders, strict=True):
        params.update(zip(names, map(rider.values.__getitem__, keys), strict=True))
    for n, take in enumerate(takes):
        params.update({f"t{n}_{key}": value for key, value in take.params.items()})
    statement, widths = built.statement, built.widths
    zone = zone_of(session)
    while True:
        values["order_no"] = numbers.new_order_no(now, zone=zone)  # looked up at each call: tests force a clash
        params.update(zip(built.order_params, values.values(), strict=True))
        params["q_to_status"] = values["status"].value
        order_id, found, *rest = await db_direct.fetch_one(session, statement, params)  # type: ignore[misc]
        if found < quantity:
            return False
        if order_id is not None:
            break
    numbers.attach_inserted(session, order, values, order_id)
    start = 0
    for take, width in zip(takes, widths, strict=True):
        take.results, start = tuple(rest[start:start + width]), start + width
    return True


@dataclass(frozen=True)
class _Built:
    statement: db_direct.Direct
    widths: tuple[int, ...]  # how many columns each take returns
    order_params: tuple[str, ...]  # the order's bind parameters, in the order of its columns
    rider_params: tuple[tuple[tuple[str, ...], tuple[str, ...]], ...]  # each rider's bind parameters and its keys


_BUILT: dict[tuple[Any, ...], _Built] = {}
_MARKER_KIND = {id(ORDER_ID): 1, id(ORDER_ID_TEXT): 2}.get  # by identity: the markers are this module's two objects


def _prebuilt(columns: tuple[str, ...], riders: Sequence[Rider], takes: Sequence[Take]) -> _Built:
    """The statement for this shape (the order's columns, the riders' tables and columns with where the order's id
    goes, the takes' shapes) and the names of its bind parameters, built once per process: only the values change
    from one checkout to the next. (The shape is found with C-level calls: a checkout has ~30 rider values.)"""
    shape = (columns, tuple((rider.table, tuple(rider.values), tuple(map(_MARKER_KIND, map(id, rider.values.values()))))
                            for rider in riders),
             tuple(take.shape for take in takes))
    built = _BUILT.get(shape)
    if built is None:
        statement, widths = _statement(columns, riders, takes)
        rider_params = tuple(
            (tuple(f"r{n}_{key}" for key in keys), keys)
            for n, keys in enumerate(tuple(key for key, value in rider.values.items()
                                           if not isinstance(value, _OrderIdMarker)) for rider in riders))
        built = _BUILT[shape] = _Built(db_direct.Direct(statement), widths, tuple(f"o_{key}" for key in columns),
                                       rider_params)
    return built


def _statement(columns: tuple[str, ...], riders: Sequence[Rider],
               takes: Sequence[Take] = ()) -> tuple[Any, tuple[int, ...]]:
    table = Order.__table__
    now = bindparam("q_now", type_=DateTime(timezone=True))  # + an interval in the keys' condition
    quantity = bindparam("q_quantity", type_=Integer)
    keys = inventory_service.sellable_keys_query(sku_id=bindparam("q_sku_id", type_=Integer),  # type: ignore[arg-type]
                                                 quantity=quantity, now=now).cte("keys")  # type: ignore[arg-type]
    found = select(func.count()).select_from(keys).scalar_subquery()
    placed = (pg_insert(table)
              .from_select(list(columns), select(*[bindparam(f"o_{key}", type_=table.c[key].type) for key in columns])
                           .where(found == quantity))
              .on_conflict_do_nothing(index_elements=["order_no"])
              .returning(table.c.id).cte("placed"))
    placed_id = select(placed.c.id).scalar_subquery()
    any_placed = exists(select(placed.c.id))
    reserved = (update(CardKey.__table__)
                .where(CardKey.id.in_(select(keys.c.id)), any_placed)
                .values(status=CardKeyStatus.RESERVED, order_id=placed_id, reserved_at=now)
                .returning(CardKey.id).cte("reserved"))
    events = OrderEvent.__table__
    event = (pg_insert(events)
             .from_select(["order_id", "from_status", "to_status", "reason", "created_at"],
                          select(placed.c.id, null(), bindparam("q_to_status", type_=events.c.to_status.type),
                                 literal("order placed", events.c.reason.type), now))
             .returning(events.c.id).cte("event"))
    written = [reserved, event]
    for n, rider in enumerate(riders):
        values = [_rider_value(rider.table, f"r{n}_{key}", key, value, placed.c.id)
                  for key, value in rider.values.items()]
        written.append(pg_insert(rider.table)
                       .from_select(list(rider.values), select(*values).select_from(placed))  # only with the order
                       .cte(f"rider_{n}"))
    go_on, returned, widths = any_placed, [], []
    for n, take in enumerate(takes):  # each after the one before it (see the module's docstring)
        ctes, take_columns, go_on = take.build(placed_id, go_on, f"t{n}_")
        written.extend(ctes)
        returned.extend(take_columns)
        widths.append(len(take_columns))
    return select(placed_id, found, *returned).add_cte(*written), tuple(widths)


async def write_riders(session: AsyncSession, order_id: int, riders: Sequence[Rider]) -> None:
    """The riders of an order inserted on its own (SQLite, or a checkout `place_with_keys` does not cover): one
    INSERT per table."""
    for table, rows in rider_rows(riders, order_id).items():
        await session.execute(insert(table), rows)


def rider_rows(riders: Sequence[Rider], order_id: Any) -> dict[Table, list[dict[str, Any]]]:
    """The riders' rows by table, `order_id` where the new order's id belongs (ORDER_ID_TEXT: as text, unless
    `order_id` is a `sqlite_trip.Returned`, which carries that itself)."""
    by_table: dict[Table, list[dict[str, Any]]] = {}
    for rider in riders:
        by_table.setdefault(rider.table, []).append(
            {key: _order_id_value(order_id, value.text) if isinstance(value, _OrderIdMarker) else value
             for key, value in rider.values.items()})
    return by_table


def _order_id_value(order_id: Any, text: bool) -> Any:
    if isinstance(order_id, sqlite_trip.Returned):
        return sqlite_trip.Returned(order_id.step, text=text)
    return str(order_id) if text else order_id


def _rider_value(table: Table, name: str, key: str, value: Any, order_id: Any) -> Any:
    if isinstance(value, _OrderIdMarker):
        return cast(order_id, String) if value.text else order_id
    return bindparam(name, type_=table.c[key].type)
