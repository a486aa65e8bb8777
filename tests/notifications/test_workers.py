"""Several workers, one outbox: every message is sent exactly once (counted at the receivers).

Two workers in two threads, each with its own event loop, Database object and connection pool; and two
`quanyi worker --once` OS processes. On PostgreSQL FOR UPDATE SKIP LOCKED splits the rows; on SQLite the
writer lock taken by BEGIN IMMEDIATE serializes the claims.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
from collections import Counter

from notifications.support import outbox, settings_env
from quanyi.context import build_context
from quanyi.notifications import service as notifications_service
from quanyi.notifications.models import Channel, Kind
from quanyi.notifications.worker import OutboxWorker

MESSAGES = 40


async def _enqueue_alerts(shop, count: int) -> None:
    async with shop.ctx.db.transaction() as session:
        for i in range(count):
            for channel in (Channel.WECOM, Channel.DINGTALK):
                await notifications_service.enqueue(
                    session=session, channel=channel, recipient="group", kind=Kind.RISK_HOLD, locale="en",
                    payload={"order_no": f"CASE{i:04d}", "product_name": "P", "sku_name": "S", "quantity": 1,
                             "total_cents": 100, "currency": "CNY", "reason": f"case-{i}"},
                    dedupe_key=f"test:{channel}:{i}")


def _cases(robots) -> Counter:
    return Counter((m.channel, m.text.split("Reason: ")[1]) for m in robots.messages)


def _assert_each_sent_once(robots, rows) -> None:
    cases = _cases(robots)
    assert len(robots.messages) == 2 * MESSAGES
    assert set(cases.values()) == {1}
    assert len(cases) == 2 * MESSAGES
    assert {row.status for row in rows} == {"sent"} and {row.attempts for row in rows} == {1}


async def test_two_workers_with_their_own_pools_send_each_message_once(shop, robots, settings):
    await _enqueue_alerts(shop, MESSAGES)
    per_worker: dict[str, int] = {}
    barrier = threading.Barrier(2)

    def run(name: str) -> None:
        async def main() -> None:
            ctx = build_context(settings)  # a separate Database and pool per worker
            try:
                barrier.wait()
                per_worker[name] = await OutboxWorker(ctx, owner=name, batch_size=3).drain()
            finally:
                await ctx.close()
        asyncio.run(main())

    await asyncio.gather(asyncio.to_thread(run, "w1"), asyncio.to_thread(run, "w2"))
    rows = await outbox(shop)
    _assert_each_sent_once(robots, rows)
    assert sum(per_worker.values()) == 2 * MESSAGES
    assert min(per_worker.values()) > 0, per_worker  # both took part


async def test_two_worker_processes_send_each_message_once(shop, robots, settings, tmp_path):
    await _enqueue_alerts(shop, MESSAGES)
    await shop.ctx.db.dispose()
    env = settings_env(settings)
    processes = [
        subprocess.Popen([sys.executable, "-m", "quanyi.cli", "worker", "--once"], cwd=tmp_path, env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL)
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=120) for p in processes]
    for process, (out, err) in zip(processes, outputs, strict=True):
        assert process.returncode == 0, err
    counts = [int(out.split("Processed ")[1].split()[0]) for out, _ in outputs]
    assert sum(counts) == 2 * MESSAGES
    _assert_each_sent_once(robots, await outbox(shop))
