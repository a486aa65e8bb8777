"""A driven unit's session made only when a statement needs SQLAlchemy (quanyi.db_driven.DrivenAsyncSession): the
reveal's, start payment's and the notification's units never make it, and every way out of a unit that never made
it, or made it half-way, returns its connection to the pool with no transaction open (committed, rolled back, or
the connection closed when cancelled). PostgreSQL's driver units; SQLite's are the ordinary transaction."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import bindparam, func, insert, literal, select, text
from sqlalchemy.exc import IntegrityError

from helpers import make_settings
from quanyi import db_direct, db_driven
from quanyi.db import after_commit
from quanyi.risk import counters
from quanyi.risk.models import CounterEvent

_INSERT_EVENT = db_direct.Direct(insert(CounterEvent.__table__).values(
    key=bindparam("b_key"), member=literal("m"), at=bindparam("b_at")).returning(CounterEvent.id))
_EVENT_WITH_ID = db_direct.Direct(insert(CounterEvent.__table__).values(
    id=bindparam("b_id"), key=bindparam("b_key"), member=literal("m"), at=literal(1.0)))
_SLEEP = db_direct.Direct(select(func.pg_sleep(bindparam("b_seconds"))))


@pytest.fixture
def settings(database_url: str):
    return make_settings(database_url, checkout_limit_per_ip=100, checkout_limit_window_seconds=60)


@pytest.fixture(autouse=True)
def _postgresql_only(backend: str) -> None:
    if backend != "postgresql":
        pytest.skip("PostgreSQL's driver units (SQLite's are the ordinary transaction)")


async def _events(ctx, key: str) -> int:
    async with ctx.db.read_session() as session:
        return await session.scalar(select(func.count()).select_from(CounterEvent).where(CounterEvent.key == key))


async def _left_behind(ctx) -> tuple[int, int]:
    """(connections checked out of the pool, this database's server connections idle in a transaction)."""
    pool = ctx.db.write_engine.sync_engine.pool
    out = pool.checkedout()
    async with ctx.db.read_session() as session:
        idle = await session.scalar(text("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                                         " AND state LIKE 'idle in transaction%'"))
    return out, idle


async def test_an_error_in_a_unit_that_never_made_its_session_rolls_back_and_returns_the_connection(ctx):
    pool = ctx.db.write_engine.sync_engine.pool
    with pytest.raises(ValueError, match="mid-unit"):
        async with ctx.db.driver_transaction() as session:
            await db_direct.execute(session, _INSERT_EVENT, {"b_key": "lazy:python", "b_at": 1.0})
            assert pool.checkedout() == 1
            raise ValueError("mid-unit")
    assert not session.made  # the lazy path: only db_direct ran
    assert await _events(ctx, "lazy:python") == 0
    assert await _left_behind(ctx) == (0, 0)
    taken = await _taken_id(ctx)
    with pytest.raises(IntegrityError):  # the database's error: SQLAlchemy's Connection built for it, no session
        async with ctx.db.driver_transaction() as session:
            await db_direct.execute(session, _INSERT_EVENT, {"b_key": "lazy:db", "b_at": 1.0})
            await db_direct.execute(session, _EVENT_WITH_ID, {"b_id": taken, "b_key": "lazy:db"})
    assert not session.made
    assert await _events(ctx, "lazy:db") == 0
    assert await _left_behind(ctx) == (0, 0)


async def test_an_error_caught_inside_single_statements_keeps_the_rest_and_returns_the_connection(ctx):
    taken = await _taken_id(ctx)
    async with ctx.db.driver_single_statements() as session:
        with pytest.raises(IntegrityError):
            await db_direct.execute(session, _EVENT_WITH_ID, {"b_id": taken, "b_key": "lazy:caught"})
        # after the error the unit goes through SQLAlchemy's Connection: the session is made for it
        await db_direct.execute(session, _INSERT_EVENT, {"b_key": "lazy:caught", "b_at": 2.0})
    assert session.made
    assert await _events(ctx, "lazy:caught") == 1
    assert await _left_behind(ctx) == (0, 0)


async def test_a_session_made_half_way_rolls_back_with_the_direct_statements_before_it(ctx):
    with pytest.raises(RuntimeError, match="after the ORM"):
        async with ctx.db.driver_transaction() as session:
            await db_direct.execute(session, _INSERT_EVENT, {"b_key": "lazy:half", "b_at": 1.0})
            assert not session.made
            session.info["quanyi.test.mark"] = 1  # written before the session is made: kept in its info
            assert await session.scalar(select(func.count()).select_from(CounterEvent)
                                        .where(CounterEvent.key == "lazy:half")) == 1  # same transaction
            assert session.made and session.sync_session.info["quanyi.test.mark"] == 1
            session.add(CounterEvent(key="lazy:half", member="orm", at=2.0))
            await session.flush()
            raise RuntimeError("after the ORM")
    assert await _events(ctx, "lazy:half") == 0
    assert await _left_behind(ctx) == (0, 0)


async def test_a_unit_cancelled_in_its_direct_statement_returns_no_connection_with_a_transaction(ctx):
    pool = ctx.db.write_engine.sync_engine.pool
    started = asyncio.Event()

    async def unit() -> None:
        async with ctx.db.driver_transaction() as session:
            await db_direct.execute(session, _INSERT_EVENT, {"b_key": "lazy:cancelled", "b_at": 1.0})
            started.set()
            await db_direct.execute(session, _SLEEP, {"b_seconds": 0.5})

    task = asyncio.create_task(unit())
    await started.wait()
    await asyncio.sleep(0.05)  # in pg_sleep
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert pool.checkedout() == 0  # closed, not pooled: a statement may still run on it
    for _ in range(100):  # the server ends the closed connection's backend, its transaction rolled back
        if await _left_behind(ctx) == (0, 0):
            break
        await asyncio.sleep(0.05)
    assert await _left_behind(ctx) == (0, 0)
    assert await _events(ctx, "lazy:cancelled") == 0
    async with ctx.db.driver_transaction() as session:  # the pool hands out a working connection
        await db_direct.execute(session, _INSERT_EVENT, {"b_key": "lazy:cancelled", "b_at": 2.0})
    assert await _events(ctx, "lazy:cancelled") == 1


async def test_a_unit_that_ended_cannot_send_a_direct_statement_on_the_pooled_connection(ctx):
    """Its connection is back in the pool (maybe another unit's by now): a late db_direct statement is refused, not
    sent on it. (Before: sent on the pooled connection, outside any unit.)"""
    async with ctx.db.driver_single_statements() as session:
        await db_direct.execute(session, _INSERT_EVENT, {"b_key": "lazy:late", "b_at": 1.0})
    with pytest.raises(RuntimeError, match="went back to the pool"):
        await db_direct.execute(session, _INSERT_EVENT, {"b_key": "lazy:late", "b_at": 2.0})
    assert await _events(ctx, "lazy:late") == 1
    assert await _left_behind(ctx) == (0, 0)


async def test_after_commit_actions_of_a_lazy_unit_run_once_committed_and_never_on_a_rollback(ctx):
    ran: list[str] = []

    async def committed() -> None:
        ran.append(f"seen {await _events(ctx, 'lazy:after')}")

    async with ctx.db.driver_transaction() as session:
        await db_direct.execute(session, _INSERT_EVENT, {"b_key": "lazy:after", "b_at": 1.0})
        after_commit(session, committed)
    assert ran == ["seen 1"] and not session.made
    with pytest.raises(RuntimeError):
        async with ctx.db.driver_transaction() as session:
            after_commit(session, committed)
            raise RuntimeError("rolled back")
    assert ran == ["seen 1"]
    assert await _left_behind(ctx) == (0, 0)


async def test_start_payment_the_notification_and_the_reveal_make_no_session(shop, sku, monkeypatch):
    """The hot path's driven units: only the checkout's (its new order tracked by the ORM) makes a session."""
    monkeypatch.setattr(counters.random, "random", lambda: 1.0)  # no pruning of the counters' events
    await shop.stock(sku, 2)
    await shop.pay(await shop.create_order(sku.id, contact="first@example.com"))  # warms the caches
    made: list[str] = []
    units: list[int] = []
    make, init = db_driven.DrivenAsyncSession._make, db_driven.DrivenAsyncSession.__init__

    def counted_init(self, driven, maker) -> None:
        units.append(1)
        init(self, driven, maker)

    def counted_make(self) -> None:
        made.append(step)
        make(self)

    monkeypatch.setattr(db_driven.DrivenAsyncSession, "__init__", counted_init)
    monkeypatch.setattr(db_driven.DrivenAsyncSession, "_make", counted_make)
    step = "checkout"
    order = await shop.create_order(sku.id, contact="second@example.com")
    step = "start payment"
    payment = await shop.start_payment(order)
    step = "notification"
    response = await shop.notify(shop.notification(payment))
    step = "reveal"
    keys = await shop.reveal(order)
    assert response.status_code == 200 and len(keys) == 1
    assert len(units) == 4 and made == ["checkout"]
    assert await _left_behind(shop.ctx) == (0, 0)


async def _taken_id(ctx) -> int:
    async with ctx.db.driver_single_statements() as session:
        return (await db_direct.fetch_one(session, _INSERT_EVENT, {"b_key": "lazy:taken", "b_at": 0.0}))[0]
