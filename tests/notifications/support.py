"""Helpers for the notification tests (fixtures live in conftest.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from pydantic import SecretStr
from sqlalchemy import select

from helpers import Shop
from quanyi.config import Settings
from quanyi.notifications.models import OutboxMessage


async def outbox(shop: Shop, *where) -> list[OutboxMessage]:  # type: ignore[no-untyped-def]
    async with shop.ctx.db.read_session() as session:
        return list((await session.scalars(select(OutboxMessage).where(*where).order_by(OutboxMessage.id))).all())


def settings_env(settings: Settings) -> dict[str, str]:
    """The settings as QUANYI_* variables for a `quanyi` subprocess."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("QUANYI_")}
    for name, value in settings.model_dump().items():
        if value is None:
            continue
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        env[f"QUANYI_{name.upper()}"] = str(value).lower() if isinstance(value, bool) else str(value)
    env.update({"COLUMNS": "200", "NO_COLOR": "1"})
    return env


def run_quanyi(cwd: Path, settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "quanyi.cli", *args], cwd=cwd, env=settings_env(settings),
                          capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
