"""The same Alembic migrations build the schema on SQLite and PostgreSQL, down and up again,
and match the models exactly (no drift)."""

from __future__ import annotations

import asyncio
import uuid

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
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
    finally:
        if backend != "sqlite":
            name = url.rsplit("/", 1)[1]
            asyncio.run(conftest._pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
