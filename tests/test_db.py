"""The database layer: transactions commit or roll back as a unit; SQLite refuses self-deadlock."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from quanyi.catalog.models import Category


async def test_a_failed_unit_of_work_leaves_nothing(ctx):
    with pytest.raises(RuntimeError):
        async with ctx.db.transaction() as session:
            session.add(Category(slug="ghost", name="Ghost"))
            await session.flush()
            raise RuntimeError("boom")
    async with ctx.db.read_session() as session:
        assert await session.scalar(select(Category.id)) is None


async def test_nested_write_transaction_on_sqlite_is_refused_not_deadlocked(ctx, backend):
    if backend != "sqlite":
        pytest.skip("PostgreSQL allows independent concurrent transactions")
    async with ctx.db.transaction():
        with pytest.raises(RuntimeError, match="nested write transaction"):
            async with ctx.db.transaction():
                pass


async def test_sqlite_runs_in_wal_mode(ctx, backend):
    if backend != "sqlite":
        pytest.skip("SQLite only")
    async with ctx.db.read_session() as session:
        assert (await session.execute(__import__("sqlalchemy").text("PRAGMA journal_mode"))).scalar() == "wal"


async def test_only_transient_database_failures_count_as_unavailable(ctx, backend):
    from sqlalchemy import text
    from sqlalchemy.exc import DBAPIError

    from quanyi.db import is_database_unavailable

    with pytest.raises(DBAPIError) as mistake:  # our own bug (bad SQL) stays a 500, loudly
        async with ctx.db.read_session() as session:
            await session.execute(text("SELECT no_such_column FROM catalog_category"))
    assert not is_database_unavailable(mistake.value)
    assert is_database_unavailable(ConnectionRefusedError(111, "Connection refused"))
    if backend == "sqlite":
        import sqlite3

        assert is_database_unavailable(sqlite3.OperationalError("database is locked"))
        assert not is_database_unavailable(sqlite3.OperationalError("no such table: x"))
