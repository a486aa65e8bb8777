"""Engine and transactions: embedded SQLite (WAL) by default, PostgreSQL from QUANYI_DATABASE_URL.

Write work always runs inside `Database.transaction()`: one unit of work, committed at its edge.
On SQLite every write transaction starts with BEGIN IMMEDIATE, so it owns the single writer lock
from its first statement (a deferred BEGIN could fail mid-transaction when upgrading to a writer),
and an in-process FIFO lock queues writers fairly instead of leaving them to SQLite's sleep-and-retry
busy handler. Other processes still wait on busy_timeout. On PostgreSQL, correctness comes from
row locks and unique constraints in the services, not from this module.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import os
import select
import sqlite3
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Any

import asyncpg
from sqlalchemy import DateTime, Index, MetaData, event, text
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.pool import NullPool
from sqlalchemy.types import TypeDecorator

from quanyi import db_driven

__all__ = ["Base", "ConnectionBudget", "Database", "TRANSACTION_BEGAN", "UTCDateTime", "after_commit", "before_commit",
           "async_url", "connection_budget", "index_where_set", "like_anywhere", "transaction_began",
           "is_database_unavailable", "secure_sqlite_files", "utcnow"]

logger = logging.getLogger(__name__)
_AFTER_COMMIT = "quanyi.after_commit"
_BEFORE_COMMIT = "quanyi.before_commit"

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def index_where_set(table: str, column: str) -> Index:
    """`ix_<table>_<column>` on the rows where the column is set (`WHERE column IS NOT NULL`, PostgreSQL and SQLite):
    for a nullable column most rows leave NULL (a guest order's member, a key no leak report named). Such rows
    write no index entry; `column = x`, `IN (...)` and joins on it still use the index on both databases
    (an equality implies IS NOT NULL), and so do foreign-key checks (docs/PERFORMANCE.md section 23)."""
    where = text(f"{column} IS NOT NULL")
    return Index(f"ix_{table}_{column}", column, postgresql_where=where, sqlite_where=where)


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class UTCDateTime(TypeDecorator[dt.datetime]):
    """Timezone-aware UTC datetimes on both backends (SQLite stores naive text otherwise)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(dt.UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def like_anywhere(text: str) -> str:
    """A LIKE pattern (escape character backslash) matching `text` anywhere, its own % and _ taken literally."""
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def async_url(url: str) -> str:
    """Accept the plain URLs people write and pick the async driver for them."""
    parsed = make_url(url)
    if parsed.drivername in ("sqlite", "sqlite+pysqlite"):
        parsed = parsed.set(drivername="sqlite+aiosqlite")
    elif parsed.drivername in ("postgresql", "postgres", "postgresql+psycopg2", "postgresql+psycopg"):
        parsed = parsed.set(drivername="postgresql+asyncpg")
    return parsed.render_as_string(hide_password=False)


# Raised (possibly as the cause of SQLAlchemy's wrapper) when the database cannot be reached or went away:
# refused, dropped or terminated connections (failover, restart, idle killer), a server shutting down or
# out of connection slots, a statement cancelled by the server.
_UNAVAILABLE_CAUSES = (ConnectionError, asyncpg.PostgresConnectionError, asyncpg.exceptions.OperatorInterventionError,
                       asyncpg.TooManyConnectionsError)


def is_database_unavailable(exc: BaseException) -> bool:
    """A transient database failure, not a bug: the connection was lost or refused, the pool had no free
    connection in time, or SQLite stayed locked past busy_timeout. Worth answering "retry shortly"."""
    if isinstance(exc, sa_exc.TimeoutError):  # the pool had no free connection within pool_timeout
        return True
    if isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated:
        return True
    seen: BaseException | None = exc
    for _ in range(10):  # walk the cause chain: SQLAlchemy wraps the adapter's error, which wraps the driver's
        if seen is None:
            return False
        if isinstance(seen, _UNAVAILABLE_CAUSES):
            return True
        if isinstance(seen, sqlite3.OperationalError) and ("locked" in str(seen) or "busy" in str(seen)):
            return True
        seen = seen.__cause__ or getattr(seen, "orig", None)
    return False


_SQLITE_COMPANIONS = ("", "-wal", "-shm", "-journal")


def secure_sqlite_files(url: str) -> None:
    """An SQLite database holds every order, contact and encrypted card key: its file and the WAL / shared-memory /
    journal files next to it are readable by the shop's user only (0600, like var/quanyi.env). The database file
    is created here with that mode before SQLite opens it (SQLite gives its companion files the mode of the
    database file), and files an earlier version left group- or world-readable are narrowed. No-op for
    PostgreSQL and in-memory databases."""
    parsed = make_url(async_url(url))
    path = parsed.database
    if parsed.get_backend_name() != "sqlite" or not path or path == ":memory:" or path.startswith("file:"):
        return
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with contextlib.suppress(FileExistsError):  # an existing database is kept as it is (narrowed below)
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    for companion in _SQLITE_COMPANIONS:
        try:
            mode = os.stat(path + companion).st_mode
            if mode & 0o077:
                os.chmod(path + companion, mode & 0o700)
        except FileNotFoundError:
            continue
        except PermissionError:  # another user's file this process may still use: say so, do not stop
            logger.warning("%s%s is readable by other users (mode %o) and this process cannot narrow it: "
                           "chmod 600 it as its owner", path, companion, mode & 0o777)


def _configure_sqlite(engine: AsyncEngine, *, immediate: bool) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control away from the sqlite3 module; we emit BEGIN ourselves.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        # Before its first read, which starts its snapshot (`transaction_began`).
        conn.info[TRANSACTION_BEGAN] = time.monotonic()
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


# In a SQLite connection's `info`: when (time.monotonic()) its current transaction began. Its reads see the database
# as it was at its first read, after that: what committed before this time, at least.
TRANSACTION_BEGAN = "quanyi.transaction_began"


async def transaction_began(session: AsyncSession) -> float | None:
    """SQLite: when `session`'s transaction began (beginning it now if it had not: then its first read is yet to come),
    so that what committed before then is in everything it reads. None on PostgreSQL, where each statement of a
    READ COMMITTED transaction reads what committed before it started."""
    if session.bind.dialect.name != "sqlite":
        return None
    return (await session.connection()).info.get(TRANSACTION_BEGAN)  # type: ignore[no-any-return]


_IDLE_SINCE = "quanyi.idle_since"
# Peer hung up, or sent something unasked (a FATAL "terminating connection"), on a connection idle in the pool.
_HANGUP = select.POLLIN | select.POLLPRI | select.POLLHUP | select.POLLERR | getattr(select, "POLLRDHUP", 0) \
    if hasattr(select, "poll") else 0


def _hung_up(driver_connection: Any) -> bool:
    """Without a round trip: did the driver see the connection close, or has the server's end hung up or sent
    anything while the connection sat idle in the pool (bytes the event loop has not read yet)?"""
    is_closed = getattr(driver_connection, "is_closed", None)
    if is_closed is not None and is_closed():
        return True
    transport = getattr(driver_connection, "_transport", None)  # asyncpg keeps its asyncio transport here
    sock = transport.get_extra_info("socket") if transport is not None else None
    if sock is None or not _HANGUP:
        return False
    poller = select.poll()
    poller.register(sock.fileno(), _HANGUP)
    return bool(poller.poll(0))


def _ping_when_idle(engine: AsyncEngine, idle_seconds: float) -> None:
    """Pre-ping only the connections that may have died unseen: instead of SQLAlchemy's `pool_pre_ping` (on
    asyncpg three round trips, BEGIN; ";"; ROLLBACK, before every unit of work), a connection checked out of the
    pool is pinged when it sat idle for `idle_seconds` or more, or when its socket shows the server hung up or
    spoke while it was idle (a terminated backend's goodbye: found with a poll(2) of the socket, no round trip).
    A connection used a moment ago, with a quiet socket, is handed out as it is. One that dies while a request
    uses it, or unseen within `idle_seconds` (a failover whose old host sends nothing), fails that request's
    statement: a 503 `database_unavailable` with Retry-After, as before, and the pool then replaces every
    connection older than the failure. A failed ping does the same at once, and the checkout gets a new one."""
    pool = engine.sync_engine.pool

    @event.listens_for(pool, "checkin")
    def _idle_from(dbapi_connection: Any, record: Any) -> None:
        if dbapi_connection is not None:  # None: the connection was invalidated, nothing to remember
            record.info[_IDLE_SINCE] = time.monotonic()

    @event.listens_for(pool, "checkout")
    def _check(dbapi_connection: Any, record: Any, proxy: Any) -> None:
        idle_since = record.info.get(_IDLE_SINCE)
        if idle_since is None:  # opened by this checkout: nothing to check
            return
        if time.monotonic() - idle_since < idle_seconds and not _hung_up(proxy.driver_connection):
            return
        try:
            dbapi_connection.ping()
        except Exception as exc:
            # Like a failed pre-ping: this connection and every pooled one opened before now are replaced.
            raise sa_exc.InvalidatePoolError(f"ping on checkout failed: {exc}") from exc


def after_commit(session: AsyncSession, action: Callable[[], Awaitable[None]]) -> None:
    """Run `action` once the transaction of `session` (from `Database.transaction()`) has committed, and
    never if it rolls back: for writes outside the database (Redis) that must not outlive a rollback."""
    session.info.setdefault(_AFTER_COMMIT, []).append(action)


def before_commit(session: AsyncSession, action: Callable[[], Awaitable[None]]) -> None:
    """Run `action` once the unit of work of `session` (from `Database.transaction()` and the like) has done its work
    and is about to commit, still holding its locks, and never if it fails before: for writes outside the database
    (Redis) that must be seen by whoever waits on those locks. An action that raises rolls the unit back."""
    session.info.setdefault(_BEFORE_COMMIT, []).append(action)


async def _run_before_commit(session: AsyncSession) -> None:
    for action in session.info.pop(_BEFORE_COMMIT, []):
        await action()


async def _run_after_commit(session: AsyncSession) -> None:
    for action in session.info.pop(_AFTER_COMMIT, []):
        try:
            await action()
        except Exception:
            # The transaction is committed and its answer is due: a lost side effect is logged, and must
            # not turn a done unit of work into an error the caller might retry (a second order, say).
            logger.warning("an after-commit action failed", exc_info=True)


@dataclass(frozen=True)
class ConnectionBudget:
    """PostgreSQL's connection limit against what this shop's processes may open (2 × pool size each)."""

    max_connections: int
    reserved: int  # superuser_reserved_connections (+ reserved_connections on PostgreSQL 16+)
    in_use: int  # connections open right now, by anyone
    processes: int
    pool_size: int

    @property
    def needed(self) -> int:
        return self.processes * 2 * self.pool_size

    @property
    def available(self) -> int:
        return self.max_connections - self.reserved - self.in_use

    @property
    def fits(self) -> bool:
        return self.needed <= self.available


async def connection_budget(url: str, *, processes: int, pool_size: int) -> ConnectionBudget | None:
    """The server's connection budget for `processes` more shop processes, or None on SQLite."""
    if make_url(async_url(url)).get_backend_name() != "postgresql":
        return None
    engine = create_async_engine(async_url(url), poolclass=NullPool, connect_args={"timeout": 5})
    try:
        async with engine.connect() as conn:
            row = (await conn.execute(text(
                "SELECT current_setting('max_connections')::int,"
                " current_setting('superuser_reserved_connections')::int"
                " + coalesce(current_setting('reserved_connections', true), '0')::int,"
                " (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend') - 1"
            ))).one()
    finally:
        await engine.dispose()
    return ConnectionBudget(max_connections=row[0], reserved=row[1], in_use=max(row[2], 0),
                            processes=processes, pool_size=pool_size)


class Database:
    """Owns the engines of one database and hands out transactions."""

    def __init__(self, url: str, *, echo: bool = False, pool_size: int = 10,
                 ping_after_idle_seconds: float = 5.0) -> None:
        """`ping_after_idle_seconds` (PostgreSQL): a pooled connection idle that long is pinged before use; 0 pings
        before every unit of work (see `_ping_when_idle`)."""
        self.url = async_url(url)
        self.is_sqlite = make_url(self.url).get_backend_name() == "sqlite"
        if self.is_sqlite:
            secure_sqlite_files(self.url)
            self.write_engine = create_async_engine(self.url, echo=echo)
            self.read_engine = create_async_engine(self.url, echo=echo)
            _configure_sqlite(self.write_engine, immediate=True)
            _configure_sqlite(self.read_engine, immediate=False)
        else:
            # Up to 2 x pool_size connections, opened as requests need them and then kept: no overflow. Overflow
            # connections were closed whenever more than pool_size sat idle at one moment, which under a burst of
            # concurrent requests is all the time (the pool's queue fills before its waiters run): in a flash sale
            # a connection was closed and reopened every ~20 purchases, each reopen paying the connect, asyncpg's
            # type introspection and a prepare of every hot statement again (docs/PERFORMANCE.md, section 14).
            # Last in, first out: the connection just returned is the next one handed out, so a shop that needs few
            # at a time keeps using the same few, warm (their statements prepared, their types known, their plans
            # settled), instead of cycling through all it ever opened: a process opens ~12 at start-up, and first in,
            # first out made a notification at concurrency 1 the first on each of them, 4-5x slower (section 21).
            self.write_engine = create_async_engine(
                self.url, echo=echo, pool_size=2 * pool_size, max_overflow=0, pool_use_lifo=True
            )
            _ping_when_idle(self.write_engine, ping_after_idle_seconds)
            self.read_engine = self.write_engine
        # Copied into every session's `info`: shop-wide policy services read without a settings argument
        # (e.g. which notification channels are configured). Fill it before opening sessions.
        self.session_info: dict[str, Any] = {}
        self._writes = async_sessionmaker(self.write_engine, expire_on_commit=False, autoflush=False,
                                          info=self.session_info)
        self._reads = async_sessionmaker(self.read_engine, expire_on_commit=False, autoflush=False,
                                         info=self.session_info)
        # PostgreSQL: sessions whose statements commit each on its own (`single_statements`); same pool.
        self._single = None if self.is_sqlite else async_sessionmaker(
            self.write_engine.execution_options(isolation_level="AUTOCOMMIT"), expire_on_commit=False,
            autoflush=False, info=self.session_info)
        # PostgreSQL: sessions of units of work on the driver (`driver_transaction`, quanyi.db_driven).
        self._driven = None if self.is_sqlite else async_sessionmaker(
            self.write_engine, expire_on_commit=False, autoflush=False, info=self.session_info,
            sync_session_class=db_driven.DrivenSession)
        self._write_lock = asyncio.Lock() if self.is_sqlite else None
        self._write_owner: asyncio.Task[Any] | None = None

    @property
    def dialect(self) -> str:
        return "sqlite" if self.is_sqlite else "postgresql"

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """One write unit of work: commits on success, rolls back on any exception. Actions registered with
        `before_commit` run just before it commits, `after_commit` once it has (after the SQLite writer lock is
        released)."""
        if self._write_lock is None:
            async with self._writes() as session, session.begin():
                yield session
                await _run_before_commit(session)
            await _run_after_commit(session)
            return
        task = asyncio.current_task()
        if task is not None and self._write_owner is task:
            # Would wait on ourselves forever; this is a programming error, say so loudly.
            raise RuntimeError("nested write transaction on SQLite in the same task")
        async with self._write_lock:
            self._write_owner = task
            try:
                async with self._writes() as session, session.begin():
                    yield session
                    await _run_before_commit(session)
            finally:
                self._write_owner = None
        await _run_after_commit(session)

    @asynccontextmanager
    async def single_statements(self) -> AsyncIterator[AsyncSession]:
        """A unit of work whose statements are each atomic on their own and need no other: on PostgreSQL in
        autocommit (no BEGIN and COMMIT round trips; each statement's writes stand once it returns, whatever the
        caller does next), on SQLite an ordinary write transaction (`transaction`). Actions registered with
        `after_commit` run when the block ends without an exception (on PostgreSQL its statements' writes all
        stand by then); on an exception they are dropped, as a rolled-back transaction drops them."""
        if self._single is None:
            async with self.transaction() as session:
                yield session
            return
        async with self._single() as session:
            yield session
            await _run_before_commit(session)
        await _run_after_commit(session)

    def driver_transaction(self, *, keep: bool = False) -> AbstractAsyncContextManager[AsyncSession]:
        """`transaction`, on PostgreSQL held on the driver (quanyi.db_driven): for a hot unit of work whose
        statements go through quanyi.db_direct (BEGIN sent with the first, no SQLAlchemy Connection or session
        transaction unless a statement needs them). The same guarantees: one transaction, committed at the end,
        rolled back on an exception; `after_commit` actions run once it committed. `keep`: inside `handing_over`,
        the committed connection is left for the request's next driver unit."""
        return self._driver_unit(transaction=True, keep=keep)

    def handing_over(self) -> AbstractAsyncContextManager[None]:
        """A block in which a `driver_transaction(keep=True)` that committed hands its connection to the next driver
        unit instead of the pool (quanyi.db_driven.handing_over; PostgreSQL; nothing on SQLite)."""
        return db_driven.handing_over() if self._driven is not None else contextlib.nullcontext()

    def driver_single_statements(self) -> AbstractAsyncContextManager[AsyncSession]:
        """`single_statements`, on PostgreSQL held on the driver (quanyi.db_driven): each statement in autocommit."""
        return self._driver_unit(transaction=False)

    @asynccontextmanager
    async def _driver_unit(self, *, transaction: bool, keep: bool = False) -> AsyncIterator[AsyncSession]:
        """A unit of work on the driver, in one transaction or each statement in autocommit; on SQLite an
        ordinary write transaction (`transaction`) either way."""
        if self._driven is None:
            async with self.transaction() as session:
                yield session
            return
        async with db_driven.unit(self.write_engine.sync_engine, self._driven, transaction=transaction,
                                  keep=keep) as session:
            yield session
            if session.info_used:  # else no action was registered (and its session's info was never copied)
                await _run_before_commit(session)
        if session.info_used:
            await _run_after_commit(session)

    @asynccontextmanager
    async def read_session(self) -> AsyncIterator[AsyncSession]:
        """A read-only unit of work; never commits. Closing (not rolling back) keeps loaded objects
        usable after the block, e.g. for rendering a page."""
        async with self._reads() as session:
            yield session

    async def dispose(self) -> None:
        await self.write_engine.dispose()
        if self.read_engine is not self.write_engine:
            await self.read_engine.dispose()
