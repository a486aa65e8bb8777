"""The worker's garbage collector: how many objects a worker process carries once its context is built, how many
full (generation 2) collections draining N outbox messages (WeCom robot alerts to a local receiver) runs and
their CPU, with or without `gc.collect(); gc.freeze()` after startup (--freeze: what `quanyi serve` and
`quanyi worker` do). In-process, like `quanyi worker`: the same imports and context.

    python bench/worker_gc.py [--pg] [--messages 3000] [--freeze]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from benchlib import FreshDatabase, make_settings, prepare_shop, resolve_database_url
from quanyi.context import build_context
from quanyi.notifications import service as notifications_service
from quanyi.notifications.models import Channel, Kind
from quanyi.notifications.worker import OutboxWorker
from quanyi.suppliers.routing import FulfilmentWorker  # noqa: F401 - imported by `quanyi worker` too


class _Robot(BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        body = json.dumps({"errcode": 0, "errmsg": "ok"}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


class FullCollections:
    """Counts generation-2 collections and their CPU through gc.callbacks."""

    def __init__(self) -> None:
        self.count, self.cpu, self._started = 0, 0.0, 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if info["generation"] != 2:
            return
        if phase == "start":
            self._started = time.process_time()
        else:
            self.count += 1
            self.cpu += time.process_time() - self._started


async def measure(settings: object, messages: int, freeze: bool) -> dict[str, float]:
    ctx = build_context(settings)  # type: ignore[arg-type]
    try:
        async with ctx.db.transaction() as session:
            for n in range(messages):
                await notifications_service.enqueue(
                    session=session, channel=Channel.WECOM, recipient="group", kind=Kind.RISK_HOLD, locale="zh-CN",
                    payload={"order_no": f"Q{n:08d}", "product_name": "视频会员", "sku_name": "月卡", "quantity": 1,
                             "total_cents": 1990, "currency": "CNY", "reason": "bench"},
                    dedupe_key=f"bench:{n}")
        worker = OutboxWorker(ctx, owner="bench")
        gc.collect()
        if freeze:
            gc.freeze()
        tracked = len(gc.get_objects())
        probe = FullCollections()
        gc.callbacks.append(probe)
        started = time.process_time()
        sent = await worker.drain(max_batches=100_000)
        cpu = time.process_time() - started
        gc.callbacks.remove(probe)
        probe_full = time.process_time()
        gc.collect()
        one_full = time.process_time() - probe_full
        return {"sent": sent, "tracked": tracked, "frozen": gc.get_freeze_count(), "full": probe.count,
                "full_cpu": probe.cpu, "cpu": cpu, "one_full_ms": one_full * 1000}
    finally:
        await ctx.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pg", action="store_true")
    parser.add_argument("--database-url")
    parser.add_argument("--messages", type=int, default=3000)
    parser.add_argument("--freeze", action="store_true", help="gc.collect(); gc.freeze() once the worker is built")
    args = parser.parse_args()
    robot = ThreadingHTTPServer(("127.0.0.1", 0), _Robot)
    threading.Thread(target=robot.serve_forever, daemon=True).start()
    try:
        with FreshDatabase(resolve_database_url(args.pg, args.database_url)) as db:
            shop = prepare_shop(db, keys=1)
            settings = make_settings(
                db.url, shop.secrets, notification_backoff_seconds=0.0,
                wecom_webhook_url=f"http://127.0.0.1:{robot.server_address[1]}/cgi-bin/webhook/send?key=bench")
            found = asyncio.run(measure(settings, args.messages, args.freeze))
    finally:
        robot.shutdown()
    print(f"{db.backend}, freeze={'yes' if args.freeze else 'no'}: {found['sent']:.0f} messages sent; "
          f"{found['tracked']:.0f} objects tracked at start ({found['frozen']:.0f} frozen)")
    print(f"  drain CPU {found['cpu']:.2f} s ({1000 * found['cpu'] / max(found['sent'], 1):.2f} ms a message); "
          f"{found['full']:.0f} full collections, {found['full_cpu'] * 1000:.0f} ms of them; "
          f"one full collection afterwards {found['one_full_ms']:.1f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
