"""Flash-sale benchmark (秒杀): many buyers race over HTTP for few card keys of one SKU, against real
`quanyi serve` worker processes; then the same race as raw SQL straight through the database driver.

Each buyer: checkout with `pay` (reserves a key and starts the payment in one request, or is refused
`sold_out`) -> the sandbox gateway's signed notification (paid + delivered in one transaction) -> reveal the
keys: three requests. `--four-requests`: the older way, checkout then start payment in a request of its own.
Exact counts are checked: delivered == keys, duplicates == 0, refused == the rest.

Scale-out: `--job-workers K` runs K separate `quanyi worker` processes (the servers then run no outbox or
fulfilment worker of their own), `--redis URL` puts the shared risk counters in Redis, and `--scale 1,2,4`
runs the race once per server-process count, each on a fresh database, and ends with one summary table.

    python bench/flash_sale.py --pg --workers 2            # PostgreSQL, 10,000 buyers, 1,000 keys
    python bench/flash_sale.py                              # SQLite, one server process
    python bench/flash_sale.py --pg --four-requests         # checkout and start payment as two requests
    python bench/flash_sale.py --pg --workers 4 --buyers 2000 --keys 200 --concurrency 100
    python bench/flash_sale.py --pg --scale 1,2,4 --job-workers 2 --redis redis://127.0.0.1:6379/0
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
from sqlalchemy.engine import make_url

from benchlib import (
    DEFAULT_PG_URL,
    CpuMeter,
    FreshDatabase,
    Processes,
    Server,
    Worker,
    buyer_headers,
    check_redis,
    flood_limits,
    forget_redis_counters,
    free_port,
    percentile,
    prepare_shop,
    resolve_database_url,
    table,
)
from cpu_sampler.layers import enable_for_servers, sampling, summarize
from leanhttp import LeanConnection, LeanError
from pg_statements import StatementStats
from purchase import failure, notification
from quanyi.config import Settings
from quanyi.testpeers.smtp import SmtpSink
from race_checks import check_database, check_emails, drain_outbox
from raw_purchase import run_baseline

PHASES = ("create order", "start payment", "notify", "reveal", "notify->visible")


@dataclass
class Race:
    latencies: dict[str, list[float]] = field(default_factory=lambda: {p: [] for p in PHASES})
    delivered: list[str] = field(default_factory=list)
    refused: int = 0
    failures: Counter[str] = field(default_factory=Counter)
    seen_codes: Counter[str] = field(default_factory=Counter)


async def one_buyer(client: LeanConnection, n: int, sku_id: int, secret: str, race: Race,
                    four_requests: bool = False) -> None:
    step = "create order"
    checkout: dict[str, object] = {"sku_id": sku_id, "quantity": 1, "contact": f"fan{n}@example.com"}
    if not four_requests:  # the order and its payment in one request (orders.pay_at_checkout)
        checkout["pay"] = {"gateway": "sandbox"}
    try:
        t0 = time.perf_counter()
        response = await client.post("/api/orders", headers=buyer_headers(n), json=checkout)
        t1 = time.perf_counter()
        race.latencies[step].append((t1 - t0) * 1000)
        if response.status_code == 409 and response.json().get("code") == "sold_out":
            race.refused += 1
            return
        if response.status_code != 201:
            race.failures[failure(step, response)] += 1
            return
        order = response.json()
        auth = {"X-Order-Token": order["access_token"]}
        if four_requests:
            step = "start payment"
            response = await client.post(f"/api/orders/{order['order_no']}/payments", headers=auth,
                                         json={"gateway": "sandbox"})
            t2 = time.perf_counter()
            race.latencies[step].append((t2 - t1) * 1000)
            if response.status_code != 201:
                race.failures[failure(step, response)] += 1
                return
            payment = response.json()
        elif "payment" not in order:
            race.failures[f"create order: payment not started: {order.get('payment_error')}"[:120]] += 1
            return
        else:
            payment = order["payment"]
        form = notification(secret, payment)
        step = "notify"
        t3 = time.perf_counter()
        response = await client.post("/payments/sandbox/notify", data=form)
        t4 = time.perf_counter()
        race.latencies[step].append((t4 - t3) * 1000)
        if response.status_code != 200 or response.text != "success":
            race.failures[failure(step, response)] += 1
            return
        step = "reveal"
        response = await client.post(f"/api/orders/{order['order_no']}/reveal", headers=auth)
        t5 = time.perf_counter()
        race.latencies[step].append((t5 - t4) * 1000)
        if response.status_code != 200:
            race.failures[failure(step, response)] += 1
            return
        keys = response.json()["keys"]
        if len(keys) != 1:
            race.failures[f"reveal: {len(keys)} keys instead of 1"] += 1
            return
    except LeanError as exc:
        race.failures[f"{step}: {exc}"[:120]] += 1
        return
    race.latencies["notify->visible"].append((t5 - t3) * 1000)
    race.delivered.append(order["order_no"])
    race.seen_codes[keys[0]["code"]] += 1


async def run_race(url: str, sku_id: int, secret: str, buyers: int, concurrency: int,
                   four_requests: bool = False) -> tuple[Race, float]:
    """`concurrency` buyers at a time, each on its own keep-alive connection (a lean client: see leanhttp.py)."""
    race = Race()
    queue: asyncio.Queue[int] = asyncio.Queue()
    for n in range(buyers):
        queue.put_nowait(n)

    async def buyer() -> None:
        connection = LeanConnection(url)
        try:
            while not queue.empty():
                await one_buyer(connection, queue.get_nowait(), sku_id, secret, race, four_requests)
        finally:
            await connection.close()

    started = time.perf_counter()
    await asyncio.gather(*(buyer() for _ in range(concurrency)))
    return race, time.perf_counter() - started


async def request_floor(url: str, concurrency: int, total: int) -> float:
    """Requests/s of `GET /healthz` (the framework, the access log and one `SELECT 1` in a read session) at
    the race's concurrency: what the server manages when a request does next to nothing."""
    counter = iter(range(total))

    async def client() -> None:
        connection = LeanConnection(url)
        try:
            for _ in counter:
                response = await connection.request("GET", "/healthz")
                if response.status_code != 200:
                    raise LeanError(f"GET /healthz answered {response.status_code}")
        finally:
            await connection.close()

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(concurrency)))
    return total / (time.perf_counter() - started)


# ---------------------------------------------------------------- one race on a fresh shop

@dataclass
class Run:
    servers: int
    backend: str
    race: Race
    wall: float
    database: str
    problems: list[str]
    log_lines: int  # errors, warnings, tracebacks and 4xx/5xx answers in the server and worker logs
    emails: str | None = None
    email_counts: str = ""  # "buyers e-mailed/sent twice", for the summary table
    cpu: str = ""  # CPU per purchase of shop, database and load generator during the race
    floor: float | None = None  # GET /healthz requests/s before the race (--floor)
    statements: str | None = None  # PostgreSQL's statements per purchase (--pg-statements)

    @property
    def duplicates(self) -> int:
        return sum(count - 1 for count in self.race.seen_codes.values() if count > 1)

    @property
    def rate(self) -> float:
        return len(self.race.delivered) / self.wall

    @property
    def exact(self) -> bool:
        return not self.problems and not self.race.failures


def process_env(args: argparse.Namespace, redis_prefix: str) -> list[str]:
    """QUANYI_* settings for servers and workers: ours first, so --server-env can override them."""
    extra = []
    if args.job_workers:
        extra += ["QUANYI_NOTIFICATION_WORKER_IN_SERVE=false", "QUANYI_FULFILMENT_WORKER_IN_SERVE=false"]
    if args.redis:
        # A prefix of its own per invocation: the Redis may be shared (tests, other shops); deleted at the end.
        extra += [f"QUANYI_REDIS_URL={args.redis}", f"QUANYI_RISK_REDIS_PREFIX={redis_prefix}",
                  "QUANYI_RISK_COUNTER_RETENTION_SECONDS=3600"]
    return extra + args.server_env


def race_once(args: argparse.Namespace, servers: int, redis_prefix: str) -> Run:
    """Fresh database and shop, K workers and one `quanyi serve --workers <servers>`, the race, the checks."""
    with FreshDatabase(resolve_database_url(args.pg, args.database_url), keep=args.keep) as db, \
            (SmtpSink().running() if args.email else contextlib.nullcontext()) as sink:
        port = free_port()
        extra = process_env(args, redis_prefix)
        if sink is not None:
            extra = [f"QUANYI_SMTP_HOST={sink.host}", f"QUANYI_SMTP_PORT={sink.port}", "QUANYI_SMTP_SECURITY=none",
                     "QUANYI_SMTP_FROM=Bench Shop <shop@example.com>",
                     f"QUANYI_PUBLIC_BASE_URL=http://127.0.0.1:{port}", *extra]
        shop = prepare_shop(db, keys=args.keys, extra_env=extra)
        emails, email_problems, email_counts = None, [], ""
        with Processes() as processes:
            workers = [processes.add(Worker(shop.env, db.tmp, i + 1)) for i in range(args.job_workers)]
            server = processes.add(Server(shop.env, db.tmp, port, servers))
            try:
                server.wait_healthy()
                for worker in workers:
                    worker.check_running()
                print(f"{servers} server process(es) up at {server.url}, {len(workers)} separate worker(s); "
                      f"{args.buyers} buyers, {args.concurrency} at a time ...", file=sys.stderr)
                floor = None
                if args.floor:
                    floor = asyncio.run(request_floor(server.url, args.concurrency, args.floor))
                statements = (StatementStats(db.url) if args.pg_statements and db.backend == "postgresql"
                              else contextlib.nullcontext())
                with sampling(args.sample_servers), statements, \
                        CpuMeter([started.process.pid for started in processes.started],
                                 db.url if db.backend == "postgresql" else None) as cpu:
                    race, wall = asyncio.run(run_race(server.url, shop.sku_id,
                                                      shop.secrets["QUANYI_SANDBOX_SECRET"], args.buyers,
                                                      args.concurrency, args.four_requests))
                if sink is not None:
                    print("waiting for the delivery e-mails ...", file=sys.stderr)
                    counts, waited = drain_outbox(db.url)
                    emails, email_problems, email_counts = check_emails(sink, counts, args.keys, waited)
                for worker in workers:
                    worker.check_running()
            except Exception:
                for started in processes.started:
                    print(f"--- last lines of {started.log_path}:\n{started.log_tail()}", file=sys.stderr)
                raise
        summary, problems = asyncio.run(check_database(db.url, args.keys))
        # The sold_out refusals (409 on POST /api/orders) are the expected end of most buyers' race.
        notable = {started.log_path.name: "\n".join(line for line in started.notable_lines(limit=10_000).splitlines()
                                                    if '"POST /api/orders HTTP/1.1" 409' not in line)
                   for started in (server, *workers)}
        run = Run(servers, db.describe(), race, wall, summary, problems + email_problems,
                  sum(len(text.splitlines()) for text in notable.values() if text), emails, email_counts,
                  cpu.per_purchase_ms(len(race.delivered)), floor,
                  statements.report(len(race.delivered)) if isinstance(statements, StatementStats) else None)
        if run.log_lines:
            for name, text in notable.items():
                if text:
                    print(f"--- {name}, errors and warnings:\n{chr(10).join(text.splitlines()[:30])}",
                          file=sys.stderr)
    if len(race.delivered) != args.keys or run.duplicates or race.refused != args.buyers - args.keys:
        run.problems.append("the race's counts are wrong (see delivered / duplicates / refused)")
    return run


_DEFAULT_POOL = Settings.model_fields["database_pool_size"].default


async def connection_budget(args: argparse.Namespace, servers: int) -> str | None:
    """A warning when the processes may open more connections than the PostgreSQL server allows."""
    dsn = make_url(resolve_database_url(args.pg, args.database_url)).set(drivername="postgresql")  # type: ignore[arg-type]
    connection = await asyncpg.connect(dsn.render_as_string(hide_password=False))
    try:
        allowed = int(await connection.fetchval("SHOW max_connections"))
    finally:
        await connection.close()
    pool = int(dict(item.partition("=")[::2] for item in args.server_env).get("QUANYI_DATABASE_POOL_SIZE",
                                                                                  _DEFAULT_POOL))
    wanted = (servers + args.job_workers) * 2 * pool
    if wanted > allowed - 5:
        return (f"warning: {servers} servers + {args.job_workers} workers may open up to {wanted} connections "
                f"(2 x QUANYI_DATABASE_POOL_SIZE={pool} each); max_connections is {allowed}")
    return None


# ---------------------------------------------------------------- output

def setup_lines(args: argparse.Namespace, env_note: str) -> list[tuple[str, object]]:
    return [
        ("workers", f"{args.job_workers} separate `quanyi worker` processes (servers run no outbox/fulfilment "
                    "worker)" if args.job_workers else "none separate (outbox and fulfilment run inside serve)"),
        ("counters", f"Redis {args.redis}" if args.redis else "database (no QUANYI_REDIS_URL)"),
        ("e-mail", "a delivery e-mail per order to an SMTP sink in this process" if args.email else "none configured"),
        ("flood limit", env_note),
        ("concurrency", args.concurrency),
        ("purchase", "4 requests: checkout, start payment, notify, reveal" if args.four_requests
         else "3 requests: checkout with pay, notify, reveal"),
    ]


def report(args: argparse.Namespace, run: Run, baseline: tuple[float, str] | None, env_note: str) -> None:
    race = run.race
    print()
    print(f"quanyi flash sale: {args.buyers} buyers race for {args.keys} card keys over HTTP")
    for name, value in [
        ("backend", run.backend),
        ("server", f"quanyi serve --workers {run.servers}"),
        *setup_lines(args, env_note),
        ("delivered", f"{len(race.delivered)} (must be {args.keys})"),
        ("duplicates", f"{run.duplicates} codes handed out twice (must be 0)"),
        ("refused", f"{race.refused} sold_out (must be {args.buyers - args.keys})"),
        ("failures", sum(race.failures.values())),
        ("wall time", f"{run.wall:.2f} s"),
        ("throughput", f"{run.rate:.1f} purchases/s, {args.buyers / run.wall:.1f} buyers/s"),
    ]:
        print(f"{name:<13}{value}")
    for reason, count in sorted(race.failures.items()):
        print(f"  failed {count:>6}  {reason}")
    if baseline is not None:
        raw_rate, raw_note = baseline
        print(f"{'raw SQL':<13}{raw_rate:.1f} purchases/s ({raw_note})")
        print(f"{'ours / raw':<13}{100 * run.rate / raw_rate:.1f} %")
    print()
    rows = []
    for phase in PHASES:
        values = sorted(race.latencies[phase])
        if not values and phase == "start payment":  # the three-request purchase starts it at checkout
            continue
        rows.append([phase, len(values), *(f"{percentile(values, p):.1f}" for p in (50, 95, 99, 100))])
    print(table(["latency (ms)", "n", "p50", "p95", "p99", "max"], rows))
    print(f"database     {run.database}")
    print(f"CPU          {run.cpu}")
    if run.statements is not None:
        print(f"PostgreSQL during the race (pg_stat_statements of the bench database):\n{run.statements}")
    if run.floor is not None:
        per_purchase = (args.buyers + (3 if args.four_requests else 2) * args.keys) / args.keys
        print(f"floor        GET /healthz (framework + one SELECT 1): {run.floor:.0f} requests/s; this race "
              f"makes {per_purchase:.1f} requests per key sold, so even that floor allows "
              f"{run.floor / per_purchase:.0f} purchases/s")
    if run.emails is not None:
        print(f"e-mails      {run.emails}")
    print(f"logs         {run.log_lines} lines of errors, warnings or 4xx/5xx answers in server and worker logs "
          "(besides the 409 sold_out refusals)")
    for problem in run.problems:
        print(f"CHECK FAILED: {problem}")


def scale_summary(args: argparse.Namespace, runs: list[Run], baseline: tuple[float, str] | None,
                  env_note: str) -> None:
    print()
    print(f"quanyi flash sale, scale-out: {args.buyers} buyers race for {args.keys} card keys, "
          f"one fresh database per row")
    print(f"{'backend':<13}{runs[0].backend.split(' (')[0]}")
    for name, value in setup_lines(args, env_note):
        print(f"{name:<13}{value}")
    if baseline is not None:
        print(f"{'raw SQL':<13}{baseline[0]:.1f} purchases/s ({baseline[1]})")
    print()
    header = ["processes", "purchases/s", "p50 ms", "p95 ms", "p99 ms", "delivered", "duplicates", "refused",
              "failures", "exact"]
    rows = []
    for run in runs:
        visible = sorted(run.race.latencies["notify->visible"])
        rows.append([run.servers, f"{run.rate:.1f}", *(f"{percentile(visible, p):.1f}" for p in (50, 95, 99)),
                     len(run.race.delivered), run.duplicates, run.race.refused, sum(run.race.failures.values()),
                     "yes" if run.exact else "NO"])
    if args.email:
        header.append("e-mails/twice")
        for row, run in zip(rows, runs, strict=True):
            row.append(run.email_counts)
    if baseline is not None:
        header.append("vs raw")
        for row, run in zip(rows, runs, strict=True):
            row.append(f"{100 * run.rate / baseline[0]:.1f} %")
    print(table(header, rows, left=()))
    print("processes: `quanyi serve --workers N`; p50/p95/p99: payment notification -> keys visible; exact: "
          "delivered = keys, duplicates 0, refused = the rest, no failures, database consistent"
          + (", one e-mail per delivered order" if args.email else ""))
    for run in runs:
        print(f"CPU, {run.servers} processes: {run.cpu}")
    for run in runs:
        for problem in run.problems:
            print(f"CHECK FAILED ({run.servers} processes): {problem}")


# ---------------------------------------------------------------- main

def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--buyers", type=int, default=10_000, help="buyers racing (10,000)")
    parser.add_argument("--keys", type=int, default=1_000, help="card keys on sale (1,000)")
    parser.add_argument("--concurrency", type=int, default=200, help="buyers in flight = HTTP connections (200)")
    parser.add_argument("--workers", type=int, default=None, help="server processes (PostgreSQL 2, SQLite 1)")
    parser.add_argument("--scale", metavar="N,N,...", help="one race per server-process count, e.g. 1,2,4 "
                        "(instead of --workers), each on a fresh database; ends with a summary table")
    parser.add_argument("--job-workers", type=int, default=0, metavar="K",
                        help="separate `quanyi worker` processes; the servers then run none of their own (0)")
    parser.add_argument("--redis", metavar="URL", help="Redis for the shared risk counters, e.g. "
                        "redis://127.0.0.1:6379/0 (default: counters in the database)")
    parser.add_argument("--email", action="store_true", help="configure e-mail to an SMTP sink in this process: "
                        "every delivery enqueues an e-mail the outbox worker sends; wait for all, check each once")
    parser.add_argument("--pg", action="store_true", help=f"fresh PostgreSQL database on {DEFAULT_PG_URL}")
    parser.add_argument("--database-url", help="PostgreSQL server to create the fresh database on")
    parser.add_argument("--server-env", action="append", default=[], metavar="QUANYI_X=value",
                        help="extra setting for servers and workers, repeatable")
    parser.add_argument("--no-baseline", action="store_true", help="skip the raw-SQL baseline")
    parser.add_argument("--floor", type=int, default=0, metavar="N",
                        help="first send N `GET /healthz` at the same concurrency: the server's request floor")
    parser.add_argument("--pg-statements", action="store_true",
                        help="PostgreSQL: each statement's calls, plan and execution time, rows and WAL per purchase "
                             "during the race (pg_stat_statements) and the database's commits (bench/pg_statements.py)")
    parser.add_argument("--keep", action="store_true", help="keep the temp dirs, logs and databases")
    parser.add_argument("--sample-servers", type=Path, metavar="DIR",
                        help="CPU-time samples of the server processes during the race into DIR (bench/cpu_sampler), "
                             "summarized by layer at the end")
    parser.add_argument("--four-requests", action="store_true",
                        help="the older purchase: checkout, then start payment in a request of its own")
    args = parser.parse_args()
    if args.scale is not None:
        if args.workers is not None:
            parser.error("give either --workers or --scale")
        try:
            args.counts = [int(part) for part in args.scale.split(",") if part.strip()]
        except ValueError:
            parser.error("--scale wants server-process counts like 1,2,4")
        if not args.counts or min(args.counts) < 1 or max(args.counts) > 64:
            parser.error("--scale wants server-process counts between 1 and 64, like 1,2,4")
    else:
        args.counts = [args.workers or (2 if (args.pg or args.database_url) else 1)]
    if not 1 <= args.keys <= args.buyers or args.concurrency < 1 or args.job_workers < 0:
        parser.error("need 1 <= --keys <= --buyers, --concurrency >= 1 and --job-workers >= 0")
    return args


def main() -> int:
    args = parse_args()
    if args.sample_servers:
        enable_for_servers(args.sample_servers)
    # SIGTERM behaves like Ctrl-C, so the cleanup (processes, databases, Redis keys) always runs.
    signal.signal(signal.SIGTERM, lambda _sig, _frame: os.kill(os.getpid(), signal.SIGINT))
    if args.redis:
        check_redis(args.redis)
    redis_prefix = f"quanyi:bench:{uuid.uuid4().hex[:10]}:risk:"
    env_note = flood_limits(dict(item.partition("=")[::2] for item in args.server_env))
    if args.pg or args.database_url:
        warning = asyncio.run(connection_budget(args, max(args.counts)))
        if warning:
            print(warning, file=sys.stderr)
    runs = []
    try:
        for number, servers in enumerate(args.counts, 1):
            if len(args.counts) > 1:
                print(f"=== race {number}/{len(args.counts)}: {servers} server process(es)", file=sys.stderr)
            runs.append(race_once(args, servers, redis_prefix))
    finally:
        if args.redis:
            forget_redis_counters(args.redis, redis_prefix)
    baseline = None if args.no_baseline else run_baseline(args)
    for run in runs:
        report(args, run, baseline, env_note)
    if args.sample_servers:
        print(f"\nserver CPU by layer (samples in {args.sample_servers}; docs/PERFORMANCE.md, section 14):")
        print(summarize(args.sample_servers, sum(len(run.race.delivered) for run in runs)))
    if len(runs) > 1:
        scale_summary(args, runs, baseline, env_note)
    return 0 if all(run.exact for run in runs) else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("interrupted; cleaned up", file=sys.stderr)
        sys.exit(130)
