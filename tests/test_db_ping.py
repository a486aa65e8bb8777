"""PostgreSQL pool: a connection is pinged before use only when it sat idle past the threshold, and one whose
server went away while it sat in the pool is replaced before use, without a ping and without an error."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.dialects.postgresql.asyncpg import AsyncAdapt_asyncpg_connection

from quanyi.db import Database


@pytest.fixture
def pings(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the pool's pings (the driver adapter's ping, as SQLAlchemy's pre-ping would call it)."""
    seen: list[int] = []
    real = AsyncAdapt_asyncpg_connection.ping

    def counted(self: AsyncAdapt_asyncpg_connection) -> None:
        seen.append(1)
        real(self)

    monkeypatch.setattr(AsyncAdapt_asyncpg_connection, "ping", counted)
    return seen


async def _backend_pid(db: Database) -> int:
    async with db.transaction() as session:
        return int(await session.scalar(text("SELECT pg_backend_pid()")))


@pytest.fixture
def pg_url(backend: str, database_url: str) -> str:
    if backend != "postgresql":
        pytest.skip("SQLite has no server connection to ping or drop")
    return database_url


async def test_a_busy_pool_sends_no_ping_per_unit_of_work(pg_url, pings):
    db = Database(pg_url, pool_size=2, ping_after_idle_seconds=60)
    try:
        first = await _backend_pid(db)  # a new connection: nothing to check
        for _ in range(5):
            assert await _backend_pid(db) == first
            async with db.read_session() as session:
                await session.execute(text("SELECT 1"))
        assert pings == []
    finally:
        await db.dispose()


async def test_a_connection_idle_past_the_threshold_is_pinged_before_use(pg_url, pings):
    db = Database(pg_url, pool_size=1, ping_after_idle_seconds=0.2)
    try:
        first = await _backend_pid(db)
        assert await _backend_pid(db) == first and pings == []
        await asyncio.sleep(0.3)
        assert await _backend_pid(db) == first and pings == [1]
    finally:
        await db.dispose()
    always = Database(pg_url, pool_size=1, ping_after_idle_seconds=0)  # 0: before every unit, as pre-ping did
    try:
        for _ in range(3):
            await _backend_pid(always)
        assert pings == [1, 1, 1]
    finally:
        await always.dispose()


async def test_a_connection_dropped_while_idle_is_replaced_before_use_without_error(pg_url, pings):
    db = Database(pg_url, pool_size=1, ping_after_idle_seconds=3600)  # never old enough for a ping
    admin = await asyncpg.connect(pg_url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        first = await _backend_pid(db)
        # As a restart or an idle killer does; `pg_terminate_backend(pid, timeout)` returns once it has exited.
        assert await admin.fetchval("SELECT pg_terminate_backend($1, 10000)", first)
        second = await _backend_pid(db)
        assert second != first
        assert await _backend_pid(db) == second
    finally:
        await admin.close()
        await db.dispose()
