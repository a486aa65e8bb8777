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


@dataclass
class StatementStats:
    """`with StatementStats(url) as stats: ...` then `stats.report(purchases)`; a clear error message (not a
    traceback) in `problem` when the server has no pg_stat_statements."""
    database_url: str
    rows: list[dict[str, Any]] = field(default_factory=list)
    database: dict[str, int] = field(default_factory=dict)
    problem: str | None = None

    def _dsn(self) -> str:
        return make_url(self.database_url).set(drivername="postgresql").render_as_string(hide_password=False)

    async def _database_counters(self, connection: asyncpg.Connection) -> dict[str, int]:
        record = await connection.fetchrow(f"SELECT {', '.join(_DATABASE_COLUMNS)} FROM pg_stat_database "  # noqa: S608
                                           "WHERE datname = current_database()")
        return {name: int(record[name] or 0) for name in _DATABASE_COLUMNS}

    async def _start(self) -> None:
        connection = await asyncpg.connect(self._dsn())
        try:
            await connection.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
            await connection.execute("SELECT pg_stat_statements_reset(0, (SELECT oid FROM pg_database "
                                     "WHERE datname = current_database()), 0)")
            await connection.execute("SELECT pg_stat_clear_snapshot()")
            self.database = await self._database_counters(connection)
        finally:
            await connection.close()

    async def _finish(self) -> None:
        connection = await asyncpg.connect(self._dsn())
        try:
            await asyncio.sleep(0.6)  # the backends report their database counters at most every 0.5 s
            self.rows = [dict(record) for record in await connection.fetch(_STATEMENTS)]
            counters = await self._database_counters(connection)
            self.database = {name: counters[name] - self.database[name] for name in _DATABASE_COLUMNS}
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
        totals = {"calls": 0.0, "plans": 0.0, "plan": 0.0, "exec": 0.0, "rows": 0.0, "wal": 0.0, "hit": 0.0}
        for row in rows:
            totals["calls"] += row["calls"] / per
            totals["plans"] += row["plans"] / per
            totals["plan"] += row["total_plan_time"] / per
            totals["exec"] += row["total_exec_time"] / per
            totals["rows"] += row["rows"] / per
            totals["wal"] += float(row["wal_bytes"]) / per
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
        return f"{text}\ndatabase per purchase: {counters}"


def _short(query: str, width: int = 110) -> str:
    text = re.sub(r"\s+", " ", query).strip()
    return text if len(text) <= width else text[:width - 3] + "..."
