"""PostgreSQL pool: a process opens at most 2 x pool_size connections, as its requests need them, and keeps them:
a burst of concurrent units of work does not close what it opened, and the next burst reuses those connections
(a reopened connection pays the connect, type introspection and a prepare of every statement again)."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import event, text

from helpers import make_settings
from quanyi.config import Settings
from quanyi.db import Database
from quanyi.orders.models import Order


@pytest.fixture
def pg_url(backend: str, database_url: str) -> str:
    if backend != "postgresql":
        pytest.skip("SQLite's pool holds no server connections")
    return database_url


async def _burst(db: Database, units: int) -> set[int]:
    async def unit() -> int:
        async with db.transaction() as session:
            pid = int(await session.scalar(text("SELECT pg_backend_pid()")))
            await session.execute(text("SELECT pg_sleep(0.05)"))
            return pid

    return set(await asyncio.gather(*(unit() for _ in range(units))))


async def test_connections_opened_for_a_burst_are_kept_for_the_next(pg_url):
    db = Database(pg_url, pool_size=2)
    opened: list[int] = []
    closed: list[int] = []
    pool = db.write_engine.sync_engine.pool
    event.listen(pool, "connect", lambda *_: opened.append(1))
    event.listen(pool, "close", lambda *_: closed.append(1))
    try:
        first = await _burst(db, 12)
        assert len(first) == len(opened) == 4  # 2 x pool_size, no more
        assert closed == []  # none closed when the burst ended
        second = await _burst(db, 12)
        assert second == first and len(opened) == 4 and closed == []
    finally:
        await db.dispose()


async def test_one_unit_at_a_time_reuses_one_warm_connection(pg_url):
    """After a burst opened several connections, units of work one at a time all get the connection returned last
    (last in, first out): only that one prepares the hot statements and settles their plans (first in, first out
    made every unit the first on another connection: docs/PERFORMANCE.md, section 21)."""
    db = Database(pg_url, pool_size=2)
    try:
        assert len(await _burst(db, 4)) == 4
        pids = []
        for _ in range(8):
            async with db.transaction() as session:
                pids.append(int(await session.scalar(text("SELECT pg_backend_pid()"))))
        assert len(set(pids)) == 1
    finally:
        await db.dispose()


@pytest.fixture
def settings(pg_url: str) -> Settings:
    return make_settings(pg_url, database_pool_size=1)  # two connections at most


async def test_a_checkout_that_finds_every_connection_held_is_a_503_and_changes_nothing(shop, stocked_sku):
    """A smaller pool must not turn a busy moment into 500s: a checkout (the hot path, the lane) that waits past the
    pool's timeout because every connection is held (a long report, a slow unit of work) answers 503
    database_unavailable with Retry-After, reserves no key, and the next checkout after they are returned succeeds."""
    pool = shop.ctx.db.write_engine.sync_engine.pool
    pool._timeout = 0.3  # SQLAlchemy's default wait is 30 s; the answer is the same, sooner
    available = await shop.available(stocked_sku.id)
    release = asyncio.Event()
    holding = 0

    async def hold() -> None:
        nonlocal holding
        async with shop.ctx.db.transaction() as session:
            await session.execute(text("SELECT 1"))
            holding += 1
            await release.wait()

    holders = [asyncio.create_task(hold()) for _ in range(2)]
    try:
        while holding < 2:
            await asyncio.sleep(0.01)
        response = await shop.client.post("/api/orders", json={"sku_id": stocked_sku.id, "quantity": 1,
                                                                "contact": "buyer@example.com"})
        assert response.status_code == 503, response.text
        assert response.json()["code"] == "database_unavailable" and response.headers["Retry-After"]
    finally:
        release.set()
        await asyncio.gather(*holders)
    assert await shop.available(stocked_sku.id) == available and await shop.count(Order) == 0
    order = await shop.create_order(stocked_sku.id)
    assert order["status"] == "pending_payment"
