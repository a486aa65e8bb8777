"""Alembic environment: async engines for both backends; batch mode on SQLite for ALTERs."""

from __future__ import annotations

import asyncio
import os

from alembic import context
from sqlalchemy import pool
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from quanyi.db import async_url
from quanyi.models import metadata

config = context.config
url = config.attributes.get("database_url") or async_url(
    os.environ.get("QUANYI_DATABASE_URL", "sqlite:///var/quanyi.db")
)


def _configure(connection: Connection | None = None) -> None:
    is_sqlite = (connection.dialect.name if connection is not None else url.split(":", 1)[0].split("+")[0]) == "sqlite"
    context.configure(
        connection=connection, url=None if connection is not None else url, target_metadata=metadata,
        render_as_batch=is_sqlite, compare_type=True, literal_binds=connection is None,
    )


def _run(connection: Connection) -> None:
    _configure(connection)
    with context.begin_transaction():
        context.run_migrations()


async def _run_async() -> None:
    engine = create_async_engine(url, poolclass=pool.NullPool)
    async with engine.connect() as connection:
        await connection.run_sync(_run)
    await engine.dispose()


if context.is_offline_mode():
    _configure()
    with context.begin_transaction():
        context.run_migrations()
else:
    asyncio.run(_run_async())
