"""Units of work on the driver (驱动直连事务, PostgreSQL): a transaction, or single statements in autocommit, held on
one pooled asyncpg connection, without SQLAlchemy's Connection and session transaction around it unless a statement
needs them.

An ORM session's unit of work costs ~0.3-0.4 ms of CPU on top of its statements (the pooled connection wrapped in a
`Connection`, the session's transaction, a greenlet hop for each `session.connection()`, commit and close), and
asyncpg's BEGIN is a round trip of its own; a checkout's hot statements (quanyi.db_direct) need none of that
(docs/PERFORMANCE.md, section 17). Here the unit takes the connection straight from the engine's pool (its
checkout events, the idle ping among them, run as always) and:

- a `quanyi.db_direct` statement goes straight to the driver: BEGIN (transaction units) is sent just before the
  first statement, or in the same round trip as it (`begin_with_locks`: the checkout's advisory locks, a simple
  query); COMMIT at the unit's end, ROLLBACK on an exception;
- anything else (an ORM query, `session.connection()`, a flush) gets a SQLAlchemy `Connection` built at first
  need around the same pooled connection and joined to the same transaction (the adapter's asyncpg transaction):
  every statement of the unit is in one transaction, whichever way it went;
- the connection goes back to the pool with no transaction open: committed or rolled back; invalidated (closed)
  when the rollback fails, and when the unit is interrupted by a cancellation (a client gone, a shutdown) rather
  than an error, as SQLAlchemy does: a statement may still be running on it. The server then ends the backend's
  transaction, rolled back;
- the session handed out is made only when a statement needs SQLAlchemy (`DrivenAsyncSession`): a unit whose
  statements all go through `db_direct` makes none and closes none;
- once the unit has ended, its session is closed (its objects detached) and cannot reach the connection again;
- handed over (`handing_over`, a unit with `keep`): a unit that committed, on the driver only, leaves its connection
  for the next unit of the same request instead of returning it to the pool (the checkout's connection starts its
  payment: one pool checkout and return less); the hand-over's end returns it if no unit took it.

The session handed out is an `AsyncSession` (bound to the engine: `session.bind.dialect` works) whose statements all
run on the unit's connection.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from contextvars import ContextVar
from typing import Any

from asyncpg.transaction import TransactionState
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session
from sqlalchemy.util.concurrency import greenlet_spawn

__all__ = ["DRIVEN", "Driven", "DrivenAsyncSession", "DrivenSession", "after_statement", "before_statement",
           "begin_with_locks", "driven_of", "handing_over", "holds_nothing", "pending", "unit"]

DRIVEN = "quanyi.driven"  # in a driven session's info: its `Driven`


class Driven:
    """One unit's pooled connection: the pool's proxy (`fairy`), SQLAlchemy's asyncpg adapter (which owns the
    transaction) and the asyncpg connection; `connection`: the SQLAlchemy Connection, once something needed one."""

    __slots__ = ("engine", "fairy", "adapter", "driver", "transaction", "connection", "ended")

    def __init__(self, engine: Engine, fairy: Any, *, transaction: bool) -> None:
        self.engine = engine
        self.fairy = fairy
        self.adapter = fairy.dbapi_connection
        self.driver = fairy.driver_connection
        self.transaction = transaction  # False: single statements, each committed on its own (autocommit)
        self.connection: Connection | None = None
        self.ended = False

    def sync_connection(self) -> Connection:
        """The SQLAlchemy Connection on this unit's pooled connection (built once, at first need)."""
        if self.ended:
            raise RuntimeError("a driven unit of work is over: its connection went back to the pool")
        if self.connection is None:
            connection = Connection(self.engine, connection=self.fairy)
            if not self.transaction:  # as Database._single's engine: reset when the connection goes back
                connection.execution_options(isolation_level="AUTOCOMMIT")
            self.connection = connection
        return self.connection

    def begun(self) -> bool:
        return self.adapter._transaction is not None

    async def begin(self) -> None:
        """BEGIN, as the adapter sends it (its own round trip), unless begun or single statements."""
        if self.transaction and not self.begun():
            await self.adapter._start_transaction()

    def take_begun(self) -> None:
        """A BEGIN sent with a statement (a simple query) took: the adapter owns the transaction as if it began it
        (its COMMIT and ROLLBACK, asyncpg's state), so SQLAlchemy's Connection, if one is built, joins it."""
        adapter, driver = self.adapter, self.driver
        transaction = driver.transaction(isolation=adapter.isolation_level, readonly=adapter.readonly,
                                         deferrable=adapter.deferrable)
        transaction._state = TransactionState.STARTED
        driver._top_xact = transaction
        adapter._transaction = transaction

    async def commit(self) -> None:
        adapter = self.adapter
        async with adapter._execute_mutex:
            if adapter._transaction is not None:
                await adapter._call_and_discard(adapter._transaction.commit)

    async def rollback(self) -> None:
        adapter = self.adapter
        async with adapter._execute_mutex:
            if adapter._transaction is not None:
                await adapter._call_and_discard(adapter._transaction.rollback)


class DrivenSession(Session):
    """A session whose statements run on its driven unit's connection (`Driven.sync_connection`)."""

    def get_bind(self, mapper: Any = None, **kw: Any) -> Any:
        driven = self.info.get(DRIVEN)
        if driven is None:
            return super().get_bind(mapper, **kw)
        return driven.sync_connection()


class DrivenAsyncSession(AsyncSession):
    """The session a driven unit hands out: an ordinary `AsyncSession` (its `DrivenSession` bound to the unit's
    connection) that is made only when something needs it. A unit whose statements all go through `db_direct`
    (the reveal's, start payment's, the notification's one statement) never makes its sync session, so it pays
    neither its making (identity map, transaction bookkeeping, the proxy's weak references) nor its closing
    (`expunge_all`, detaching states): ~10 % of a reveal's CPU under cProfile (docs/PERFORMANCE.md, section 27).

    Without the sync session: `bind` (the engine, its dialect) and `info` (a copy of the sessionmaker's, made at
    first use and then the sync session's own, so nothing written there is lost when it is made). Anything else
    (`execute`, `add`, `connection()`, `sync_session`, ...) makes it at first need, as `async_sessionmaker` would."""

    def __init__(self, driven: Driven, maker: Any) -> None:  # the proxied session is made in `_make`
        self._driven = driven
        self._maker_kw = maker.kw
        self._async_bind = maker.kw.get("bind")
        self._async_binds = {}
        self._info: dict[str, Any] | None = None

    def __getattr__(self, name: str) -> Any:  # only for attributes not set yet: the sync session's two names
        if name == "sync_session" or name == "_proxied":
            self._make()
            return self.__dict__[name]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def _make(self) -> None:
        kw = dict(self._maker_kw)
        kw.pop("info", None)
        AsyncSession.__init__(self, **kw)
        sync = self.__dict__["sync_session"]
        sync.__dict__["info"] = info = self.info  # Session.info is memoized there: one dict for both
        info[DRIVEN] = self._driven

    @property
    def made(self) -> bool:
        """Whether the sync session was made (something needed more than `db_direct`, `bind` and `info`)."""
        return "sync_session" in self.__dict__

    @property
    def info_used(self) -> bool:
        """Whether anything read or wrote `info` (an `after_commit` action, say)."""
        return self._info is not None

    @property
    def bind(self) -> Any:
        return self._async_bind

    @property
    def info(self) -> dict[str, Any]:
        info = self._info
        if info is None:
            info = self._info = dict(self._maker_kw.get("info") or {})
        return info


def driven_of(session: AsyncSession) -> Driven | None:
    """The driven unit `session` belongs to, while its statements may still go straight to the driver (no
    SQLAlchemy Connection built yet, the unit not over), else None."""
    driven: Driven | None = getattr(session, "_driven", None)
    return driven if driven is not None and driven.connection is None and not driven.ended else None


def before_statement(driven: Driven, sql: str, arguments: Any) -> tuple[str, Any]:
    """The engine's `before_cursor_execute` listeners (no Connection, cursor or context) and its echo, for a statement
    a driven unit sends itself."""
    engine = driven.engine
    if engine._has_events:
        for fn in engine.dispatch.before_cursor_execute:
            sql, arguments = fn(None, None, sql, arguments, None, False)
    if engine.echo:
        engine.logger.info(sql)
    return sql, arguments


def after_statement(driven: Driven, sql: str, arguments: Any) -> None:
    engine = driven.engine
    if engine._has_events:
        for fn in engine.dispatch.after_cursor_execute:
            fn(None, None, sql, arguments, None, False)


_BEGIN = {None: "BEGIN", "read_committed": "BEGIN ISOLATION LEVEL READ COMMITTED"}


async def begin_with_locks(driven: Driven, keys: Sequence[int]) -> str | None:
    """If `driven` is a transaction not begun yet: BEGIN and take the transaction-level advisory locks `keys` (in
    ascending order) in one round trip (a simple query: the keys are integers written into its text). Returns the
    SQL sent, or None when the transaction was begun already (the caller takes the locks its own way)."""
    adapter = driven.adapter
    begin = _BEGIN.get(adapter.isolation_level)  # the BEGIN asyncpg would send for the adapter
    if not driven.transaction or driven.begun() or begin is None or adapter.readonly or adapter.deferrable:
        return None
    literal = ",".join(str(int(key)) for key in sorted(keys))  # integers only: nothing else reaches the text
    sql = (f"{begin}; SELECT pg_advisory_xact_lock(k) FROM "  # noqa: S608
           f"(SELECT unnest('{{{literal}}}'::bigint[]) AS k ORDER BY 1 OFFSET 0) AS ordered")
    sql, _ = before_statement(driven, sql, ())
    driver = driven.driver
    try:
        async with adapter._execute_mutex:
            try:
                await driver.execute(sql)
            finally:
                if driver.is_in_transaction() and adapter._transaction is None:  # BEGIN took, whatever came after
                    driven.take_begun()
    except Exception as error:
        from quanyi.db_direct import raise_as_sqlalchemy
        await raise_as_sqlalchemy(driven, error, sql, [])
    after_statement(driven, sql, ())
    return sql


class _Handover:
    """A request's hand-over: at most one committed unit's pooled connection, waiting for the request's next unit."""

    __slots__ = ("engine", "fairy")

    def __init__(self) -> None:
        self.engine: Engine | None = None
        self.fairy: Any = None

    def take(self, engine: Engine) -> Any:
        fairy, self.fairy = self.fairy, None
        if fairy is not None and (self.engine is not engine or not fairy.is_valid):
            fairy.close()  # not this engine's (not reached: one write engine), or invalidated meanwhile
            return None
        return fairy


_HANDOVER: ContextVar[_Handover | None] = ContextVar("quanyi.driven_handover", default=None)


@asynccontextmanager
async def handing_over() -> AsyncIterator[None]:
    """Within this block (one request's task), a unit with `keep` that committed leaves its connection, clean (no
    transaction open, no SQLAlchemy Connection on it), to the next driven unit, which takes it instead of checking
    one out of the pool; at the block's end a connection no unit took goes back to the pool. Nothing may wait for
    another pooled connection between the two units (a request holding one while it waits for a second could wait
    on itself when every connection is held so): the checkout's next unit is its payment's."""
    handover = _Handover()
    token = _HANDOVER.set(handover)
    try:
        yield
    finally:
        _HANDOVER.reset(token)
        fairy, handover.fairy = handover.fairy, None
        if fairy is not None:
            fairy.close()  # committed, no transaction: the pool's reset sends nothing


@asynccontextmanager
async def unit(engine: Engine, make_session: Any, *, transaction: bool,
               keep: bool = False) -> AsyncIterator[DrivenAsyncSession]:
    """A driven unit of work on a connection of `engine`'s pool (see the module's docstring); `make_session`: the
    `async_sessionmaker` (its `sync_session_class` a `DrivenSession`) its session is made with when something needs
    one (`DrivenAsyncSession`). Commits at the end (a transaction), rolls back on an exception. `keep`: within
    `handing_over`, once committed, the connection waits there for the request's next unit."""
    handover = _HANDOVER.get()
    fairy = handover.take(engine) if handover is not None and handover.fairy is not None else None
    if fairy is None:
        fairy = await greenlet_spawn(_checkout_sync, engine)
    driven = Driven(engine, fairy, transaction=transaction)
    session = DrivenAsyncSession(driven, make_session)
    finished = False
    try:
        try:
            yield session
            await _finish(session, driven)
            finished = True
        except Exception:
            await _abandon(session, driven)
            raise
        except BaseException:  # cancelled mid-way: a statement may be running on the connection
            driven.fairy.invalidate()
            raise
    finally:
        await _release(session, driven, handover if keep and finished else None)


def _checkout_sync(engine: Engine) -> Any:
    try:
        return engine.raw_connection()  # the pool's checkout, its events (db._ping_when_idle) included
    except engine.dialect.loaded_dbapi.Error as error:  # as Connection() raises it
        Connection._handle_dbapi_exception_noconnection(error, engine.dialect, engine)
        raise


def holds_nothing(session: AsyncSession) -> bool:
    """Whether `session` is a driven unit's whose sync session was never made: no objects, nothing to flush."""
    return isinstance(session, DrivenAsyncSession) and not session.made


def pending(session: AsyncSession) -> bool:
    if holds_nothing(session):
        return False
    sync = session.sync_session
    return bool(sync._new or sync._deleted or sync.identity_map._modified)


async def _finish(session: DrivenAsyncSession, driven: Driven) -> None:
    if pending(session):
        await session.flush()  # on the unit's connection (a Connection is built for it)
    if driven.connection is not None and session.made and session.sync_session._transaction is not None:
        await session.commit()  # SQLAlchemy's transaction on the connection: commits the adapter's
    if driven.begun():
        try:
            await driven.commit()
        except Exception as error:  # raised as SQLAlchemy raises a failed COMMIT (a lost connection invalidated)
            from quanyi.db_direct import raise_as_sqlalchemy
            await raise_as_sqlalchemy(driven, error, "COMMIT", [])


async def _abandon(session: DrivenAsyncSession, driven: Driven) -> None:
    if not driven.fairy.is_valid:
        return
    try:
        if driven.connection is not None and session.made and session.sync_session._transaction is not None:
            await session.rollback()
        await driven.rollback()
    except Exception:  # the connection cannot say it ended the transaction: it is closed, not pooled
        driven.fairy.invalidate()


async def _release(session: DrivenAsyncSession, driven: Driven, handover: _Handover | None = None) -> None:
    try:
        if not session.made:
            pass  # nothing made, nothing to close: no objects, no SQLAlchemy transaction
        elif driven.connection is not None:
            await session.close()
        else:
            session.sync_session.close()  # no connection in it: detaches its objects, sends nothing
    finally:
        driven.ended = True
        fairy, driven.fairy = driven.fairy, None
        if driven.connection is not None:
            await greenlet_spawn(driven.connection.close)  # returns the pooled connection (its reset included)
        elif driven.adapter._transaction is None and handover is not None and handover.fairy is None \
                and fairy.is_valid:
            handover.engine, handover.fairy = driven.engine, fairy  # clean: the request's next unit takes it
        elif driven.adapter._transaction is None:
            fairy.close()  # nothing to roll back: the pool's reset sends nothing, no greenlet needed
        else:  # not reached (committed or rolled back above); the pool's reset rolls back
            await greenlet_spawn(fairy.close)
