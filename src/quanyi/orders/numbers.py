"""Order numbers (订单号): short, readable over the phone, and not guessable.

Format: YYMMDD (the shop's date in QUANYI_SHOP_TIMEZONE, handy for support) + 8 Crockford base32
characters from a CSPRNG (40 bits: about a trillion possibilities per day). Example: 261125K7M2Q9XD.
Lookups are rate limited on top of that, and an order number alone never grants access to an order's
card keys.
"""

from __future__ import annotations

import base64
import datetime as dt
import re
import secrets
from collections.abc import Sequence
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.orm import make_transient_to_detached
from sqlalchemy.orm.instrumentation import manager_of_class

from quanyi import sqlite_trip
from quanyi.orders.models import Order
from quanyi.shoptime import shop_day, zone_of

__all__ = ["new_order_no", "normalize_order_no", "new_order_row", "column_values", "insert_order",
           "insert_order_in_one_trip", "attach_inserted", "core_connection", "ORDER_NO_PATTERN", "ORDER_NO_PART"]

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_FROM_BASE32 = bytes.maketrans(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", _ALPHABET.encode())
ORDER_NO_PATTERN = re.compile(r"^\d{6}[0-9A-HJKMNP-TV-Z]{8}$")
# What can be part of an order number (upper case): the staff search reads the orders for nothing else.
ORDER_NO_PART = re.compile(r"^[0-9A-HJKMNP-TV-Z]{1,14}$")
_CONFUSABLE = str.maketrans({"I": "1", "L": "1", "O": "0"})


def new_order_no(now: dt.datetime | None = None, *, zone: ZoneInfo) -> str:
    day = shop_day(now or dt.datetime.now(dt.UTC), zone).strftime("%y%m%d")
    # 40 random bits as 8 base32 digits, each 5 bits, in the Crockford alphabet (one CSPRNG call, not eight).
    return day + base64.b32encode(secrets.token_bytes(5)).translate(_FROM_BASE32).decode()


def normalize_order_no(text: str) -> str | None:
    """What a buyer typed -> canonical order number, or None if it cannot be one."""
    if len(text) > 64:
        return None
    cleaned = re.sub(r"[\s\-_]", "", text).upper().translate(_CONFUSABLE)
    return cleaned if ORDER_NO_PATTERN.match(cleaned) else None


async def insert_order(session: AsyncSession, order: Order, now: dt.datetime) -> None:
    """Give a new `order` its number and insert it in one statement. 40 random bits a day make a clash
    vanishingly rare: rather than a look-up before every insert, the unique constraint finds one
    (ON CONFLICT DO NOTHING inserts nothing) and a fresh number is drawn. The INSERT is built once per dialect
    (the values go in as parameters)."""
    values = column_values(order)
    statement = _insert(session.bind.dialect.name)
    connection = await core_connection(session)
    zone = zone_of(session)
    while True:
        values["order_no"] = new_order_no(now, zone=zone)
        order_id = (await connection.execute(statement, values)).scalar()
        if order_id is not None:
            break
    attach_inserted(session, order, values, order_id)


async def insert_order_in_one_trip(session: AsyncSession, order: Order, now: dt.datetime,
                                   then: Sequence[sqlite_trip.Step]) -> list[tuple[int, list[Any]]]:
    """SQLite: `insert_order`, and the statements `then` (the order's other rows: their parameters take the new id
    as `sqlite_trip.Returned(0)`) in the same trip to aiosqlite's thread (quanyi.sqlite_trip). On a number clash
    nothing of `then` runs, and the trip is sent again with a fresh number. Returns what each step that ran gave
    (`sqlite_trip.run`; the order's INSERT first)."""
    values = column_values(order)
    steps = [sqlite_trip.Step(_insert("sqlite"), values, expect=sqlite_trip.returned_a_row), *then]
    connection = await core_connection(session)
    zone = zone_of(session)
    while True:
        values["order_no"] = new_order_no(now, zone=zone)
        done = await sqlite_trip.run(connection, steps)
        if done[0][1]:
            break
    attach_inserted(session, order, values, done[0][1][0][0])
    return done


_COLUMNS = tuple(column.key for column in Order.__table__.columns if column.key != "id")
_KEYS = frozenset(_COLUMNS)
_new_instance = manager_of_class(Order).new_instance


def new_order_row(**values: Any) -> Order:
    """A new order holding `values` (by column name), to be inserted by a statement of its own (`insert_order`,
    `insert_order_in_one_trip`, orders.one_statement) and attached with `attach_inserted`. Built without the ORM's
    per-attribute events of `Order(...)`: it is never pending in a session (never flushed), so the history they
    record would be thrown away by `attach_inserted` anyway. Columns not given are None, as with `Order(...)`."""
    if not values.keys() <= _KEYS:
        raise TypeError(f"not columns of an order: {sorted(values.keys() - _KEYS)}")
    order = _new_instance()
    order.__dict__.update(values)
    return order


def column_values(order: Order) -> dict[str, Any]:
    """Every column of a new order but its id (None where it holds no value), by name."""
    held = order.__dict__
    return {key: held.get(key) for key in _COLUMNS}


def _insert(name: str) -> Any:
    statement = _INSERTS.get(name)
    if statement is None:
        table = Order.__table__
        dialect = postgresql if name == "postgresql" else sqlite
        statement = _INSERTS[name] = (dialect.insert(table).on_conflict_do_nothing(index_elements=["order_no"])
                                      .returning(table.c.id))
    return statement


_INSERTS: dict[str, Any] = {}


async def core_connection(session: AsyncSession) -> AsyncConnection:
    """The session's connection, for a statement built once and run through Core (no ORM execution layer); pending
    ORM changes are flushed first, as `session.execute` would."""
    if session.new or session.dirty or session.deleted:
        await session.flush()
    return await session.connection()


def attach_inserted(session: AsyncSession, order: Order, values: dict[str, Any], order_id: int) -> None:
    """`order` was inserted with `values` as row `order_id`: the session tracks it as a loaded row."""
    held = order.__dict__  # every column loaded, as a query loads them (no attribute events): nothing is read back
    held.update(values)
    held["id"] = order_id
    make_transient_to_detached(order)  # the row exists: the session tracks it without inserting it again
    session.add(order)
