"""Several prebuilt statements sent to SQLite in ONE trip to aiosqlite's worker thread (一次往返).

On SQLite each statement through SQLAlchemy and aiosqlite hops to the connection's worker thread three or four
times (cursor, execute, fetch, close): about 0.11 ms of CPU per statement on the bench machine, while eight
statements run on that thread in one hop cost about 0.02 ms in all (docs/PERFORMANCE.md, sections 9d and 13).
The hot path's writes that follow one another with no decision in Python between them (the payment
notification's, the checkout's) are sent here as one list of `Step`s:

- the SQL and the values are SQLAlchemy's own: each statement is compiled once per shape by the connection's
  dialect (as `Connection.execute` compiles it: the parameter keys sorted, executemany for a list of more than
  one), and each call's values go through `construct_params`, the expanding IN parameters' expansion and the
  type's bind processors (datetimes, enums, JSON, Decimal), as `DefaultExecutionContext` does. A statement
  needing a value computed by SQLAlchemy at execution time (a Python-side column default) is refused when it
  is first prepared: give that column a value;
- they run on the session's own connection, inside its current transaction (BEGIN IMMEDIATE already sent: the
  writer lock is held), in the order given, with sqlite3's cursor on the worker thread; nothing commits here;
- a step may stop the trip (`expect`): the steps after it do not run (the first one found nothing to sell, an
  INSERT ... ON CONFLICT DO NOTHING inserted nothing), and a later step may take the first column of the first
  row an earlier one returned (`Returned`: the new order's id, or a text made of it: `points_spent:<id>`);
- writes of other features that go with a new order (a coupon taken, points spent: `Take`) ride in the order's
  trip, each stopping it when it cannot be made, and are answered by their feature once it is back;
- a database error is raised as SQLAlchemy raises it (the connection's `_handle_dbapi_exception`: an
  `IntegrityError`, `OperationalError`... wrapping sqlite3's, with the statement, `handle_error` events and
  invalidation on disconnect), the steps after it not run; the caller's unit of work rolls back as it would;
- `before_cursor_execute` / `after_cursor_execute` listeners (statement counts in tests and bench/) see each
  statement that ran, with its parameters, once the trip is back (cursor and context None); a listener that
  rewrites statements (retval=True) is not supported.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import exc
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

__all__ = ["Returned", "Step", "Take", "fetch", "readable", "run", "returned_a_row", "rowcount_is"]


@dataclass(frozen=True)
class Returned:
    """A parameter value: the first column of the first row step number `step` returned (as text if `text`, after
    `prefix` if one is given: `Returned(0, prefix="points_spent:")`)."""

    step: int
    text: bool = False
    prefix: str = ""


Expect = Callable[[int, list[Any]], bool]  # (rowcount, rows) -> go on with the next step?


def returned_a_row(_rowcount: int, rows: list[Any]) -> bool:
    return bool(rows)


def rowcount_is(count: int) -> Expect:
    return lambda rowcount, _rows: rowcount == count


@dataclass(frozen=True)
class Step:
    """One statement (built once) with its values: a dict, or a list of dicts for several rows (executemany)."""

    statement: Any
    params: Mapping[str, Any] | Sequence[Mapping[str, Any]]
    expect: Expect | None = None


@dataclass(eq=False)
class Take:
    """Writes that go with a new order in its trip (orders.checkout) and may find they cannot be made (a coupon used
    up, points spent meanwhile): `steps`, built for their place in the trip (the new order's id is `Returned(0)`),
    each stopping the trip where it cannot go on. Once the trip is back, `results` holds (rowcount, rows) of those
    of its steps that ran (fewer when one of them, or a take before it, stopped the trip), and
    `after(session, order_id, take)` (its feature's) answers for it: raises its refusal (the caller's transaction
    rolls back, the order with it) or finishes it."""

    steps: list[Step]
    after: Callable[[AsyncSession, int, Take], Awaitable[None]]
    results: list[tuple[int, list[Any]]] = field(default_factory=list)


_REQUIRED = object()
_Bound = tuple[str, str, Callable[[Any], Any] | None, Any]  # (bind key, bind name, processor, value when not given)


@dataclass
class _Prepared:
    compiled: Any
    postcompile: bool
    # Per position, where its value comes from (as `construct_params` finds it), or None: `construct_params` itself
    # (expanding IN parameters, escaped names, callable values).
    plan: tuple[_Bound, ...] | None
    # (column index, result processor) of the result columns that have one (`fetch`).
    results: tuple[tuple[int, Callable[[Any], Any]], ...] = ()


_PREPARED: dict[tuple[Any, Any, tuple[str, ...], bool], _Prepared] = {}  # per dialect (engine), statement, shape
_Fill = tuple[int | None, int, Returned, Callable[[Any], Any] | None]  # (row, position, what, bind processor)


def _prepare(dialect: Any, statement: Any, keys: tuple[str, ...], many: bool) -> _Prepared:
    shape = (dialect, statement, keys, many)
    prepared = _PREPARED.get(shape)
    if prepared is None:
        if len(_PREPARED) > 2000:  # statements are meant to be built once: a caller building them per call
            _PREPARED.clear()  # would otherwise grow this without end
        compiled = statement.compile(dialect=dialect, column_keys=list(keys), for_executemany=many)
        if not compiled.positional:
            raise TypeError("sqlite_trip sends positional (qmark) parameters only")
        if compiled.insert_prefetch or compiled.update_prefetch:
            missing = [column.key for column in (*compiled.insert_prefetch, *compiled.update_prefetch)]
            raise TypeError(f"give a value for {missing}: sqlite_trip computes no column defaults")
        postcompile = bool(compiled.literal_execute_params or compiled.post_compile_params)
        results = []
        for n, column in enumerate(compiled._result_columns):
            processor = column.type._cached_result_processor(dialect, None)
            if processor is not None:
                results.append((n, processor))
        prepared = _PREPARED[shape] = _Prepared(compiled, postcompile, None if postcompile else _plan(compiled),
                                                tuple(results))
    return prepared


def _plan(compiled: Any) -> tuple[_Bound, ...] | None:
    """`construct_params` and the bind processors, worked out once: for each position its bind parameter's key, its
    name, its processor and its value when the call gives none (_REQUIRED: the call must give one)."""
    if compiled.escaped_bind_names:
        return None
    by_name = {name: bind for bind, name in compiled.bind_names.items()}
    processors = compiled._bind_processors
    plan = []
    for name in compiled.positiontup:
        bind = by_name[name]
        if bind.callable is not None:
            return None
        given = bind.value is not None or not bind.required
        plan.append((bind.key, name, processors.get(name), bind.value if given else _REQUIRED))
    return tuple(plan)


def _bind(dialect: Any, step: Step) -> tuple[str, Any, bool, list[_Fill]]:
    """The SQL and the DBAPI parameters SQLAlchemy would send for `step` (see DefaultExecutionContext)."""
    rows = [step.params] if isinstance(step.params, Mapping) else list(step.params)
    many = len(rows) > 1
    prepared = _prepare(dialect, step.statement, tuple(sorted(rows[0])), many)
    compiled = prepared.compiled
    sql, processors, positions = compiled.string, compiled._bind_processors, compiled.positiontup
    fills: list[_Fill] = []
    sent = []
    if prepared.plan is not None:
        for n, row in enumerate(rows):
            line = []
            for position, (key, name, processor, default) in enumerate(prepared.plan):
                value = row[key] if key in row else row.get(name, default)
                if value is _REQUIRED:
                    raise exc.InvalidRequestError(f"A value is required for bind parameter {key!r}, in parameter "
                                                  f"group {n}")
                if isinstance(value, Returned):
                    fills.append((n if many else None, position, value, processor))
                    line.append(None)
                else:
                    line.append(processor(value) if processor is not None else value)
            sent.append(dialect.execute_sequence_format(line))
        return sql, (sent if many else sent[0]), many, fills
    for n, row in enumerate(rows):
        values = compiled.construct_params(row, escape_names=False, _group_number=n)
        if prepared.postcompile:
            if many:
                raise TypeError("expanding IN parameters cannot go with several rows")
            expanded = compiled._process_parameters_for_postcompile(values)
            sql, positions = expanded.statement, expanded.positiontup
            processors = {**processors, **expanded.processors}
        line = []
        for position, key in enumerate(positions):
            value, processor = values[key], processors.get(key)
            if isinstance(value, Returned):
                fills.append((n if many else None, position, value, processor))
                line.append(None)
            else:
                line.append(processor(value) if processor is not None else value)
        sent.append(dialect.execute_sequence_format(line))
    return sql, (sent if many else sent[0]), many, fills


def _on_thread(conn: sqlite3.Connection, work: list[tuple[str, Any, bool, list[_Fill], Expect | None]]
               ) -> tuple[list[tuple[int, list[Any]]], list[Any], BaseException | None]:
    """Runs on aiosqlite's worker thread: the statements in order, until one stops the trip or fails. Returns
    (rowcount, rows) of each that succeeded, the parameters each that ran was sent, and the error if one failed."""
    done: list[tuple[int, list[Any]]] = []
    sent: list[Any] = []
    for sql, params, many, fills, expect in work:
        if fills:
            params = [list(row) for row in params] if many else list(params)
            for row, position, what, processor in fills:
                value = done[what.step][1][0][0]
                value = what.prefix + str(value) if what.text or what.prefix else value
                (params[row] if row is not None else params)[position] = \
                    processor(value) if processor is not None else value
            params = [tuple(row) for row in params] if many else tuple(params)
        sent.append(params)
        try:
            cursor = conn.executemany(sql, params) if many else conn.execute(sql, params)
            try:
                rows = cursor.fetchall() if cursor.description else []
                done.append((cursor.rowcount, rows))
            finally:
                cursor.close()
        except BaseException as error:  # handed to SQLAlchemy's error handling on the event loop
            return done, sent, error
        if expect is not None and not expect(*done[-1]):
            break
    return done, sent, None


async def run(connection: AsyncConnection, steps: Sequence[Step]) -> list[tuple[int, list[Any]]]:
    """Run `steps` in one trip, inside `connection`'s transaction; (rowcount, rows) of each step that ran (fewer
    than `steps` when one's `expect` said stop). Errors are raised as `connection.execute` raises them."""
    sync = connection.sync_connection
    assert sync is not None and sync.in_transaction(), "sqlite_trip runs inside the session's transaction"
    dialect = sync.dialect
    work = [(*_bind(dialect, step), step.expect) for step in steps]
    fairy = sync.connection  # the pool's proxy: .dbapi_connection is SQLAlchemy's adapter, then aiosqlite's
    adapted, driver = fairy.dbapi_connection, fairy.driver_connection
    try:
        async with adapted._execute_mutex:  # as the adapter's own cursor holds it around each execute
            done, sent, error = await driver._execute(_on_thread, driver._conn, work)
    except ValueError as closed:  # aiosqlite's "no active connection": translated as the adapter does
        try:
            adapted._handle_exception(closed)
        except BaseException as translated:
            done, sent, error = [], [work[0][1]], translated
    if sync._has_events or sync.engine._has_events:
        for (sql, _, many, _, _), params in zip(work, sent, strict=False):
            sync.dispatch.before_cursor_execute(sync, None, sql, params, None, many)
            sync.dispatch.after_cursor_execute(sync, None, sql, params, None, many)
    if error is not None:
        sql, params = work[len(done)][0], sent[len(done)]

        def _raise(conn: Any) -> None:
            try:
                raise error
            except BaseException as raised:
                conn._handle_dbapi_exception(raised, sql, params, None, None)

        await connection.run_sync(_raise)
    return done


def readable(dialect: Any, statement: Any, params: Mapping[str, Any]) -> bool:
    """Can `fetch` send `statement` with parameters of `params`' keys (no Python-side column default to compute)?"""
    try:
        _prepare(dialect, statement, tuple(sorted(params)), False)
    except TypeError:
        return False
    return True


async def fetch(connection: AsyncConnection, statement: Any, params: Mapping[str, Any], *,
                one: bool = False) -> list[tuple[Any, ...]]:
    """One statement in one trip (a read: quanyi.db_direct's hot statements on SQLite), inside `connection`'s
    transaction: its rows (only the first if `one`) as tuples, through the result columns' result processors as
    SQLAlchemy's result would give them (datetimes, enums, Decimals, booleans). Errors and statement events as `run`.
    """
    rows = (await run(connection, [Step(statement, params)]))[0][1]
    if one:
        rows = rows[:1]
    sync = connection.sync_connection
    assert sync is not None
    results = _prepare(sync.dialect, statement, tuple(sorted(params)), False).results
    if not results:
        return rows  # sqlite3 rows are tuples
    processed = []
    for record in rows:
        row = list(record)
        for n, processor in results:
            row[n] = processor(row[n])
        processed.append(tuple(row))
    return processed
