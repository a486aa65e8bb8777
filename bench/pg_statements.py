"""What PostgreSQL did for one database during a span, per purchase: every statement from pg_stat_statements
(calls, planning and execution time, rows, WAL), and the database's commits, rollbacks, rows written and new
sessions from pg_stat_database. The server must load pg_stat_statements (shared_preload_libraries;
`pg_stat_statements.track_planning = on` for the planning columns); the extension is created in the bench
database, whose statistics alone are reset and read (others on a shared server are left alone)."""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, field
from typing import Any

import asyncpg
from sqlalchemy.engine import make_url

from benchlib import table

__all__ = ["StatementStats"]

_DATABASE_COLUMNS = ("xact_commit", "xact_rollback", "tup_inserted", "tup_updated", "tup_deleted", "sessions",
                     "blks_read", "blks_hit")
_STATEMENTS = """
SELECT query, calls, plans, total_plan_time, total_exec_time, rows, wal_records, wal_bytes, shared_blks_hit,
       shared_blks_dirtied
FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
"""
# Row versions written per table, and its indexes (full, partial): a row version not written HOT adds an entry
# to every full index, and to each partial one whose predicate it meets.
_TABLES = """
SELECT t.relname, t.n_tup_ins, t.n_tup_upd, t.n_tup_hot_upd, t.n_tup_del,
       count(i.indexrelid) FILTER (WHERE i.indpred IS NULL) AS full_indexes,
       count(i.indexrelid) FILTER (WHERE i.indpred IS NOT NULL) AS partial_indexes
FROM pg_stat_user_tables t LEFT JOIN pg_index i ON i.indrelid = t.relid
GROUP BY t.relname, t.n_tup_ins, t.n_tup_upd, t.n_tup_hot_upd, t.n_tup_del
"""
_TABLE_COLUMNS = ("n_tup_ins", "n_tup_upd", "n_tup_hot_upd", "n_tup_del")


@dataclass
class StatementStats:
    """`with StatementStats(url) as stats: ...` then `stats.report(purchases)`; a clear error message (not a
    traceback) in `problem` when the server has no pg_stat_statements."""
    database_url: str
    rows: list[dict[str, Any]] = field(default_factory=list)
    database: dict[str, int] = field(default_factory=dict)
    tables: dict[str, dict[str, int]] = field(default_factory=dict)
    problem: str | None = None
    wal_start: str | None = None
    wal_kinds: list[dict[str, Any]] = field(default_factory=list)

    def _dsn(self) -> str:
        return make_url(self.database_url).set(drivername="postgresql").render_as_string(hide_password=False)

    async def _database_counters(self, connection: asyncpg.Connection) -> dict[str, int]:
        record = await connection.fetchrow(f"SELECT {', '.join(_DATABASE_COLUMNS)} FROM pg_stat_database "  # noqa: S608
                                           "WHERE datname = current_database()")
        return {name: int(record[name] or 0) for name in _DATABASE_COLUMNS}

    async def _table_counters(self, connection: asyncpg.Connection) -> dict[str, dict[str, int]]:
        return {record["relname"]: {key: int(value) for key, value in record.items() if key != "relname"}
                for record in await connection.fetch(_TABLES)}

    async def _start(self) -> None:
        connection = await asyncpg.connect(self._dsn())
        try:
            await connection.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
            await connection.execute("SELECT pg_stat_statements_reset(0, (SELECT oid FROM pg_database "
                                     "WHERE datname = current_database()), 0)")
            await connection.execute("SELECT pg_stat_clear_snapshot()")
            self.database = await self._database_counters(connection)
            self.tables = await self._table_counters(connection)
            self.wal_start = await _wal_lsn(connection)
        finally:
            await connection.close()

    async def _finish(self) -> None:
        connection = await asyncpg.connect(self._dsn())
        try:
            await asyncio.sleep(0.6)  # the backends report their database counters at most every 0.5 s
            self.rows = [dict(record) for record in await connection.fetch(_STATEMENTS)]
            counters = await self._database_counters(connection)
            self.database = {name: counters[name] - self.database[name] for name in _DATABASE_COLUMNS}
            tables = await self._table_counters(connection)
            before = {name: 0 for name in _TABLE_COLUMNS}
            self.tables = {name: {**now, **{c: now[c] - self.tables.get(name, before)[c] for c in _TABLE_COLUMNS}}
                           for name, now in tables.items()}
            if self.wal_start is not None:
                self.wal_kinds = [dict(record) for record in await connection.fetch(_WAL_KINDS, self.wal_start)]
        finally:
            await connection.close()

    def __enter__(self) -> StatementStats:
        try:
            asyncio.run(self._start())
        except asyncpg.PostgresError as error:
            self.problem = f"pg_stat_statements not available: {error}"
        return self

    def __exit__(self, *exc: object) -> None:
        if self.problem is None and exc[0] is None:
            asyncio.run(self._finish())

    def report(self, purchases: int, *, limit: int = 40) -> str:
        """One line per statement (most planning + execution time first), per purchase: calls, plans, time planning
        and executing (ms, wall time in the backend: waits for locks and CPU included), rows, WAL bytes and
        shared buffers hit; then the database's counters."""
        if self.problem is not None:
            return self.problem
        per = max(purchases, 1)
        rows = sorted(self.rows, key=lambda row: -(row["total_exec_time"] + row["total_plan_time"]))
        lines = []
        totals = {"calls": 0.0, "plans": 0.0, "plan": 0.0, "exec": 0.0, "rows": 0.0, "wal": 0.0, "hit": 0.0,
                  "records": 0.0}
        for row in rows:
            totals["calls"] += row["calls"] / per
            totals["plans"] += row["plans"] / per
            totals["plan"] += row["total_plan_time"] / per
            totals["exec"] += row["total_exec_time"] / per
            totals["rows"] += row["rows"] / per
            totals["wal"] += float(row["wal_bytes"]) / per
            totals["records"] += row["wal_records"] / per
            totals["hit"] += row["shared_blks_hit"] / per
        for row in rows[:limit]:
            lines.append([f"{row['calls'] / per:.3f}", f"{row['plans'] / per:.3f}",
                          f"{row['total_plan_time'] / per:.3f}", f"{row['total_exec_time'] / per:.3f}",
                          f"{row['rows'] / per:.2f}", f"{float(row['wal_bytes']) / per:.0f}",
                          f"{row['shared_blks_hit'] / per:.0f}", _short(row["query"])])
        lines.append([f"{totals['calls']:.3f}", f"{totals['plans']:.3f}", f"{totals['plan']:.3f}",
                      f"{totals['exec']:.3f}", f"{totals['rows']:.2f}", f"{totals['wal']:.0f}",
                      f"{totals['hit']:.0f}", f"all {len(rows)} statements"])
        text = table(["calls", "plans", "plan ms", "exec ms", "rows", "WAL B", "blocks", "statement (per purchase)"],
                     lines, left=(7,))
        counters = ", ".join(f"{name} {value / per:.2f}" for name, value in self.database.items())
        return (f"{text}\ndatabase per purchase: {counters}, WAL records (statements) {totals['records']:.1f}\n"
                f"{self._writes(per)}{self._wal_kinds(per)}")

    def _wal_kinds(self, per: int, *, limit: int = 14) -> str:
        """The server's WAL during the race by record type (pg_walinspect), per purchase: the whole cluster's, so
        only meaningful on a server of its own."""
        if not self.wal_kinds:
            return ""
        lines = [[row["record_type"], f"{row['count'] / per:.2f}", f"{float(row['record_size']) / per:.0f}",
                  f"{float(row['fpi_size']) / per:.0f}"] for row in self.wal_kinds[:limit]]
        return "\n" + table(["WAL record type (whole server, per purchase)", "records", "bytes", "FPI bytes"], lines,
                              left=(0,))

    def _writes(self, per: int) -> str:
        """Per table written during the race, per purchase: rows inserted, updated (of them HOT), deleted; its
        indexes; the index entries the full ones got (inserts and non-HOT updates, each one entry per index)."""
        lines, entries = [], 0.0
        for name, row in sorted(self.tables.items(), key=lambda item: -(item[1]["n_tup_ins"] + item[1]["n_tup_upd"])):
            written = row["n_tup_ins"] + row["n_tup_upd"] - row["n_tup_hot_upd"]
            if not (written or row["n_tup_upd"] or row["n_tup_del"]):
                continue
            entries += written * row["full_indexes"] / per
            lines.append([name, f"{row['n_tup_ins'] / per:.2f}", f"{row['n_tup_upd'] / per:.2f}",
                          f"{row['n_tup_hot_upd'] / per:.2f}", f"{row['n_tup_del'] / per:.2f}",
                          f"{row['full_indexes']} + {row['partial_indexes']}",
                          f"{written * row['full_indexes'] / per:.1f}"])
        lines.append(["all tables", "", "", "", "", "", f"{entries:.1f}"])
        return table(["table (per purchase)", "inserted", "updated", "HOT", "deleted", "indexes full + partial",
                      "entries in full indexes"], lines, left=(0,))


_WAL_KINDS = """
SELECT "resource_manager/record_type" AS record_type, count, record_size, fpi_size
FROM pg_get_wal_stats(CAST($1::text AS pg_lsn), pg_current_wal_lsn(), true)
WHERE count > 0 ORDER BY record_size + fpi_size DESC
"""


async def _wal_lsn(connection: asyncpg.Connection) -> str | None:
    """The server's WAL position, when pg_walinspect can be had (superuser; PostgreSQL 15+); else None."""
    try:
        await connection.execute("CREATE EXTENSION IF NOT EXISTS pg_walinspect")
    except asyncpg.PostgresError:
        return None
    return str(await connection.fetchval("SELECT pg_current_wal_lsn()::text"))


def _short(query: str, width: int = 110) -> str:
    text = re.sub(r"\s+", " ", query).strip()
    return text if len(text) <= width else text[:width - 3] + "..."
