"""Hot statements on the driver (热路径直连驱动): a statement built once with SQLAlchemy, compiled once per dialect,
and on PostgreSQL sent straight to the asyncpg connection of the session's current transaction.

SQLAlchemy's execution layer costs ~0.08 ms of CPU per statement on top of asyncpg's ~0.04 (docs/PERFORMANCE.md,
section 11): the execution context, `construct_params`, the cursor adapter, the result object. For the few
statements every purchase sends, `fetch_one` / `fetch_all` / `execute` do only what those statements need:

- the SQL is the statement's own compiled text (the same text SQLAlchemy would send: one definition);
- parameters go through the same bind processors SQLAlchemy applies (`UTCDateTime`, enums, JSON), in the
  compiled positional order; a bind parameter with a value (`literal(...)`) takes it when not given;
- result columns go through the same result processors (enums back to Python enums, UTC datetimes, Numeric to
  Decimal), chosen as SQLAlchemy chooses them: by the column's type and the type code the server describes for it
  (asyncpg's Numeric needs it), learned once, at a statement's first run (a prepare of it); rows are tuples;
- it runs in the session's transaction: pending ORM changes are flushed first (as `session.execute` would), and a
  transaction SQLAlchemy has not begun on the connection yet (asyncpg's BEGIN is sent lazily, with the first
  statement) is begun first, so a direct statement is never outside the unit of work;
- the engine's `before_cursor_execute` / `after_cursor_execute` listeners see it (cursor and context None), so
  statement counters (tests/orders/test_statement_counts.py, bench/hot_path.py) count it; `echo` logs it;
- a driver error is raised as SQLAlchemy would raise it (`sqlalchemy.exc.DBAPIError` subclasses, a lost
  connection invalidated in the pool), so `is_database_unavailable` and the app's error answers are unchanged.

On SQLite (aiosqlite) the statement goes to the connection's worker thread in one hop (quanyi.sqlite_trip.fetch:
SQLAlchemy's compiled SQL, bind and result processors, error wrapping and statement events), inside the session's
transaction: ~0.03 ms of CPU instead of ~0.15 through `Connection.execute` (docs/PERFORMANCE.md). A statement
sqlite_trip cannot send (a Python-side column default to compute), and any other dialect, runs through the
session's Core connection as before.

Statements with expanding (`IN`-list) or literal-execute parameters, or Python-side column defaults, are refused
when first compiled: they need SQLAlchemy's per-call work.

    _SKU = Direct(select(...).where(Sku.id == bindparam("b_sku_id")))
    row = await db_direct.fetch_one(session, _SKU, {"b_sku_id": 7})
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.sql.base import Executable
from sqlalchemy.util.concurrency import greenlet_spawn

from quanyi import db_driven, sqlite_trip

__all__ = ["Direct", "execute", "fetch_all", "fetch_one"]

_REQUIRED = object()


class _Plan:
    """A statement compiled for one dialect: its text, its parameters in order, its result processors."""

    __slots__ = ("sql", "binds", "dialect", "types", "results")

    def __init__(self, statement: Executable, dialect: Dialect) -> None:
        compiled = statement.compile(dialect=dialect)  # type: ignore[attr-defined]
        if (compiled.literal_execute_params or compiled.post_compile_params or compiled.escaped_bind_names
                or getattr(compiled, "insert_prefetch", None) or getattr(compiled, "update_prefetch", None)):
            raise ValueError("db_direct: expanding / literal-execute parameters, escaped bind names and Python-side "
                             "column defaults need SQLAlchemy's execution")
        self.sql: str = compiled.string
        processors = compiled._bind_processors
        binds = compiled.binds
        self.binds: list[tuple[str, Any, Any]] = []  # (name, processor or None, default or _REQUIRED)
        for name in compiled.positiontup or ():
            bind = binds[name]
            default = (bind.effective_value if bind.callable is not None or bind.value is not None or not bind.required
                       else _REQUIRED)
            self.binds.append((name, processors.get(name), default))
        self.dialect = dialect
        self.types = [column.type for column in compiled._result_columns]
        # (column index, processor) for the columns that need one; None until the server has described the columns
        # (`learn`): a processor may depend on the type code (PostgreSQL's numeric, float4/8 or an integer for Numeric).
        self.results: list[tuple[int, Any]] | None = None if self.types else []

    def learn(self, type_codes: Sequence[Any]) -> None:
        """The result processors for the result columns' type codes (the cursor description's type_code, which
        SQLAlchemy's execution passes to `result_processor`: for asyncpg the type's OID)."""
        results = []
        for n, (type_, code) in enumerate(zip(self.types, type_codes, strict=False)):
            processor = type_._cached_result_processor(self.dialect, code)
            if processor is not None:
                results.append((n, processor))
        self.results = results

    def arguments(self, params: Mapping[str, Any]) -> list[Any]:
        arguments = []
        for name, processor, default in self.binds:
            value = params.get(name, default)
            if value is _REQUIRED:
                raise KeyError(f"db_direct: a value is required for bind parameter {name!r}")
            arguments.append(processor(value) if processor is not None else value)
        return arguments

    def row(self, record: Sequence[Any]) -> tuple[Any, ...]:
        results = self.results
        if not results:
            return tuple(record)
        row = list(record)
        for n, processor in results:
            row[n] = processor(row[n])
        return tuple(row)


class Direct:
    """A statement built once, run by `fetch_one` / `fetch_all` / `execute` (compiled once per dialect)."""

    __slots__ = ("statement", "_plans", "_trips")

    def __init__(self, statement: Executable) -> None:
        self.statement = statement
        self._plans: dict[Dialect, _Plan] = {}
        self._trips: dict[Dialect, bool] = {}  # SQLite: can sqlite_trip send it (worked out on first use)

    def on_trip(self, dialect: Dialect, params: Mapping[str, Any]) -> bool:
        trip = self._trips.get(dialect)
        if trip is None:
            if len(self._trips) >= 16:
                self._trips.clear()
            trip = self._trips[dialect] = sqlite_trip.readable(dialect, self.statement, params)
        return trip

    def plan(self, dialect: Dialect) -> _Plan:
        plan = self._plans.get(dialect)
        if plan is None:
            if len(self._plans) >= 16:  # one dialect per engine: tests make many engines
                self._plans.clear()
            plan = self._plans[dialect] = _Plan(self.statement, dialect)
        return plan


async def fetch_one(session: AsyncSession, direct: Direct, params: Mapping[str, Any]) -> tuple[Any, ...] | None:
    """The first row of the statement (a tuple, result types processed), or None when it returns none."""
    rows = await _run(session, direct, params, one=True)
    return rows[0] if rows else None


async def fetch_all(session: AsyncSession, direct: Direct, params: Mapping[str, Any]) -> list[tuple[Any, ...]]:
    """Every row of the statement (tuples, result types processed)."""
    return await _run(session, direct, params, one=False)


async def execute(session: AsyncSession, direct: Direct, params: Mapping[str, Any]) -> None:
    """Run the statement; its rows, if any, are not read."""
    await _run(session, direct, params, one=False)


async def _run(session: AsyncSession, direct: Direct, params: Mapping[str, Any], *,
               one: bool) -> list[tuple[Any, ...]]:
    driven = db_driven.driven_of(session)
    if driven is not None and not db_driven.pending(session):
        return await _run_driven(driven, direct, params, one=one)
    if session.new or session.dirty or session.deleted:
        await session.flush()
    connection = await session.connection()
    sync = connection.sync_connection
    assert sync is not None
    dialect = sync.dialect
    if dialect.driver == "aiosqlite" and sync.in_transaction() and direct.on_trip(dialect, params):
        return await sqlite_trip.fetch(connection, direct.statement, params, one=one)
    if dialect.driver != "asyncpg":
        result = await connection.execute(direct.statement, dict(params))
        if not result.returns_rows:
            return []
        return [tuple(row) for row in (result.fetchmany(1) if one else result.fetchall())]
    plan = direct.plan(dialect)
    sql, arguments = plan.sql, plan.arguments(params)
    if sync._has_events or sync.engine._has_events:
        for fn in sync.dispatch.before_cursor_execute:
            sql, arguments = fn(sync, None, sql, arguments, None, False)
    if sync._echo:
        sync._log_info(sql)
    fairy = sync._dbapi_connection if sync._dbapi_connection is not None else await connection.get_raw_connection()
    adapter = fairy.dbapi_connection  # SQLAlchemy's asyncpg adapter: it owns the transaction
    driver = fairy.driver_connection
    try:
        async with adapter._execute_mutex:
            if not _begun(adapter):  # SQLAlchemy begins lazily, with the first statement: begin it now
                await adapter._start_transaction()
            records = await _fetch(driver, plan, sql, arguments)
    except Exception as error:
        await _raise_as_sqlalchemy(connection, adapter, error, sql, arguments)
    if sync._has_events or sync.engine._has_events:
        for fn in sync.dispatch.after_cursor_execute:
            fn(sync, None, sql, arguments, None, False)
    if one:
        return [plan.row(records[0])] if records else []
    return [plan.row(record) for record in records]


async def _run_driven(driven: db_driven.Driven, direct: Direct, params: Mapping[str, Any], *,
                      one: bool) -> list[tuple[Any, ...]]:
    """`_run` in a driven unit of work (quanyi.db_driven) with no SQLAlchemy Connection: straight to its asyncpg
    connection, BEGIN first in a transaction not begun yet."""
    engine = driven.engine
    plan = direct.plan(engine.dialect)
    sql, arguments = plan.sql, plan.arguments(params)
    sql, arguments = db_driven.before_statement(driven, sql, arguments)
    adapter, driver = driven.adapter, driven.driver
    try:
        async with adapter._execute_mutex:
            if driven.transaction and adapter._transaction is None:
                await adapter._start_transaction()
            records = await _fetch(driver, plan, sql, arguments)
    except Exception as error:
        await raise_as_sqlalchemy(driven, error, sql, arguments)
    db_driven.after_statement(driven, sql, arguments)
    if one:
        return [plan.row(records[0])] if records else []
    return [plan.row(record) for record in records]


async def _fetch(driver: Any, plan: _Plan, sql: str, arguments: list[Any]) -> list[Any]:
    """The statement's records from the asyncpg connection; at its first run (per process) prepared on its own, to
    learn its columns' type codes (`_Plan.learn`)."""
    if plan.results is not None:
        return await driver.fetch(sql, *arguments)
    prepared = await driver.prepare(sql)
    records = await prepared.fetch(*arguments)
    plan.learn([attribute.type.oid for attribute in prepared.get_attributes()])
    return records


def _begun(adapter: Any) -> bool:
    started = getattr(adapter, "_started", None)  # SQLAlchemy 2.0's adapter; 2.1 keeps only the transaction
    return bool(started) if started is not None else adapter._transaction is not None


async def raise_as_sqlalchemy(driven: db_driven.Driven, error: Exception, sql: str, arguments: list[Any]) -> None:
    """`_raise_as_sqlalchemy` in a driven unit of work (its SQLAlchemy Connection built for it)."""
    sync = driven.sync_connection()
    try:
        driven.adapter._handle_exception(error)
    except Exception as adapted:
        await greenlet_spawn(sync._handle_dbapi_exception, adapted, sql, arguments, None, None)
    raise error  # not reached: both raise


async def _raise_as_sqlalchemy(connection: AsyncConnection, adapter: Any, error: Exception, sql: str,
                               arguments: list[Any]) -> None:
    """Raise `error` as SQLAlchemy's execution would: translated by the adapter, wrapped in a DBAPIError, the
    connection invalidated when it is lost (in a greenlet: invalidation may close the connection)."""
    sync = connection.sync_connection
    assert sync is not None
    try:
        adapter._handle_exception(error)
    except Exception as adapted:
        await greenlet_spawn(sync._handle_dbapi_exception, adapted, sql, arguments, None, None)
    raise error  # not reached: both raise
