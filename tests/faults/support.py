"""Helpers for the fault tests: `quanyi` processes that can be killed with SIGKILL, waiting for conditions,
and direct database connections (the test's own lock holder, backend inspection)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from helpers import Shop
from notifications.support import settings_env
from quanyi.config import Settings
from quanyi.inventory.models import CardKey
from quanyi.orders.models import Order
from quanyi.testpeers.runner import free_port

__all__ = ["QuanyiProcess", "Freezer", "wait_until", "await_until", "pg_connect", "key_counts", "traceback_lines",
           "AwaitingNotification", "awaiting_notification"]

SRC = Path(__file__).parents[2] / "src"


@dataclass
class AwaitingNotification:
    """An order with reserved keys and a started payment: the gateway's notification is all that is left."""
    sku: Any
    order: dict[str, Any]
    params: dict[str, str]  # the signed sandbox notification
    order_id: int


async def awaiting_notification(shop: Shop, *, stock: int, quantity: int = 1) -> AwaitingNotification:
    sku = await shop.make_sku()
    await shop.stock(sku, stock)
    order = await shop.create_order(sku.id, quantity=quantity)
    params = shop.notification(await shop.start_payment(order))
    order_id = await shop.scalar(select(Order.id).where(Order.order_no == order["order_no"]))
    return AwaitingNotification(sku, order, params, order_id)


def wait_until(predicate: Callable[[], object], timeout: float = 90.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"{what} not reached within {timeout:.0f} s")


class QuanyiProcess:
    """`python -m quanyi.cli <args>` in its own process group, output to a log file; `kill9()` is SIGKILL."""

    def __init__(self, settings: Settings, cwd: Path, *args: str, name: str,
                 env: dict[str, str] | None = None) -> None:
        self.log_path = cwd / f"{name}.log"
        self.url, self.port = "", 0  # set for servers
        environment = settings_env(settings)
        environment["PYTHONPATH"] = os.pathsep.join([str(SRC), environment.get("PYTHONPATH", "")])
        environment.update(env or {})
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()/kill9()
        self.process = subprocess.Popen([sys.executable, "-m", "quanyi.cli", *args], cwd=cwd, env=environment,
                                        stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                        start_new_session=True)

    @classmethod
    def server(cls, settings: Settings, cwd: Path, *, port: int | None = None, name: str = "server",
               env: dict[str, str] | None = None) -> QuanyiProcess:
        port = port or free_port()
        server = cls(settings, cwd, "serve", "--port", str(port), name=name, env=env)
        server.url, server.port = f"http://127.0.0.1:{port}", port
        try:
            server.wait_healthy()
        except BaseException:
            server.stop()
            raise
        return server

    def alive(self) -> bool:
        return self.process.poll() is None

    def wait_healthy(self, timeout: float = 90.0) -> None:
        def healthy() -> bool:
            if not self.alive():
                raise AssertionError(f"server exited with {self.process.returncode}:\n{self.log()[-3000:]}")
            with contextlib.suppress(httpx.HTTPError):
                return httpx.get(self.url + "/healthz", timeout=2).status_code == 200
            return False

        wait_until(healthy, timeout, "server health")

    def log(self) -> str:
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text(errors="replace")

    def kill9(self) -> None:
        """SIGKILL the whole process group: no shutdown hook, no rollback, no flush runs in it."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=15)
        assert self.process.returncode == -signal.SIGKILL
        self._log.close()

    def stop(self) -> None:
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        self._log.close()


def traceback_lines(log: str) -> list[str]:
    return [line for line in log.splitlines() if re.search(r"Traceback|unhandled error| 500 ", line)]


async def pg_connect(database_url: str) -> asyncpg.Connection:
    url = make_url(database_url).set(drivername="postgresql")
    return await asyncpg.connect(url.render_as_string(hide_password=False))


async def refunded_while_waiting(database_url: str, order_id: int, request: Awaitable[Any], *, what: str) -> Any:
    """PostgreSQL: a test connection holds the order FOR UPDATE as a refund does, starts `request`, and once it
    waits for a lock refunds the order in full (its keys too) and commits; returns what the request answered."""
    refund = await pg_connect(database_url)
    try:
        done = refund.transaction()
        await done.start()
        await refund.fetch("SELECT id FROM orders_order WHERE id = $1 FOR UPDATE", order_id)
        task = asyncio.ensure_future(request)

        async def waiting() -> bool:
            await refund.execute("SELECT pg_stat_clear_snapshot()")
            return bool(await refund.fetchval("SELECT count(*) FROM pg_stat_activity WHERE datname = "
                                              "current_database() AND wait_event_type = 'Lock'"))

        await await_until(waiting, what=f"{what} waiting for the order the refund holds")
        await refund.execute("UPDATE inventory_card_key SET status = 'refunded' WHERE order_id = $1", order_id)
        await refund.execute("UPDATE orders_order SET status = 'refunded', refunded_cents = total_cents "
                             "WHERE id = $1", order_id)
        await done.commit()
        return await asyncio.wait_for(task, 60)
    finally:
        await refund.close()


async def key_counts(shop: Shop, sku_id: int) -> dict[str, int]:
    """How many keys of a SKU are in each status."""
    async with shop.ctx.db.read_session() as session:
        rows = await session.execute(select(CardKey.status, func.count()).where(CardKey.sku_id == sku_id)
                                     .group_by(CardKey.status))
        return {str(getattr(status, "value", status)): int(n) for status, n in rows.all()}


async def await_until(predicate: Callable[[], Awaitable[object]], timeout: float = 90.0,
                      what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await predicate():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{what} not reached within {timeout:.0f} s")


class Freezer:
    """Holds a lock the shop's write transactions need, from a separate connection of the test.

    PostgreSQL: `SELECT ... FOR UPDATE` on chosen rows; the shop's transaction runs until it asks for one of
    them and waits there, mid-transaction, with its earlier statements applied but not committed
    (`wait_for_lock_waiter` sees it in pg_stat_activity). SQLite has one writer lock for the whole file: a
    `BEGIN IMMEDIATE` held by the test stops every write transaction at its BEGIN (busy_timeout waits).
    """

    def __init__(self, database_url: str) -> None:
        self.database_url = database_url
        self.is_sqlite = make_url(database_url).get_backend_name() == "sqlite"
        self._pg: asyncpg.Connection | None = None
        self._pg_tx: Any = None
        self._sqlite: sqlite3.Connection | None = None

    async def lock_rows(self, table: str, where: str, *args: object) -> None:
        """PostgreSQL: lock rows of `table` matching `where` ($1... placeholders); SQLite: the writer lock."""
        if self.is_sqlite:
            path = make_url(self.database_url).database
            self._sqlite = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            self._sqlite.execute("BEGIN IMMEDIATE")
            return
        self._pg = await pg_connect(self.database_url)
        self._pg_tx = self._pg.transaction()
        await self._pg_tx.start()
        rows = await self._pg.fetch(f"SELECT id FROM {table} WHERE {where} FOR UPDATE", *args)  # noqa: S608
        assert rows, f"nothing to lock in {table} where {where}"

    async def lock_waiters(self) -> list[int]:
        """Backend pids of this database waiting for a lock (PostgreSQL only)."""
        assert self._pg is not None
        await self._pg.execute("SELECT pg_stat_clear_snapshot()")  # else one snapshot per transaction
        rows = await self._pg.fetch(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock' "
            "AND pid <> pg_backend_pid()")
        return [row["pid"] for row in rows]

    async def wait_for_lock_waiter(self) -> int:
        """PostgreSQL: the pid of the shop's backend once it waits on our lock. SQLite: no way to observe the
        wait from outside; give the request a moment to reach its BEGIN (if it has not, the kill lands before
        the transaction, which must be just as harmless)."""
        if self.is_sqlite:
            await asyncio.sleep(1.0)
            return 0
        found: list[int] = []

        async def waiting() -> bool:
            found[:] = await self.lock_waiters()
            return bool(found)

        await await_until(waiting, what="a shop transaction waiting on the test's lock")
        return found[0]

    async def has_written(self, pid: int) -> bool:
        """Whether that backend's open transaction has already written rows (it holds a transaction id)."""
        assert self._pg is not None
        await self._pg.execute("SELECT pg_stat_clear_snapshot()")
        return bool(await self._pg.fetchval(
            "SELECT backend_xid IS NOT NULL FROM pg_stat_activity WHERE pid = $1", pid))

    async def terminate_backend(self, pid: int) -> None:
        assert self._pg is not None
        assert await self._pg.fetchval("SELECT pg_terminate_backend($1)", pid)

    async def terminate_all_others(self) -> int:
        """PostgreSQL: drop every other connection to this database (the shop's pools), and wait until each is
        gone (its server process has exited and closed the socket), as after a restart; how many."""
        assert self._pg is not None
        return int(await self._pg.fetchval(
            "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid, 10000)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"))

    async def release(self, *, keep_connection: bool = False) -> None:
        """Let go of the lock (and close the connection unless kept for `terminate_all_others`)."""
        if self._sqlite is not None:
            self._sqlite.execute("ROLLBACK")
            self._sqlite.close()
            self._sqlite = None
        if self._pg is not None:
            if self._pg_tx is not None:
                await self._pg_tx.rollback()
                self._pg_tx = None
            if not keep_connection:
                await self._pg.close()
                self._pg = None
