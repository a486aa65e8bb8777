"""Units of work on the driver (quanyi.db_driven, `Database.driver_transaction` / `driver_single_statements`): one
transaction whichever way a statement goes (straight to asyncpg, or through SQLAlchemy's Connection built at first
need), rolled back whole on an error, and the pooled connection returned with no transaction open, also when a
checkout is cancelled while it waits in a statement (a client gone). SQLite: the ordinary transaction."""

from __future__ import annotations

import asyncio
import re

import asyncpg
import httpx
import pytest
from sqlalchemy import bindparam, event, func, insert, literal, select, text
from sqlalchemy.exc import IntegrityError

from helpers import make_settings
from quanyi import db_direct, db_driven
from quanyi.inventory.models import CardKey, CardKeyStatus
from quanyi.orders.models import Order
from quanyi.risk.models import CounterEvent

_INSERT_EVENT = db_direct.Direct(insert(CounterEvent.__table__).values(
    key=bindparam("b_key"), member=literal("m"), at=bindparam("b_at")).returning(CounterEvent.id))
_EVENT_WITH_ID = db_direct.Direct(insert(CounterEvent.__table__).values(
    id=bindparam("b_id"), key=bindparam("b_key"), member=literal("m"), at=literal(1.0)))


@pytest.fixture
def settings(database_url: str):
    """Flood limits per address (the checkout's gate takes its advisory locks), no order-stage rules."""
    return make_settings(database_url, checkout_limit_per_ip=100, checkout_limit_window_seconds=60)


async def _events(ctx, key: str) -> int:
    async with ctx.db.read_session() as session:
        return await session.scalar(select(func.count()).select_from(CounterEvent).where(CounterEvent.key == key))


async def _open_transactions(ctx) -> int:
    """Server connections of this test's database idle in a transaction (PostgreSQL)."""
    async with ctx.db.read_session() as session:
        return await session.scalar(text("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                                         " AND state LIKE 'idle in transaction%'"))


async def test_direct_and_orm_statements_commit_together_and_roll_back_together(ctx):
    async with ctx.db.driver_transaction() as session:
        await db_direct.execute(session, _INSERT_EVENT, {"b_key": "driven:both", "b_at": 1.0})
        session.add(CounterEvent(key="driven:both", member="orm", at=2.0))  # flushed at the end, same transaction
    assert await _events(ctx, "driven:both") == 2
    with pytest.raises(RuntimeError):
        async with ctx.db.driver_transaction() as session:
            await db_direct.execute(session, _INSERT_EVENT, {"b_key": "driven:none", "b_at": 1.0})
            assert await session.scalar(select(func.count()).select_from(CounterEvent)  # the ORM sees it: one
                                        .where(CounterEvent.key == "driven:none")) == 1  # transaction
            await db_direct.execute(session, _INSERT_EVENT, {"b_key": "driven:none", "b_at": 2.0})
            raise RuntimeError("roll back")
    assert await _events(ctx, "driven:none") == 0


async def test_a_driven_session_is_closed_once_its_unit_ends(ctx):
    async with ctx.db.driver_transaction() as session:
        await db_direct.execute(session, _INSERT_EVENT, {"b_key": "driven:closed", "b_at": 1.0})
    if not ctx.db.is_sqlite:
        with pytest.raises(RuntimeError, match="went back to the pool"):
            await session.scalar(select(func.count()).select_from(CounterEvent))


async def test_a_database_error_is_sqlalchemys_and_leaves_no_transaction_open(ctx):
    if ctx.db.is_sqlite:
        pytest.skip("PostgreSQL's driver units")
    async with ctx.db.driver_transaction() as session:
        taken = (await db_direct.fetch_one(session, _INSERT_EVENT, {"b_key": "driven:taken", "b_at": 1.0}))[0]
    with pytest.raises(IntegrityError):
        async with ctx.db.driver_transaction() as session:
            await db_direct.execute(session, _INSERT_EVENT, {"b_key": "driven:error", "b_at": 1.0})
            await db_direct.execute(session, _EVENT_WITH_ID, {"b_id": taken, "b_key": "driven:error"})
    assert await _events(ctx, "driven:error") == 0
    assert ctx.db.write_engine.sync_engine.pool.checkedout() == 0
    assert await _open_transactions(ctx) == 0
    async with ctx.db.driver_single_statements() as session:  # autocommit: the first stands, the second fails
        await db_direct.execute(session, _INSERT_EVENT, {"b_key": "driven:single", "b_at": 1.0})
        with pytest.raises(IntegrityError):
            await db_direct.execute(session, _EVENT_WITH_ID, {"b_id": taken, "b_key": "driven:single"})
    assert await _events(ctx, "driven:single") == 1
    assert await _open_transactions(ctx) == 0


async def test_a_checkout_cancelled_while_it_waits_leaves_nothing_behind(shop, sku, database_url):
    """A client gone mid-checkout (its request task cancelled while a statement waits on a lock): nothing is placed,
    the connection is not returned with its transaction open, and the next checkout goes through."""
    if shop.ctx.db.is_sqlite:
        pytest.skip("PostgreSQL's driver units")
    await shop.stock(sku, 2)
    sent: list[str] = []
    engine = shop.ctx.db.write_engine.sync_engine
    listener = lambda _c, _cu, statement, *_a: sent.append(statement)  # noqa: E731
    event.listen(engine, "before_cursor_execute", listener)
    try:
        assert (await shop.create_order(sku.id, contact="first@example.com")).get("order_no")
    finally:
        event.remove(engine, "before_cursor_execute", listener)
    begin = next(statement for statement in sent if statement.startswith("BEGIN"))  # BEGIN and the gate's locks
    keys = [int(key) for key in re.search(r"'\{([-0-9,]+)\}'", begin).group(1).split(",")]
    holder = await asyncpg.connect(database_url.replace("+asyncpg", ""))
    try:
        await holder.execute("SELECT pg_advisory_lock(k) FROM unnest($1::bigint[]) AS k", keys)
        app = shop.client._transport.app
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")
        task = asyncio.create_task(client.post("/api/orders", json={
            "sku_id": sku.id, "quantity": 1, "contact": "first@example.com", "pay": {"gateway": "sandbox"}}))
        for _ in range(250):  # until the checkout waits on the held lock
            await asyncio.sleep(0.02)
            waiting = await holder.fetchval("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                                            " AND wait_event_type = 'Lock'")
            if waiting:
                break
        assert waiting == 1 and not task.done()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await client.aclose()
        assert engine.pool.checkedout() == 0
        await holder.execute("SELECT pg_advisory_unlock_all()")
        for _ in range(250):  # the abandoned backend gets the lock, finds its client gone and rolls back
            if not await holder.fetchval("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                                         " AND pid <> pg_backend_pid() AND state LIKE 'idle in transaction%'"
                                         " OR wait_event_type = 'Lock'"):
                break
            await asyncio.sleep(0.02)
    finally:
        await holder.close()
    assert await shop.count(Order) == 1
    assert await shop.count(CardKey, CardKey.status == CardKeyStatus.RESERVED) == 1
    assert await _open_transactions(shop.ctx) == 0
    second = await shop.create_order(sku.id, contact="second@example.com")
    assert second.get("order_no") and await shop.count(Order) == 2


def test_driven_of_is_none_for_an_ordinary_session():
    from sqlalchemy.ext.asyncio import AsyncSession
    assert db_driven.driven_of(AsyncSession()) is None


async def test_a_statements_first_run_in_a_driven_unit_gives_sqlalchemys_types(ctx, order):
    """Result processors are learned at a statement's first run (db_direct): the first run may be a driven one."""
    from quanyi.orders.state import OrderStatus

    fresh = db_direct.Direct(select(Order.status, Order.created_at).where(Order.order_no == bindparam("b_no")))
    async with ctx.db.driver_transaction() as session:
        status, created_at = await db_direct.fetch_one(session, fresh, {"b_no": order["order_no"]})
    assert status is OrderStatus.PENDING_PAYMENT
    assert created_at.utcoffset() is not None and created_at.utcoffset().total_seconds() == 0
    async with ctx.db.driver_single_statements() as session:
        assert await db_direct.fetch_one(session, fresh, {"b_no": order["order_no"]}) == (status, created_at)


_BACKEND = db_direct.Direct(select(func.pg_backend_pid()))


def _checkouts(ctx) -> list[int]:
    """Counts the write engine's pool checkouts (a connection taken out of the pool) from now on."""
    taken: list[int] = []
    event.listen(ctx.db.write_engine.sync_engine.pool, "checkout", lambda *_: taken.append(1))
    return taken


async def test_a_committed_unit_hands_its_connection_to_the_requests_next_unit(ctx):
    """Inside `handing_over`, a `keep` unit that committed leaves its connection to the next driver unit (the
    checkout's to its payment): one pool checkout for both; one no unit took goes back at the block's end."""
    if ctx.db.is_sqlite:
        pytest.skip("PostgreSQL: SQLite's units are the ordinary transaction")
    pool = ctx.db.write_engine.sync_engine.pool
    taken = _checkouts(ctx)
    async with ctx.db.handing_over():
        async with ctx.db.driver_transaction(keep=True) as session:
            await db_direct.execute(session, _INSERT_EVENT, {"b_key": "driven:handed", "b_at": 1.0})
            first = (await db_direct.fetch_one(session, _BACKEND, {}))[0]
        assert pool.checkedout() == 1  # held for the next unit, its transaction committed
        assert await _events(ctx, "driven:handed") == 1
        async with ctx.db.driver_single_statements() as session:
            assert (await db_direct.fetch_one(session, _BACKEND, {}))[0] == first
        assert pool.checkedout() == 0  # that unit did not keep it
        async with ctx.db.driver_transaction(keep=True) as session:  # kept, and taken by no unit
            await db_direct.execute(session, _INSERT_EVENT, {"b_key": "driven:handed", "b_at": 2.0})
        assert pool.checkedout() == 1
    assert pool.checkedout() == 0  # the block's end returned it
    assert len(taken) == 3  # the first unit, the read of `_events`, the third unit: the second took the first's
    assert await _events(ctx, "driven:handed") == 2
    assert await _open_transactions(ctx) == 0


async def test_a_unit_that_failed_or_kept_outside_a_hand_over_returns_its_connection(ctx):
    if ctx.db.is_sqlite:
        pytest.skip("PostgreSQL: SQLite's units are the ordinary transaction")
    pool = ctx.db.write_engine.sync_engine.pool
    async with ctx.db.driver_transaction(keep=True) as session:  # no hand-over: back to the pool as always
        await db_direct.execute(session, _INSERT_EVENT, {"b_key": "driven:kept", "b_at": 1.0})
    assert pool.checkedout() == 0
    with pytest.raises(RuntimeError):
        async with ctx.db.handing_over():
            with pytest.raises(IntegrityError):
                async with ctx.db.driver_transaction(keep=True) as session:  # rolled back: never handed over
                    await db_direct.execute(session, _EVENT_WITH_ID, {"b_id": 1, "b_key": "driven:kept"})
                    await db_direct.execute(session, _EVENT_WITH_ID, {"b_id": 1, "b_key": "driven:kept"})
            assert pool.checkedout() == 0
            async with ctx.db.driver_transaction(keep=True) as session:
                await db_direct.execute(session, _INSERT_EVENT, {"b_key": "driven:kept", "b_at": 2.0})
            assert pool.checkedout() == 1
            raise RuntimeError("the request failed after its checkout")
    assert pool.checkedout() == 0  # returned, committed
    assert await _events(ctx, "driven:kept") == 2
    assert await _open_transactions(ctx) == 0
