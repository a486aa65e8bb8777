"""Run Alembic migrations programmatically (same migrations on SQLite and PostgreSQL)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

from quanyi.db import async_url, secure_sqlite_files

__all__ = ["alembic_config", "upgrade", "downgrade", "current"]

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("file_template", "%%(year)d%%(month).2d%%(day).2d_%%(rev)s_%%(slug)s")
    config.attributes["database_url"] = async_url(database_url)
    return config


def upgrade(database_url: str, revision: str = "head") -> None:
    secure_sqlite_files(database_url)  # creates var/ and the database file, mode 0600
    command.upgrade(alembic_config(database_url), revision)


def downgrade(database_url: str, revision: str) -> None:
    command.downgrade(alembic_config(database_url), revision)


def current(database_url: str) -> None:
    command.current(alembic_config(database_url), verbose=False)

