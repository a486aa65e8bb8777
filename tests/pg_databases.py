"""Fresh PostgreSQL databases for tests, made and dropped off the test's own time.

Each test gets a database cloned from the session's migrated template, used by that test only. The work
around it is done by one background thread with its own event loop:

- a few spare databases are created ahead (`CREATE DATABASE ... TEMPLATE`, 0.06-0.3 s each), so a test
  takes one that is ready;
- a test's database is dropped after the test, while the next ones run. `DROP DATABASE` waits for a
  checkpoint (0.4 s on a quiet machine, seconds on a loaded one); drops that are waiting together run at
  once and share one checkpoint (8 concurrent drops cost about what one does);
- test databases commit without waiting for the WAL flush (`synchronous_commit = off`, a per-database
  setting). Only a crash of the PostgreSQL server itself could lose such a commit, which no test causes: every
  connection and process sees exactly what it saw before, and `kill -9` of a shop process loses nothing more.

The session waits for the last drops at its end and fails if a database could not be dropped.
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Coroutine
from typing import Any, TypeVar

import asyncpg

__all__ = ["PgDatabases"]

T = TypeVar("T")

# At most this many drops wait at once (each drop of a batch uses one connection of the server's budget).
MAX_PENDING_DROPS = 8
# How long any one step may take before the test fails instead of hanging (a loaded machine can stall).
TIMEOUT_SECONDS = 300.0


class PgDatabases:
    """Creates each test's database from `template` (with `spare` made ahead) and drops it in the background."""

    def __init__(self, admin_dsn: str, template: str, *, spare: int = 2) -> None:
        self._dsn = admin_dsn
        self._template = template
        self._spare_count = spare
        self._spares: list[asyncio.Task[str]] = []
        self._pending_drops: list[tuple[str, bool]] = []  # (name, holds one of the drop slots)
        self._dropper: asyncio.Task[None] | None = None
        self._drop_slots = threading.BoundedSemaphore(MAX_PENDING_DROPS)
        self._failures: list[str] = []
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="test-databases", daemon=True)
        self._thread.start()
        self._call(self._fill_spares())

    # ------------------------------------------------------------------ called from the tests' thread

    def create(self) -> str:
        """The name of a fresh database cloned from the template, for one test."""
        return self._call(self._take())

    def drop_later(self, name: str) -> None:
        """Drop `name` in the background (waits only when many drops are already waiting)."""
        if not self._drop_slots.acquire(timeout=TIMEOUT_SECONDS):
            raise RuntimeError("test databases are not being dropped (PostgreSQL stalled?)")
        self._loop.call_soon_threadsafe(self._queue_drop, name, True)

    def close(self) -> None:
        """Drop the spares and wait for every pending drop; fail if any database could not be dropped."""
        try:
            self._call(self._close())
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(TIMEOUT_SECONDS)
            self._loop.close()
        if self._failures:
            raise RuntimeError("test databases left behind: " + "; ".join(self._failures))

    def _call(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(TIMEOUT_SECONDS)

    # ------------------------------------------------------------------ on the background loop

    async def _admin(self, *statements: str) -> None:
        connection = await asyncpg.connect(self._dsn)
        try:
            for statement in statements:
                await connection.execute(statement)
        finally:
            await connection.close()

    async def _new_database(self) -> str:
        name = f"quanyi_t_{uuid.uuid4().hex[:12]}"
        await self._admin(f'CREATE DATABASE "{name}" TEMPLATE "{self._template}"',
                          f'ALTER DATABASE "{name}" SET synchronous_commit = off')
        return name

    async def _fill_spares(self) -> None:
        while len(self._spares) < self._spare_count:
            self._spares.append(asyncio.ensure_future(self._new_database()))

    async def _take(self) -> str:
        spare = self._spares.pop(0)
        await self._fill_spares()
        return await spare

    def _queue_drop(self, name: str, holds_slot: bool) -> None:
        self._pending_drops.append((name, holds_slot))
        if self._dropper is None or self._dropper.done():
            self._dropper = asyncio.ensure_future(self._drop_pending())

    async def _drop_pending(self) -> None:
        while self._pending_drops:
            batch, self._pending_drops = self._pending_drops, []
            results = await asyncio.gather(
                *[self._admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)') for name, _ in batch],
                return_exceptions=True)
            for (name, holds_slot), result in zip(batch, results, strict=True):
                if isinstance(result, BaseException):
                    self._failures.append(f"{name}: {result!r}")
                if holds_slot:
                    self._drop_slots.release()

    async def _close(self) -> None:
        spares, self._spares = self._spares, []
        for spare in spares:
            try:
                name = await spare
            except Exception as exc:
                self._failures.append(f"spare database: {exc!r}")
                continue
            self._queue_drop(name, False)
        while self._dropper is not None and not self._dropper.done():
            await self._dropper
