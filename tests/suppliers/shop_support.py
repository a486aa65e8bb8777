"""Helpers for the supplier catalog/sync tests: register a simulated supplier through the admin API, map
it, sync it, and read rows back. The simulator is the real test peer from quanyi.testpeers.suppliers."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from typing import Any

from sqlalchemy import select

from helpers import Shop
from quanyi.app import create_app
from quanyi.config import Settings
from quanyi.suppliers.models import Supplier, SupplierProduct
from quanyi.suppliers.sync_models import SupplierSyncState
from quanyi.testpeers.runner import serve_in_thread
from quanyi.testpeers.suppliers import SupplierSimulator

__all__ = ["register", "map_sku", "sync", "product_row", "sync_state", "served_shop", "quanyi_cli", "cli_env"]


async def register(shop: Shop, sim: SupplierSimulator, code: str = "ACME", **extra: Any) -> dict[str, Any]:
    body = {"code": code, "name": f"{code} wholesale", "dialect": sim.dialect, "base_url": sim.base_url,
            "credentials": sim.credentials, "timeout_ms": 30_000, **extra}  # a stall is no timeout
    response = await shop.client.post("/api/admin/suppliers", json=body, headers=shop.admin)
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


async def sync(shop: Shop, code: str = "ACME", mode: str = "catalog") -> dict[str, Any]:
    response = await shop.client.post(f"/api/admin/suppliers/{code}/sync?mode={mode}", headers=shop.admin)
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


async def map_sku(shop: Shop, sku_id: int, product_code: str, code: str = "ACME", **extra: Any) -> dict[str, Any]:
    response = await shop.client.post(f"/api/admin/skus/{sku_id}/supplier-mappings", headers=shop.admin,
                                      json={"supplier_code": code, "product_code": product_code, **extra})
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


async def product_row(shop: Shop, product_code: str, code: str = "ACME") -> SupplierProduct:
    async with shop.ctx.db.read_session() as session:
        row = await session.scalar(select(SupplierProduct).join(Supplier).where(
            Supplier.code == code, SupplierProduct.product_code == product_code))
        assert row is not None
        return row


async def sync_state(shop: Shop, code: str = "ACME") -> SupplierSyncState:
    async with shop.ctx.db.read_session() as session:
        supplier = await session.scalar(select(Supplier).where(Supplier.code == code))
        state = await session.get(SupplierSyncState, supplier.id)  # type: ignore[union-attr]
        assert state is not None
        return state


@contextlib.contextmanager
def served_shop(settings: Settings) -> Iterator[str]:
    """The shop on a real port (its own context, engines and event loop, on the same database), for
    simulators that push to it over HTTP."""
    app = create_app(settings)
    with serve_in_thread(app) as url:
        yield url
    # The server thread's loop is gone; close its context on a loop of its own (best effort).
    closer = threading.Thread(target=_close_quietly, args=(app.state.ctx,))
    closer.start()
    closer.join(10)


def _close_quietly(ctx: Any) -> None:
    async def close() -> None:
        with contextlib.suppress(Exception):
            await ctx.close()
    asyncio.run(close())


def cli_env(settings: Settings) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("QUANYI_")}
    env.update({"COLUMNS": "200", "NO_COLOR": "1", "QUANYI_DATABASE_URL": settings.database_url,
                "QUANYI_ADMIN_TOKEN": settings.admin_token.get_secret_value(),
                "QUANYI_APP_SECRET": settings.app_secret.get_secret_value(),
                "QUANYI_CARD_KEYS": settings.card_keys.get_secret_value(),
                "QUANYI_CARD_KEY_ACTIVE_ID": settings.card_key_active_id,
                "QUANYI_CARD_KEY_HASH_KEY": settings.card_key_hash_key.get_secret_value(),
                "QUANYI_SANDBOX_SECRET": settings.sandbox_secret.get_secret_value()})
    return env


async def quanyi_cli(settings: Settings, *args: str, stdin: str | None = None,
                     env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run `quanyi ARGS` as an operator would, in a subprocess, without blocking the test's loop."""
    def run() -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "quanyi.cli", *args], env={**cli_env(settings), **(env or {})},
                              input=stdin, capture_output=True, text=True, timeout=120)
    return await asyncio.to_thread(run)
