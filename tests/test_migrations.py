"""The same Alembic migrations build the schema on SQLite and PostgreSQL, down and up again,
and match the models exactly (no drift; partial indexes with the models' predicates)."""

from __future__ import annotations

import asyncio
import re
import uuid

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

import conftest
from quanyi.migrate import downgrade, upgrade
from quanyi.models import metadata


async def _drift(url: str) -> list:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(
                lambda sync: compare_metadata(MigrationContext.configure(sync, opts={"compare_type": True}), metadata))
    finally:
        await engine.dispose()


_PG_PREDICATES = """SELECT c.relname, pg_get_expr(i.indpred, i.indrelid) FROM pg_index i
    JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = 'public' AND i.indpred IS NOT NULL"""


async def _partial_indexes(url: str, *, create_from_models: bool = False) -> dict[str, str]:
    """{index: its predicate} of every partial index (Alembic's comparison does not look at predicates)."""
    engine = create_async_engine(url)
    try:
        async with engine.begin() as connection:
            if create_from_models:
                await connection.run_sync(metadata.create_all)
            if engine.dialect.name == "postgresql":
                return dict((await connection.execute(text(_PG_PREDICATES))).all())
            rows = await connection.execute(text("SELECT name, sql FROM sqlite_master WHERE type = 'index'"))
            return {name: " ".join(sql.split(" WHERE ", 1)[1].split()) for name, sql in rows.all()
                    if sql and re.search(r"\sWHERE\s", sql)}
    finally:
        await engine.dispose()


def _fresh_url(backend: str, tmp_path) -> str:
    if backend == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}"
    name = f"quanyi_mig_{uuid.uuid4().hex[:10]}"
    asyncio.run(conftest._pg_admin(f'CREATE DATABASE "{name}"'))
    return conftest._pg_url(name)


def test_upgrade_downgrade_upgrade_and_no_drift(backend, tmp_path):
    url = _fresh_url(backend, tmp_path)
    try:
        upgrade(url)
        downgrade(url, "base")
        upgrade(url)
        assert asyncio.run(_drift(url)) == []
        (tmp_path / "models").mkdir()
        models = _fresh_url(backend, tmp_path / "models")
        try:
            from_models = asyncio.run(_partial_indexes(models, create_from_models=True))
        finally:
            _drop(backend, models)
        migrated = asyncio.run(_partial_indexes(url))
        assert "ix_orders_order_member_id" in migrated
        assert migrated == from_models
    finally:
        _drop(backend, url)


def _drop(backend: str, url: str) -> None:
    if backend != "sqlite":
        name = url.rsplit("/", 1)[1]
        asyncio.run(conftest._pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
