"""`quanyi serve` / `quanyi worker` warn before starting more PostgreSQL pools than the server has connections."""

from __future__ import annotations

import asyncio
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from faults.support import QuanyiProcess, wait_until
from quanyi.config import Settings
from quanyi.db import ConnectionBudget, connection_budget


def test_budget_arithmetic() -> None:
    budget = ConnectionBudget(max_connections=100, reserved=3, in_use=7, processes=4, pool_size=10)
    assert (budget.needed, budget.available, budget.fits) == (80, 90, True)
    tight = ConnectionBudget(max_connections=100, reserved=3, in_use=7, processes=5, pool_size=10)
    assert (tight.needed, tight.available, tight.fits) == (100, 90, False)


async def test_budget_reads_the_servers_limits(settings: Settings, backend: str) -> None:
    budget = await connection_budget(settings.database_url, processes=3, pool_size=10)
    if backend == "sqlite":
        assert budget is None
        return
    url = make_url(settings.database_url)
    conn = await asyncpg.connect(host=url.host, port=url.port, user=url.username, database=url.database)
    try:
        max_connections = int(await conn.fetchval("SHOW max_connections"))
        reserved = int(await conn.fetchval("SHOW superuser_reserved_connections"))
        held = [await asyncpg.connect(host=url.host, port=url.port, user=url.username, database=url.database)
                for _ in range(3)]
        try:
            with_held = await connection_budget(settings.database_url, processes=3, pool_size=10)
        finally:
            await asyncio.gather(*(c.close() for c in held))
    finally:
        await conn.close()
    assert budget is not None and with_held is not None
    assert budget.max_connections == with_held.max_connections == max_connections
    assert budget.reserved >= reserved and budget.needed == 60
    # In use counts every client of the server; other clients come and go, so only ours are sure: the
    # connection asking is not counted, the one this test holds while asking again is, and so are the three extra.
    assert budget.in_use >= 0 and with_held.in_use >= 4


@pytest.mark.parametrize("pool_size, warned", [(200, True), (2, False)])
def test_serve_warns_when_its_pools_could_exhaust_the_server(settings: Settings, backend: str, tmp_path: Path,
                                                            pool_size: int, warned: bool) -> None:
    if backend == "sqlite":
        pytest.skip("SQLite has no connection limit")
    server = QuanyiProcess.server(settings, tmp_path, env={"QUANYI_DATABASE_POOL_SIZE": str(pool_size)})
    server.stop()
    log = server.log()
    assert ("QUANYI_DATABASE_POOL_SIZE=200 may open 400 PostgreSQL connections" in log) is warned, log[-2000:]
    assert "Could not check" not in log


def test_worker_warns_too(settings: Settings, backend: str, tmp_path: Path) -> None:
    if backend == "sqlite":
        pytest.skip("SQLite has no connection limit")
    worker = QuanyiProcess(settings, tmp_path, "worker", name="worker", env={"QUANYI_DATABASE_POOL_SIZE": "200"})
    try:
        wait_until(lambda: "may open 400 PostgreSQL connections" in worker.log(), what="the worker's warning")
    finally:
        worker.stop()
