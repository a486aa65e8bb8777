"""CPU and SQL statements per request of the flash-sale hot path, in-process, one request at a time.

The app is called straight through ASGI (no HTTP server, no client library, no access log), so the numbers
are what the shop's own code costs: framework, services, SQLAlchemy and the driver. Purchases run
checkout with `pay` (the order and its payment started in one request: create+pay) -> sandbox notification ->
reveal, or with --four-requests the older way: create order -> start payment -> notification -> reveal; then
refused checkouts after the sell-out.
Optionally profiles one phase (cProfile sorted by cumulative time, or pyinstrument).

    python bench/hot_path.py --pg                      # 300 purchases on a fresh PostgreSQL database
    python bench/hot_path.py                           # SQLite
    python bench/hot_path.py --pg --four-requests      # checkout, then start payment (4 requests a purchase)
    python bench/hot_path.py --pg --default-risk-rules # the shipped payment-stage risk rules installed
    python bench/hot_path.py --pg --all-risk-rules     # every shipped rule, buyers with the shop's device cookie
    python bench/hot_path.py --pg --profile notify     # cProfile of the notifications only
    python bench/hot_path.py --pg --profile create --profiler pyinstrument
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import json
import pstats
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from sqlalchemy import event

from benchlib import (
    FreshDatabase,
    PostgresCpu,
    buyer_headers,
    install_default_risk_rules,
    make_settings,
    prepare_shop,
    resolve_database_url,
)
from purchase import notification
from quanyi.app import create_app
from quanyi.context import build_context
from quanyi.risk.device import DEVICE_COOKIE, new_device_cookie

PHASES = ("create", "create+pay", "pay", "notify", "reveal", "refused", "ledger")


class Asgi:
    """The least a client can be: one ASGI call per request, the answer collected in memory."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def request(self, method: str, path: str, *, body: bytes = b"", headers: dict[str, str] | None = None,
                      content_type: str = "application/json", client: str = "127.0.0.1") -> tuple[int, bytes]:
        raw_headers = [(b"host", b"shop.test"), (b"content-type", content_type.encode()),
                       (b"content-length", str(len(body)).encode())]
        raw_headers += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
        scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method,
                 "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
                 "headers": raw_headers, "client": (client, 50000), "server": ("shop.test", 80),
                 "state": self.state}
        sent = False

        async def receive() -> dict[str, Any]:
            nonlocal sent
            if sent:
                await asyncio.sleep(3600)
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        status, chunks = 0, []

        async def send(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        await self.app(scope, receive, send)
        return status, b"".join(chunks)

    async def lifespan(self) -> Any:
        self.state: dict[str, Any] = {}
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        started = asyncio.Event()
        queue.put_nowait({"type": "lifespan.startup"})

        async def send(message: dict[str, Any]) -> None:
            if message["type"].startswith("lifespan.startup"):
                started.set()

        task = asyncio.create_task(self.app({"type": "lifespan", "asgi": {"version": "3.0"}, "state": self.state},
                                            queue.get, send))
        await started.wait()

        async def stop() -> None:
            queue.put_nowait({"type": "lifespan.shutdown"})
            await task

        return stop


class Meter:
    def __init__(self) -> None:
        self.cpu: dict[str, float] = defaultdict(float)
        self.wall: dict[str, float] = defaultdict(float)
        self.count: dict[str, int] = defaultdict(int)
        self.statements: dict[str, int] = defaultdict(int)
        self.round_trips: dict[str, int] = defaultdict(int)  # PostgreSQL: BEGIN / COMMIT / ROLLBACK and pings
        self.phase = ""
        self.profiler: Any = None
        self.profile_phase: str | None = None
        self.profile_after = 0
        self.total = 0.0
        self.show_sql: str | None = None
        self.shown: list[str] = []
        self.backends: BackendCpu | None = None  # --database-cpu
        self.database_cpu: dict[str, float] = defaultdict(float)

    def on_statement(self, _conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        self.statements[self.phase] += 1
        # The statements of one request in the middle of the run (the 10th of the phase), for --show-sql.
        if self.phase == self.show_sql and self.count[self.phase] == 10:
            self.shown.append(" ".join(statement.split())[:220])

    def count_round_trips(self) -> None:
        """On PostgreSQL, count what the statement listener does not see: transaction control sent by the
        driver (BEGIN, COMMIT, ROLLBACK) and the pool's pings (SQLAlchemy's asyncpg ping is BEGIN; ";"; ROLLBACK)."""
        import asyncpg.transaction
        from sqlalchemy.dialects.postgresql.asyncpg import AsyncAdapt_asyncpg_connection

        meter = self

        def counted(method: Any, trips: int) -> Any:
            async def wrapper(*args: Any, **kwargs: Any) -> Any:
                meter.round_trips[meter.phase] += trips
                return await method(*args, **kwargs)
            return wrapper

        for name in ("start", "commit", "rollback"):
            setattr(asyncpg.transaction.Transaction, name, counted(getattr(asyncpg.transaction.Transaction, name), 1))
        # The ping's own BEGIN and ROLLBACK are counted by the Transaction methods above.
        AsyncAdapt_asyncpg_connection._async_ping = counted(AsyncAdapt_asyncpg_connection._async_ping, 1)

    async def run(self, phase: str, call: Any) -> Any:
        self.phase = phase
        profiling = (self.profiler is not None and phase == self.profile_phase
                     and self.count[phase] >= self.profile_after)  # warmed up: statements compiled, caches full
        if profiling:
            self.profiler.enable() if isinstance(self.profiler, cProfile.Profile) else self.profiler.start()
        d0 = self.backends.read() if self.backends is not None else None
        c0, w0 = time.process_time(), time.perf_counter()
        try:
            return await call
        finally:
            self.cpu[phase] += time.process_time() - c0
            self.wall[phase] += time.perf_counter() - w0
            if d0 is not None:
                self.database_cpu[phase] += self.backends.since(d0)
            self.count[phase] += 1
            if profiling:
                self.profiler.disable() if isinstance(self.profiler, cProfile.Profile) else self.profiler.stop()


class BackendCpu:
    """The CPU (ns, /proc/<pid>/schedstat) of the live backends of one database on a PostgreSQL server of this
    machine: the postmaster's children whose title names the database, read before and after each request. The
    pool's connections stay open through the run (one request at a time: the same one or two), so nothing exits
    unseen; background processes (WAL writer, checkpointer) are not counted."""

    def __init__(self, postmaster: int, database: str) -> None:
        self.children = Path(f"/proc/{postmaster}/task/{postmaster}/children")
        self.database = f" {database} "
        self.titles: dict[int, bool] = {}

    def read(self) -> dict[int, int]:
        used = {}
        for pid in map(int, self.children.read_text().split()):
            try:
                ours = self.titles.get(pid)
                if ours is None:
                    ours = self.titles[pid] = self.database in Path(f"/proc/{pid}/cmdline").read_text(errors="replace")
                if ours:
                    used[pid] = int(Path(f"/proc/{pid}/schedstat").read_text().split()[0])
            except OSError:
                continue
        return used

    def since(self, before: dict[int, int]) -> float:
        """Seconds of CPU the database's backends used since `before` (a `read`)."""
        return sum(ns - before.get(pid, 0) for pid, ns in self.read().items()) / 1e9


async def race(url: str, secrets_: dict[str, str], sku_id: int, purchases: int, refused: int, meter: Meter,
               settings_env: dict[str, Any], four_requests: bool = False, payers: bool = False,
               device_cookies: bool = False) -> None:
    ctx = build_context(make_settings(url, secrets_, run_background_tasks=False, **settings_env))
    app = create_app(ctx=ctx)
    client = Asgi(app)
    stop = await client.lifespan()
    engine = ctx.db.write_engine.sync_engine
    event.listen(engine, "before_cursor_execute", meter.on_statement)
    if ctx.db.read_engine is not ctx.db.write_engine:
        event.listen(ctx.db.read_engine.sync_engine, "before_cursor_execute", meter.on_statement)
    secret = secrets_["QUANYI_SANDBOX_SECRET"]
    # As in `quanyi serve`, payments leave their postings to the ledger worker (ledger.deferred); here the
    # worker's batch runs once at the end, measured as its own phase (one batch of every purchase: the best case).
    worker = getattr(ctx, "ledger_worker", None)
    if worker is not None:
        worker.running = True
    started = time.process_time()
    try:
        for n in range(purchases + refused):
            headers = buyer_headers(n)
            ip = headers.pop("X-Forwarded-For")
            if device_cookies:  # a browser that opened a product page: a device of its own, signed by the shop
                del headers["X-Device-Id"]
                headers["Cookie"] = f"{DEVICE_COOKIE}={new_device_cookie(ctx.risk.device_key)}"
            checkout: dict[str, Any] = {"sku_id": sku_id, "quantity": 1, "contact": f"fan{n}@example.com"}
            if not four_requests:  # the order and its payment in one request (orders.pay_at_checkout)
                checkout["pay"] = {"gateway": "sandbox"}
            body = json.dumps(checkout).encode()
            phase = ("create" if four_requests else "create+pay") if n < purchases else "refused"
            status, answer = await meter.run(phase, client.request("POST", "/api/orders", body=body, headers=headers,
                                                                   client=ip))
            if n >= purchases:
                if status != 409:
                    raise SystemExit(f"refused checkout answered {status}: {answer[:300]!r}")
                continue
            if status != 201:
                raise SystemExit(f"checkout answered {status}: {answer[:300]!r}")
            order = json.loads(answer)
            auth = {"X-Order-Token": order["access_token"]}
            if four_requests:
                status, answer = await meter.run("pay", client.request(
                    "POST", f"/api/orders/{order['order_no']}/payments", body=b'{"gateway": "sandbox"}',
                    headers=auth, client=ip))
                if status != 201:
                    raise SystemExit(f"start payment answered {status}: {answer[:300]!r}")
                payment = json.loads(answer)
            elif "payment" not in order:
                raise SystemExit(f"checkout with pay started no payment: {order.get('payment_error')!r}")
            else:
                payment = order["payment"]
            form = urlencode(notification(secret, payment, f"bench-payer-{n}" if payers else None)).encode()
            status, answer = await meter.run("notify", client.request(
                "POST", "/payments/sandbox/notify", body=form, content_type="application/x-www-form-urlencoded"))
            if status != 200 or answer != b"success":
                raise SystemExit(f"notification answered {status}: {answer[:300]!r}")
            status, answer = await meter.run("reveal", client.request(
                "POST", f"/api/orders/{order['order_no']}/reveal", headers=auth, client=ip))
            if status != 200 or len(json.loads(answer)["keys"]) != 1:
                raise SystemExit(f"reveal answered {status}: {answer[:300]!r}")
        if worker is not None:
            from quanyi.ledger.deferred import post_all_deferred
            await meter.run("ledger", post_all_deferred(ctx.db))
        meter.total = time.process_time() - started
    finally:
        await stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pg", action="store_true")
    parser.add_argument("--database-cpu", action="store_true",
                        help="PostgreSQL on this machine: also the bench database's backends' CPU per request")
    parser.add_argument("--database-url")
    parser.add_argument("--purchases", type=int, default=300)
    parser.add_argument("--refused", type=int, default=2000, help="checkouts after the sell-out (2000)")
    parser.add_argument("--profile", choices=PHASES, help="profile this phase")
    parser.add_argument("--profile-after", type=int, default=20,
                        help="profile the phase's requests after its first N (20): first-use compiles left out")
    parser.add_argument("--profiler", choices=("cprofile", "pyinstrument"), default="cprofile")
    parser.add_argument("--cpu-clock", action="store_true",
                        help="cProfile on CPU time (time.process_time) rather than wall time: waits on the database "
                             "and the event loop's epoll then cost nothing")
    parser.add_argument("--show-sql", choices=PHASES, help="print the SQL statements of one request of this phase")
    parser.add_argument("--lines", type=int, default=45, help="lines of the cProfile listing")
    parser.add_argument("--redis", help="QUANYI_REDIS_URL for the shop (risk counters, stock gate)")
    parser.add_argument("--default-risk-rules", action="store_true",
                        help="install the shipped risk rules, those of the order stage only turned off (they would "
                             "challenge the bench's cookieless buyers): the notification evaluates the payment "
                             "stage's; each buyer pays with a payer account of its own")
    parser.add_argument("--all-risk-rules", action="store_true",
                        help="install every shipped risk rule (`quanyi risk defaults`, the order stage's too); each "
                             "buyer carries a device cookie of its own, signed by the shop (without one the "
                             "cookieless-surge rule asks every buyer after the third for a code)")
    parser.add_argument("--four-requests", action="store_true",
                        help="the older purchase: checkout, then start payment in a request of its own")
    args = parser.parse_args()
    meter = Meter()
    meter.show_sql = args.show_sql
    if args.profile:
        meter.profile_phase = args.profile
        meter.profile_after = args.profile_after
        if args.profiler == "pyinstrument":
            try:
                from pyinstrument import Profiler
            except ImportError:
                parser.error("--profiler pyinstrument needs pyinstrument: pip install -e '.[dev]' (or pip install "
                             "pyinstrument), or use the default --profiler cprofile")
            meter.profiler = Profiler(async_mode="disabled", interval=0.0002)
        else:
            meter.profiler = cProfile.Profile(time.process_time) if args.cpu_clock else cProfile.Profile()
    settings_env: dict[str, Any] = {}
    if args.redis:
        settings_env.update(redis_url=args.redis, risk_redis_prefix=f"quanyi:bench:{time.time_ns()}:")
    with FreshDatabase(resolve_database_url(args.pg, args.database_url)) as db:
        if db.backend == "postgresql":
            meter.count_round_trips()
            if args.database_cpu:
                cluster = PostgresCpu.find(db.url)
                if cluster is None:
                    parser.error("--database-cpu: the PostgreSQL server's processes are not visible here")
                meter.backends = BackendCpu(cluster.postmaster, cluster.database)
        shop = prepare_shop(db, keys=args.purchases)
        if args.default_risk_rules:
            rules = asyncio.run(install_default_risk_rules(db.url, shop.secrets))
            print(f"risk rules on: {', '.join(rules)}", file=sys.stderr)
        elif args.all_risk_rules:
            rules = asyncio.run(install_default_risk_rules(db.url, shop.secrets, order_stage=True))
            print(f"risk rules on: {', '.join(rules)}", file=sys.stderr)
        asyncio.run(race(db.url, shop.secrets, shop.sku_id, args.purchases, args.refused, meter, settings_env,
                         args.four_requests, payers=args.default_risk_rules or args.all_risk_rules,
                         device_cookies=args.all_risk_rules))
    way = "4 requests: checkout, start payment" if args.four_requests else "3 requests: checkout with pay"
    print(f"{db.backend}: {args.purchases} purchases ({way}, notify, reveal), then {args.refused} refused "
          "checkouts, in-process over ASGI")
    database_column = f"{'database ms':>12}" if meter.backends is not None else ""
    print(f"{'request':<11}{'n':>6}{'CPU ms':>9}{'wall ms':>9}{'SQL':>6}{'other trips':>12}{database_column}")
    total = 0.0
    for phase in PHASES:
        n = meter.count[phase]
        if not n:
            continue
        total += meter.cpu[phase]
        if phase == "ledger":  # one batch for all purchases: per purchase
            n = max(args.purchases, 1)
        cpu = 1000 * meter.cpu[phase] / n
        database = f"{1000 * meter.database_cpu[phase] / n:>12.3f}" if meter.backends is not None else ""
        print(f"{phase:<11}{n:>6}{cpu:>9.3f}{1000 * meter.wall[phase] / n:>9.3f}{meter.statements[phase] / n:>6.1f}"
              f"{meter.round_trips[phase] / n:>12.1f}{database}")
    per = max(args.purchases, 1)
    if db.backend == "postgresql":
        print("other trips: database round trips besides statements (BEGIN, COMMIT, ROLLBACK, pool pings)")
    print(f"CPU per purchase with {args.refused / per:.1f} refusals each: {1000 * total / per:.2f} ms in requests, "
          f"{1000 * meter.total / per:.2f} ms in the whole process (background work such as the ledger worker "
          "included)")
    if meter.shown:
        print(f"SQL of the 11th {args.show_sql} request:")
        print("\n".join(f"  {n + 1:>2}. {text}" for n, text in enumerate(meter.shown)))
    if meter.profiler is not None:
        if isinstance(meter.profiler, cProfile.Profile):
            out = io.StringIO()
            pstats.Stats(meter.profiler, stream=out).sort_stats("cumulative").print_stats(args.lines)
            print(out.getvalue())
            out = io.StringIO()
            pstats.Stats(meter.profiler, stream=out).sort_stats("tottime").print_stats(args.lines)
            print(out.getvalue())
        else:
            print(meter.profiler.output_text(unicode=False, color=False, show_all=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
