"""bench/benchlib.py's CpuMeter counts the PostgreSQL server's CPU honestly: backends that exit during the span
(their CPU goes to the postmaster's reaped-children times) count, and a backend that was alive at the start and
gone at the end never makes the number negative."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import asyncpg
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

from benchlib import CpuMeter, PostgresCpu  # noqa: E402

PG_URL = os.environ.get("QUANYI_TEST_PG_URL")
pytestmark = pytest.mark.skipif(not PG_URL, reason="needs QUANYI_TEST_PG_URL")
_WORK = "SELECT count(*) FROM generate_series(1, 600000)"  # 0.05-0.15 s of a backend's CPU, by the machine
_AT_LEAST = 0.1  # seconds of CPU a backend's work takes (repeated until it did: machines differ threefold)


def _backend_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _work(connection: asyncpg.Connection, pid: int) -> None:
    """Keep the backend busy until it has used `_AT_LEAST` seconds of CPU more than before."""
    start = _backend_cpu(pid)
    while _backend_cpu(pid) - start < _AT_LEAST:
        await connection.execute(_WORK)


async def _work_then_close(connection: asyncpg.Connection) -> float:
    """Run the work, close the connection; the CPU its backend had used just before it exited."""
    pid = await connection.fetchval("SELECT pg_backend_pid()")
    await _work(connection, pid)
    used = _backend_cpu(pid)
    await connection.close()
    return used


def test_backends_that_exit_during_the_span_count_and_nothing_is_negative():
    assert PG_URL is not None
    if PostgresCpu.find(PG_URL) is None:
        pytest.skip("the PostgreSQL server's processes are not visible on this machine")
    with asyncio.Runner() as runner:
        early = runner.run(asyncpg.connect(PG_URL))
        early_pid = runner.run(early.fetchval("SELECT pg_backend_pid()"))
        runner.run(_work(early, early_pid))  # this backend already used CPU before the span and exits within it
        early_before = _backend_cpu(early_pid)

        async def span() -> float:
            used = await _work_then_close(early) - early_before
            for _ in range(2):  # opened and closed within the span
                used += await _work_then_close(await asyncpg.connect(PG_URL))
            return used

        with CpuMeter([], PG_URL) as meter:
            exited = runner.run(span())
    assert exited > 0.05
    # Other tests may use the same server at the same time: that only adds.
    assert meter.database >= exited - 0.03, (meter.database, exited)
    assert meter.server >= 0 and meter.own >= 0


def test_live_backends_of_the_database_are_told_apart():
    assert PG_URL is not None
    if PostgresCpu.find(PG_URL) is None:
        pytest.skip("the PostgreSQL server's processes are not visible on this machine")

    with asyncio.Runner() as runner:
        connection = runner.run(asyncpg.connect(PG_URL))
        try:
            pid = runner.run(connection.fetchval("SELECT pg_backend_pid()"))
            before = _backend_cpu(pid)
            with CpuMeter([], PG_URL) as meter:
                runner.run(_work(connection, pid))
            used = _backend_cpu(pid) - before
        finally:
            runner.run(connection.close())
    assert used > 0.05
    assert meter.own >= used - 0.03 and meter.database >= meter.own - 0.03, (meter.own, meter.database, used)
