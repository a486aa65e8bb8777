"""Every column type the shop's two dialects support comes back from a direct statement (quanyi.db_direct) as
SQLAlchemy's own execution returns it, value for value and type for type, on both backends. On PostgreSQL some result
processors depend on the type the server describes for the column (asyncpg's Numeric: Decimal from numeric, from
float8, or from an integer), so db_direct learns the columns' type codes at a statement's first run."""

from __future__ import annotations

import datetime as dt
import enum
import uuid
from decimal import Decimal

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Enum,
    Float,
    Integer,
    Interval,
    LargeBinary,
    MetaData,
    Numeric,
    SmallInteger,
    String,
    Table,
    Text,
    Time,
    Uuid,
    bindparam,
    cast,
    func,
    insert,
    select,
    type_coerce,
)

from quanyi import db_direct
from quanyi.db import UTCDateTime


class Mood(enum.Enum):
    CALM = "calm"
    BUSY = "busy"


_metadata = MetaData()
_kinds = Table(
    "test_direct_kinds", _metadata,
    Column("id", Integer, primary_key=True),
    Column("big", BigInteger), Column("small", SmallInteger),
    Column("price", Numeric(12, 2)), Column("ratio", Numeric(10, 4, asdecimal=False)),
    Column("weight", Float), Column("weight_decimal", Float(asdecimal=True)),
    Column("name", String(40)), Column("body", Text), Column("flag", Boolean),
    Column("at", DateTime(timezone=True)), Column("naive_at", DateTime), Column("utc_at", UTCDateTime),
    Column("day", Date), Column("clock", Time), Column("span", Interval),
    Column("doc", JSON), Column("mood", Enum(Mood)), Column("mood_text", Enum(Mood, native_enum=False)),
    Column("blob", LargeBinary), Column("uid", Uuid),
)
_VALUES = {
    "big": 2**40, "small": 7, "price": Decimal("1234.56"), "ratio": 0.125, "weight": 2.5,
    "weight_decimal": Decimal("0.5"), "name": "卡密", "body": "long\ntext", "flag": True,
    "at": dt.datetime(2026, 12, 5, 8, 30, 1, 250000, tzinfo=dt.UTC), "naive_at": dt.datetime(2026, 12, 5, 8, 30),
    "utc_at": dt.datetime(2026, 12, 5, 16, 30, tzinfo=dt.timezone(dt.timedelta(hours=8))),
    "day": dt.date(2026, 12, 5), "clock": dt.time(23, 59, 58), "span": dt.timedelta(days=1, seconds=5),
    "doc": {"keys": [1, 2], "名": None}, "mood": Mood.BUSY, "mood_text": Mood.CALM, "blob": b"\x00\xff",
    "uid": uuid.UUID("12345678-1234-5678-1234-567812345678"),
}
_kind_columns = [column for column in _kinds.c if column.name != "id"]
_INSERT = db_direct.Direct(insert(_kinds).values({column.name: bindparam(f"b_{column.name}", type_=column.type)
                                                  for column in _kind_columns}).returning(*_kind_columns))
_ROWS = db_direct.Direct(select(*_kind_columns).order_by(_kinds.c.id))
_SUMS = db_direct.Direct(select(
    func.sum(_kinds.c.price),  # numeric
    type_coerce(func.sum(_kinds.c.weight), Numeric(asdecimal=True)),  # float8 on PostgreSQL, read as a Decimal
    type_coerce(func.count(), Numeric(asdecimal=True)),  # an integer type code, read as a Decimal
    cast(bindparam("b_price", type_=Numeric(12, 2)), Numeric(12, 2)),
    func.max(_kinds.c.utc_at), func.count(),
))


def _same(got: list[tuple], expected: list[tuple]) -> None:
    assert got == expected
    assert [[type(value) for value in row] for row in got] == [[type(value) for value in row] for row in expected]


async def test_every_column_type_comes_back_as_sqlalchemys_execution_returns_it(ctx):
    async with ctx.db.write_engine.begin() as connection:
        await connection.run_sync(_metadata.create_all)
    params = {f"b_{name}": value for name, value in _VALUES.items()}
    async with ctx.db.transaction() as session:
        inserted = await db_direct.fetch_all(session, _INSERT, params)
        _same(inserted, [tuple((await session.execute(_INSERT.statement, params)).one())])
        await db_direct.execute(session, _INSERT, dict.fromkeys(params))  # a row of NULLs
    async with ctx.db.transaction() as session:
        for direct, params in [(_ROWS, {}), (_SUMS, {"b_price": Decimal("9.99")})]:
            expected = [tuple(row) for row in (await session.execute(direct.statement, params)).all()]
            _same(await db_direct.fetch_all(session, direct, params), expected)  # the first run
            _same(await db_direct.fetch_all(session, direct, params), expected)  # and again
    async with ctx.db.read_session() as session:
        direct, by_orm, nulls = await _fetch(session, _ROWS, {})
    assert direct == by_orm and nulls == (None,) * len(_kind_columns)
    price, doc, mood, utc_at = (direct[_kind_columns.index(_kinds.c[name])] for name in ("price", "doc", "mood",
                                                                                           "utc_at"))
    assert (price, doc, mood) == (Decimal("1234.56"), _VALUES["doc"], Mood.BUSY)
    driven = db_direct.Direct(_ROWS.statement)  # its first run on the driver (quanyi.db_driven on PostgreSQL)
    async with ctx.db.driver_transaction() as session:
        _same(await db_direct.fetch_all(session, driven, {}), [direct, by_orm, nulls])
    assert utc_at == _VALUES["utc_at"] and utc_at.tzinfo == dt.UTC
    async with ctx.db.read_session() as session:
        [sums] = await _fetch(session, _SUMS, {"b_price": Decimal("9.99")})
    assert sums[:4] == (Decimal("2469.12"), Decimal("5"), Decimal("3"), Decimal("9.99"))
    assert sums[4] == _VALUES["utc_at"] and sums[5] == 3


async def _fetch(session, direct: db_direct.Direct, params: dict) -> list[tuple]:
    return await db_direct.fetch_all(session, direct, params)
