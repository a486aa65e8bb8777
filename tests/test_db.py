"""The database layer: transactions commit or roll back as a unit; SQLite refuses self-deadlock."""

from __future__ import annotations

import asyncio
import os
import stat
from pathlib import Path

import pytest
from sqlalchemy import select, text

from quanyi import migrate
from quanyi.catalog.models import Category
from quanyi.db import Database, after_commit, before_commit, secure_sqlite_files


async def test_a_failed_unit_of_work_leaves_nothing(ctx):
    with pytest.raises(RuntimeError):
        async with ctx.db.transaction() as session:
            session.add(Category(slug="ghost", name="Ghost"))
            await session.flush()
            raise RuntimeError("boom")
    async with ctx.db.read_session() as session:
        assert await session.scalar(select(Category.id)) is None


async def test_single_statements_run_their_after_commit_actions_only_when_the_block_ends_well(ctx):
    ran: list[str] = []

    async def action(name: str) -> None:
        ran.append(name)

    async with ctx.db.single_statements() as session:
        session.add(Category(slug="kept", name="Kept"))
        await session.flush()
        after_commit(session, lambda: action("done"))
        assert ran == []  # not before the block ends
    assert ran == ["done"]
    with pytest.raises(RuntimeError):
        async with ctx.db.single_statements() as session:
            after_commit(session, lambda: action("failed"))
            raise RuntimeError("boom")
    assert ran == ["done"]
    async with ctx.db.read_session() as session:
        assert await session.scalar(select(Category.slug)) == "kept"


@pytest.mark.parametrize("unit", ["transaction", "driver_transaction", "single_statements"])
async def test_before_commit_actions_run_inside_the_unit_once_its_block_ends_well(ctx, unit):
    """Before the COMMIT, still in the unit (risk.counters' Redis writes, under the unit's locks): not when the block
    raises; an action that raises rolls the unit back."""
    seen: list[object] = []

    async def action(session, name: str) -> None:
        seen.append((name, await session.scalar(select(Category.slug).where(Category.slug == name))))

    async with getattr(ctx.db, unit)() as session:
        session.add(Category(slug="kept", name="Kept"))
        await session.flush()
        before_commit(session, lambda: action(session, "kept"))
        assert seen == []
    assert seen == [("kept", "kept")]
    with pytest.raises(RuntimeError):
        async with getattr(ctx.db, unit)() as session:
            before_commit(session, lambda: action(session, "failed"))
            raise RuntimeError("boom")

    async def refuse() -> None:
        raise RuntimeError("refused")

    if unit != "single_statements":  # each statement of those stands once it returns (PostgreSQL)
        with pytest.raises(RuntimeError, match="refused"):
            async with getattr(ctx.db, unit)() as session:
                session.add(Category(slug="ghost", name="Ghost"))
                await session.flush()
                before_commit(session, refuse)
    assert seen == [("kept", "kept")]
    async with ctx.db.read_session() as session:
        assert (await session.scalars(select(Category.slug))).all() == ["kept"]


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



def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def test_sqlite_database_files_are_readable_by_the_shop_user_only(tmp_path):
    """var/quanyi.db and its WAL / shared-memory files hold orders, contacts and card keys: mode 0600 like the
    env file, whatever the umask, from the first migration on; files an older version left 0644 are narrowed."""
    old_umask = os.umask(0o022)
    try:
        url = f"sqlite:///{tmp_path}/var/quanyi.db"
        await asyncio.to_thread(migrate.upgrade, url)  # alembic runs its own event loop
        db = Database(url)
        async with db.transaction() as session:
            await session.execute(text("CREATE TABLE probe (x INTEGER)"))
        async with db.read_session() as session:  # the WAL and shared-memory files exist while connections do
            await session.execute(text("SELECT * FROM probe"))
            files = sorted((tmp_path / "var").glob("quanyi.db*"))
            assert {f.name for f in files} >= {"quanyi.db", "quanyi.db-wal", "quanyi.db-shm"}
            assert {f.name: _mode(f) for f in files} == {f.name: 0o600 for f in files}
        await db.dispose()

        for suffix in ("", "-wal", "-shm"):
            (tmp_path / f"legacy.db{suffix}").touch()
            (tmp_path / f"legacy.db{suffix}").chmod(0o644)
        db = Database(f"sqlite:///{tmp_path}/legacy.db")
        assert {f.name: _mode(f) for f in tmp_path.glob("legacy.db*")} == {
            "legacy.db": 0o600, "legacy.db-wal": 0o600, "legacy.db-shm": 0o600}
        await db.dispose()
    finally:
        os.umask(old_umask)


def test_a_database_file_this_process_cannot_narrow_is_used_with_a_warning(tmp_path, monkeypatch, caplog):
    """Another user's group-readable database (a process in its group): opening it must not fail on chmod."""
    (tmp_path / "shared.db").touch()
    (tmp_path / "shared.db").chmod(0o640)

    def refuse(*_args, **_kwargs):
        raise PermissionError("not the owner")

    monkeypatch.setattr(os, "chmod", refuse)
    with caplog.at_level("WARNING", logger="quanyi.db"):
        secure_sqlite_files(f"sqlite:///{tmp_path}/shared.db")
    assert "cannot narrow it" in caplog.text and "mode 640" in caplog.text
