"""Hot statements on the driver (quanyi.db_direct) behave as SQLAlchemy's execution of the same statement: inside the
session's transaction (even as its first statement), with the same parameter and result types, seen by statement
listeners, and with the same errors."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import aiosqlite
import pytest
from sqlalchemy import Numeric, bindparam, cast, event, func, insert, literal, select, update
from sqlalchemy.exc import IntegrityError

from quanyi import db_direct, logins
from quanyi.catalog import sku_row
from quanyi.loyalty import levels as loyalty_levels
from quanyi.members.models import LoginMethod, Member
from quanyi.members.sessions import open_member_session
from quanyi.orders import member_checkout
from quanyi.orders.models import Order, OrderEvent
from quanyi.orders.state import OrderStatus
from quanyi.risk import gate
from quanyi.risk.models import CounterEvent

_INSERT_EVENT = db_direct.Direct(insert(CounterEvent.__table__).values(
    key=bindparam("b_key"), member=literal("m"), at=bindparam("b_at")).returning(CounterEvent.id))
_COUNT_EVENTS = db_direct.Direct(select(func.count()).select_from(CounterEvent)
                                 .where(CounterEvent.key == bindparam("b_key")))
_ORDER = db_direct.Direct(select(Order.id, Order.status, Order.created_at, Order.order_no)
                          .where(Order.order_no == bindparam("b_no")))
_MOVE_ORDER = db_direct.Direct(update(Order.__table__).where(Order.order_no == bindparam("b_no"))
                               .values(status=bindparam("b_status"), updated_at=bindparam("b_at"))
                               .returning(Order.status, Order.updated_at))
_EVENT_WITH_ID = db_direct.Direct(insert(OrderEvent.__table__).values(
    id=bindparam("b_id"), order_id=bindparam("b_order_id"), from_status=None, to_status="x", reason="r",
    created_at=bindparam("b_at")))


async def test_a_direct_statement_first_in_a_transaction_rolls_back_with_it(ctx):
    with pytest.raises(RuntimeError):
        async with ctx.db.transaction() as session:
            row = await db_direct.fetch_one(session, _INSERT_EVENT, {"b_key": "direct:first", "b_at": 1.0})
            assert row is not None and row[0] > 0
            assert await db_direct.fetch_one(session, _COUNT_EVENTS, {"b_key": "direct:first"}) == (1,)
            raise RuntimeError("roll back")
    async with ctx.db.transaction() as session:
        assert await db_direct.fetch_one(session, _COUNT_EVENTS, {"b_key": "direct:first"}) == (0,)
        await db_direct.execute(session, _INSERT_EVENT, {"b_key": "direct:first", "b_at": 2.0})
    async with ctx.db.read_session() as session:
        assert await session.scalar(select(func.count()).select_from(CounterEvent)
                                    .where(CounterEvent.key == "direct:first")) == 1


async def test_parameters_and_results_have_the_types_sqlalchemy_gives_them(ctx, order):
    async with ctx.db.read_session() as session:
        loaded = await session.scalar(select(Order).where(Order.order_no == order["order_no"]))
    async with ctx.db.transaction() as session:
        order_id, status, created_at, order_no = await db_direct.fetch_one(session, _ORDER,
                                                                           {"b_no": order["order_no"]})
        assert (order_id, status, created_at, order_no) == (loaded.id, loaded.status, loaded.created_at,
                                                            loaded.order_no)
        assert status is OrderStatus.PENDING_PAYMENT and created_at.tzinfo is not None
        at = dt.datetime(2030, 1, 2, 3, 4, 5, tzinfo=dt.timezone(dt.timedelta(hours=8)))  # stored as UTC
        rows = await db_direct.fetch_all(session, _MOVE_ORDER, {"b_no": order["order_no"],
                                                                "b_status": OrderStatus.CANCELLED, "b_at": at})
        assert rows == [(OrderStatus.CANCELLED, at)] and rows[0][1].utcoffset() == dt.timedelta(0)
        assert await db_direct.fetch_one(session, _ORDER, {"b_no": "nope"}) is None
    async with ctx.db.read_session() as session:
        assert (await session.scalar(select(Order.updated_at).where(Order.order_no == order["order_no"]))) == at


async def test_statement_listeners_see_direct_statements(ctx):
    seen: list[str] = []

    def listen(_conn, _cursor, statement, *_args):
        seen.append(statement)

    engine = ctx.db.write_engine.sync_engine
    event.listen(engine, "before_cursor_execute", listen)
    try:
        async with ctx.db.transaction() as session:
            await db_direct.fetch_one(session, _COUNT_EVENTS, {"b_key": "direct:seen"})
    finally:
        event.remove(engine, "before_cursor_execute", listen)
    assert [s for s in seen if "risk_counter_event" in s] and all("count(*)" in s for s in seen
                                                                  if "risk_counter_event" in s)


async def test_a_constraint_violation_is_sqlalchemys_integrity_error_and_rolls_back(ctx, order):
    async with ctx.db.read_session() as session:
        order_id = await session.scalar(select(Order.id).where(Order.order_no == order["order_no"]))
    event_id = 10**9
    with pytest.raises(IntegrityError):
        async with ctx.db.transaction() as session:
            await db_direct.execute(session, _INSERT_EVENT, {"b_key": "direct:violation", "b_at": 1.0})
            params = {"b_id": event_id, "b_order_id": order_id, "b_at": dt.datetime.now(dt.UTC)}
            await db_direct.execute(session, _EVENT_WITH_ID, params)
            await db_direct.execute(session, _EVENT_WITH_ID, params)  # the same id again
    async with ctx.db.transaction() as session:  # the connection is usable again, and nothing stayed
        assert await db_direct.fetch_one(session, _COUNT_EVENTS, {"b_key": "direct:violation"}) == (0,)
        assert await session.scalar(select(func.count()).select_from(OrderEvent)
                                    .where(OrderEvent.id == event_id)) == 0


async def test_a_missing_parameter_is_refused_and_an_expanding_one_is_not_taken(ctx):
    async with ctx.db.transaction() as session:
        with pytest.raises(Exception, match="b_key"):
            await db_direct.fetch_one(session, _COUNT_EVENTS, {})
    expanding = db_direct.Direct(select(CounterEvent.id).where(CounterEvent.id.in_(bindparam("b_ids"))))
    with pytest.raises(ValueError, match="expanding"):
        expanding.plan(ctx.db.write_engine.sync_engine.dialect)


_TYPES = db_direct.Direct(select(Order.id, Order.status, Order.created_at, Order.expires_at, literal(True),
                                 bindparam("b_at", type_=Order.__table__.c.created_at.type))
                          .where(Order.order_no == bindparam("b_no")))
_DECIMAL = db_direct.Direct(select(cast(bindparam("b_decimal", type_=Numeric(10, 2)), Numeric(10, 2)), Order.id)
                            .where(Order.order_no == bindparam("b_no")))


async def test_the_hot_reads_return_what_session_execute_returns_types_included(ctx, order, monkeypatch):
    """On SQLite the hot reads go to aiosqlite's thread in one hop (sqlite_trip.fetch), inside the transaction:
    the same rows as SQLAlchemy's own execution, value for value and type for type."""
    hops = []
    original = aiosqlite.Connection._execute

    async def counted(connection, fn, *args, **kwargs):
        hops.append(fn)
        return await original(connection, fn, *args, **kwargs)

    monkeypatch.setattr(aiosqlite.Connection, "_execute", counted)
    async with ctx.db.transaction() as session:
        await loyalty_levels.set_level(session=session, code="SILVER", name="Silver", min_paid_cents=0,
                                       discount_bps=500)
        member = Member(email="direct@example.com")
        session.add(member)
        await session.flush()
        token = await open_member_session(session=session, member=member, method=LoginMethod.CODE, days=1,
                                          ip="127.0.0.1", user_agent="test")
        await loyalty_levels.reevaluate(session=session)
    async with ctx.db.read_session() as session:
        loaded = await session.scalar(select(Order).where(Order.order_no == order["order_no"]))
    at = dt.datetime.now(dt.UTC).replace(microsecond=0)
    reads = [
        (_TYPES, {"b_no": order["order_no"], "b_at": at}),
        (sku_row._SKU_ROW, {"b_sku_id": loaded.sku_id}),
        (gate._count_statement(1, (), sku_row.SKU_ROW_SUBQUERY),
         {"g_flood_0": "ip:10.0.0.9", "g_low": 0.0, "g_at": 9e9, "b_sku_id": loaded.sku_id}),
        (gate._count_statement(1, (), member_checkout._READ),  # a member's checkout: their read rides in it
         {"g_flood_0": "ip:10.0.0.9", "g_low": 0.0, "g_at": 9e9, "b_token_hash": logins.hash_token(token),
          "b_now": at, "b_sku_id": loaded.sku_id, "b_code": ""}),
        (_DECIMAL, {"b_decimal": Decimal("12.34"), "b_no": order["order_no"]}),
    ]
    async with ctx.db.transaction() as session:
        session.add(CounterEvent(key="ip:10.0.0.9", member="m", at=5.0))  # pending: flushed before the read
        counted_row = await db_direct.fetch_one(session, *reads[2])
        assert counted_row[0] == 1  # its own write, in its transaction
        for direct, params in reads:
            expected = [tuple(row) for row in (await session.execute(direct.statement, params)).all()]
            hops.clear()
            got = await db_direct.fetch_all(session, direct, params)
            if session.bind.dialect.name == "sqlite":
                assert len(hops) == 1  # through SQLAlchemy's execution: three or four
            assert got == expected and len(got) == 1
            assert [type(value) for value in got[0]] == [type(value) for value in expected[0]]
            assert await db_direct.fetch_one(session, direct, params) == expected[0]
        row = await db_direct.fetch_one(session, reads[0][0], reads[0][1])
        assert row[1] is OrderStatus.PENDING_PAYMENT and row[4] is True and row[5] == at
        assert row[2].tzinfo is not None
        login = (await db_direct.fetch_one(session, *reads[3]))[1 + member_checkout._SKU:]
        assert login[0] == member.id and login[2] is LoginMethod.CODE and login[7].tzinfo is not None
        assert login[5] is False  # has_password: a boolean, not SQLite's 0
        assert await db_direct.fetch_one(session, *reads[4]) == (Decimal("12.34"), loaded.id)
