"""Purchase benchmark: N concurrent buyers doing create order -> start payment -> gateway notification
(paid + delivered) over HTTP against a real `quanyi serve`.

By default it builds a throwaway shop (fresh SQLite file, or a fresh PostgreSQL database with --pg),
stocks one SKU with exactly --buyers card keys, starts `quanyi serve` on a free port, runs the buyers,
checks that every purchase got its own key, and tears everything down. With --url it hits a server
that is already running instead.

    python bench/purchase.py                  # SQLite, 2000 purchases, 50 at a time, 1 worker
    python bench/purchase.py --pg --workers 2
    python bench/purchase.py --url http://127.0.0.1:8000 --sku-id 3 --sandbox-secret ... [--admin-token ...]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import itertools
import os
import random
import secrets
import signal
import sys
import time
from collections import Counter
from dataclasses import dataclass, field

import httpx
from sqlalchemy import func, select

from benchlib import (
    DEFAULT_PG_URL,
    FreshDatabase,
    Processes,
    Server,
    buyer_headers,
    card_codes,
    flood_limits,
    free_port,
    percentile,
    prepare_shop,
    resolve_database_url,
    table,
)
from quanyi.db import Database
from quanyi.inventory.models import CardKey, CardKeyStatus
from quanyi.orders.models import Order
from quanyi.orders.state import OrderStatus
from quanyi.payments.sandbox.signing import sign_params

STEPS = ("purchase", "create order", "start payment", "callback->delivered")


# ---------------------------------------------------------------- the buyers

@dataclass
class Results:
    latencies: dict[str, list[float]] = field(default_factory=lambda: {step: [] for step in STEPS})
    failures: Counter[str] = field(default_factory=Counter)
    orders: list[tuple[str, str]] = field(default_factory=list)  # (order_no, access token) of completed buys
    done: int = 0


def notification(secret: str, payment: dict[str, object], payer: str | None = None) -> dict[str, str]:
    """The sandbox gateway's signed form, built like tests/helpers.py `signed_notification`; `payer`: the paying
    account it names (`buyer_id`), if any."""
    now = dt.datetime.now(dt.UTC)
    params = {
        "out_trade_no": str(payment["payment_no"]),
        "trade_no": "SBBENCH" + secrets.token_hex(8).upper(),
        "total_amount_cents": str(payment["amount_cents"]),
        "currency": str(payment["currency"]),
        "trade_status": "SUCCESS",
        "paid_at": now.isoformat(),
        "timestamp": str(int(now.timestamp())),
        "nonce": secrets.token_hex(12),
        "sign_type": "HMAC-SHA256",
    }
    if payer is not None:
        params["buyer_id"] = payer
    params["sign"] = sign_params(params, secret)
    return params


def failure(step: str, response: httpx.Response) -> str:
    try:
        code = response.json().get("code", "")
    except ValueError:
        code = response.text.strip()[:60]
    return f"{step}: HTTP {response.status_code} {code}".rstrip()


async def buy(client: httpx.AsyncClient, n: int, sku_id: int, secret: str, results: Results) -> None:
    step = "create order"
    try:
        t0 = time.perf_counter()
        response = await client.post("/api/orders", headers=buyer_headers(n),
                                     json={"sku_id": sku_id, "quantity": 1, "contact": f"buyer{n}@example.com"})
        t1 = time.perf_counter()
        if response.status_code != 201:
            results.failures[failure(step, response)] += 1
            return
        order = response.json()
        auth = {"X-Order-Token": order["access_token"]}
        step = "start payment"
        response = await client.post(f"/api/orders/{order['order_no']}/payments", headers=auth,
                                     json={"gateway": "sandbox"})
        t2 = time.perf_counter()
        if response.status_code != 201:
            results.failures[failure(step, response)] += 1
            return
        form = notification(secret, response.json())
        step = "callback->delivered"
        t3 = time.perf_counter()
        response = await client.post("/payments/sandbox/notify", data=form)
        t4 = time.perf_counter()
        if response.status_code != 200 or response.text != "success":
            results.failures[failure(step, response)] += 1
            return
    except httpx.HTTPError as exc:
        results.failures[f"{step}: {type(exc).__name__}"] += 1
        return
    for name, seconds in zip(STEPS, (t4 - t0, t1 - t0, t2 - t1, t4 - t3), strict=True):
        results.latencies[name].append(seconds * 1000)
    results.orders.append((order["order_no"], order["access_token"]))


async def progress(results: Results, total: int) -> None:
    while True:
        await asyncio.sleep(5)
        print(f"  ... {results.done}/{total} purchases finished", file=sys.stderr, flush=True)


async def run_buyers(url: str, sku_id: int, secret: str, buyers: int, concurrency: int) -> tuple[Results, float]:
    results = Results()
    numbers = itertools.count()
    # Idle connections expire before uvicorn's 5 s keep-alive timeout; at httpx's default (also 5 s) a
    # request can go out on a connection the server is closing, and fail with ReadError.
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency, keepalive_expiry=2)

    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=120) as client:
        async def buyer() -> None:
            while (n := next(numbers)) < buyers:
                await buy(client, n, sku_id, secret, results)
                results.done += 1

        ticker = asyncio.create_task(progress(results, buyers))
        started = time.perf_counter()
        try:
            await asyncio.gather(*(buyer() for _ in range(concurrency)))
        finally:
            ticker.cancel()
        return results, time.perf_counter() - started


async def verify_sample(url: str, orders: list[tuple[str, str]], sample: int) -> Counter[str]:
    """GET a random sample of the bought orders: each must be delivered with exactly one key."""
    problems: Counter[str] = Counter()
    chosen = random.sample(orders, min(sample, len(orders)))
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        for order_no, token in chosen:
            response = await client.get(f"/api/orders/{order_no}", headers={"X-Order-Token": token})
            if response.status_code != 200:
                problems[failure("verify", response)] += 1
                continue
            body = response.json()
            if body["status"] != "delivered" or body["delivered_keys"] != 1:
                problems[f"verify: status {body['status']}, {body['delivered_keys']} keys"] += 1
    return problems


async def check_database(database_url: str, bought: int) -> tuple[str, list[str]]:
    """Stock accounting straight from the database: every acknowledged purchase is a delivered order
    holding exactly one sold key, and no key was sold twice."""
    db = Database(database_url, pool_size=1)
    try:
        async with db.read_session() as session:
            by_status = dict((await session.execute(
                select(Order.status, func.count()).group_by(Order.status))).all())
            sold = await session.scalar(select(func.count()).where(CardKey.status == CardKeyStatus.SOLD))
            sold_orders = await session.scalar(select(func.count(func.distinct(CardKey.order_id))).where(
                CardKey.status == CardKeyStatus.SOLD))
            keyless = await session.scalar(select(func.count()).select_from(Order).where(
                Order.status == OrderStatus.DELIVERED,
                ~select(CardKey.id).where(CardKey.order_id == Order.id, CardKey.status == CardKeyStatus.SOLD)
                .exists()))
            # No order expires during a run, so each sold key must be the one its order reserved at
            # checkout; a key sold without a reservation means a reservation was lost and delivery
            # had to top up from free stock.
            unreserved = await session.scalar(select(func.count()).where(
                CardKey.status == CardKeyStatus.SOLD, CardKey.reserved_at.is_(None)))
    finally:
        await db.dispose()
    delivered = by_status.get(OrderStatus.DELIVERED, 0)
    statuses = ", ".join(f"{count} {status}" for status, count in sorted(by_status.items()))
    summary = (f"orders {statuses}; {sold} sold keys on {sold_orders} orders; "
               f"{keyless} delivered orders without a key; {unreserved} keys sold without a reservation")
    problems = []
    if delivered != bought or sold != delivered or sold_orders != delivered or keyless or unreserved:
        problems.append(f"database does not match {bought} acknowledged purchases: {summary}")
    return summary, problems


# ---------------------------------------------------------------- report

def report(backend: str, args: argparse.Namespace, results: Results, wall: float, problems: list[str],
           notes: list[tuple[str, str]]) -> None:
    ok = len(results.orders)
    print()
    print("quanyi purchase benchmark: create order -> start payment -> signed notify (paid + delivered)")
    for name, value in [
        ("backend", backend),
        ("server", args.url or f"quanyi serve --workers {args.workers}"),
        ("concurrency", args.concurrency),
        ("purchases", f"{ok} ok of {args.buyers}"),
        ("failures", sum(results.failures.values())),
        ("wall time", f"{wall:.2f} s"),
        ("throughput", f"{ok / wall:.1f} purchases/s"),
    ]:
        print(f"{name:<13}{value}")
    for reason, count in sorted(results.failures.items()):
        print(f"  failed {count:>6}  {reason}")
    print()
    rows = []
    for step in STEPS:
        values = sorted(results.latencies[step])
        rows.append([step, *(f"{percentile(values, p):.1f}" for p in (50, 90, 99, 100)),
                     f"{sum(values) / len(values):.1f}" if values else "nan"])
    print(table(["latency (ms)", "p50", "p90", "p99", "max", "mean"], rows))
    print()
    for name, value in [*notes, ("verified", f"{min(args.verify, len(results.orders))} orders re-read over HTTP")]:
        print(f"{name:<13}{value}")
    for problem in problems:
        print(f"CHECK FAILED: {problem}")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--buyers", type=int, default=2000, help="total purchases (default 2000)")
    parser.add_argument("--concurrency", type=int, default=50, help="buyers in flight = HTTP connections (50)")
    parser.add_argument("--workers", type=int, default=1, help="`quanyi serve --workers` (default 1)")
    parser.add_argument("--pg", action="store_true", help=f"fresh PostgreSQL database on {DEFAULT_PG_URL}")
    parser.add_argument("--database-url", help="PostgreSQL server to create the fresh database on")
    parser.add_argument("--server-env", action="append", default=[], metavar="QUANYI_X=value",
                        help="extra setting for the server, e.g. QUANYI_DATABASE_POOL_SIZE=20 (repeatable)")
    parser.add_argument("--verify", type=int, default=200, help="orders to re-read over HTTP afterwards (200)")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir, server log and database")
    remote = parser.add_argument_group("an already running server")
    remote.add_argument("--url", help="base URL, e.g. http://127.0.0.1:8000 (no server is started)")
    remote.add_argument("--sku-id", type=int, help="SKU to buy (card-key delivery, in stock)")
    remote.add_argument("--sandbox-secret", default=os.environ.get("QUANYI_SANDBOX_SECRET"),
                        help="the server's QUANYI_SANDBOX_SECRET (default: from the environment)")
    remote.add_argument("--admin-token", help="if given, first import --buyers fresh keys into the SKU via the "
                        "admin API")
    args = parser.parse_args()
    if args.url and not (args.sku_id and args.sandbox_secret):
        parser.error("--url needs --sku-id and --sandbox-secret")
    if min(args.buyers, args.concurrency, args.workers) < 1:
        parser.error("--buyers, --concurrency and --workers must be at least 1")
    return args


async def remote_setup(args: argparse.Namespace) -> str:
    """Against a running server: learn its backend and, with an admin token, top up the SKU's stock."""
    async with httpx.AsyncClient(base_url=args.url, timeout=300) as client:
        health = (await client.get("/healthz")).raise_for_status().json()
        if args.admin_token:
            response = await client.post(
                f"/api/admin/skus/{args.sku_id}/card-keys/import",
                headers={"Authorization": f"Bearer {args.admin_token}"},
                files={"file": ("bench.txt", card_codes(args.buyers).encode(), "text/plain")},
                data={"source_name": "bench/purchase.py"},
            )
            if response.status_code != 201:
                raise SystemExit(f"card-key import failed: {response.status_code} {response.text[:300]}")
            print(f"imported {response.json()['added']} card keys into SKU {args.sku_id}", file=sys.stderr)
    return f"{health['database']} (remote)"


def main() -> int:
    args = parse_args()
    # SIGTERM behaves like Ctrl-C (asyncio cancels the run cleanly), so the cleanup below always runs.
    signal.signal(signal.SIGTERM, lambda _sig, _frame: os.kill(os.getpid(), signal.SIGINT))
    if args.url:
        backend = asyncio.run(remote_setup(args))
        results, wall = asyncio.run(run_buyers(args.url, args.sku_id, args.sandbox_secret, args.buyers,
                                               args.concurrency))
        problems = [f"{n} x {p}" for p, n in asyncio.run(verify_sample(args.url, results.orders, args.verify)).items()]
        report(backend, args, results, wall, problems, [])
        return 1 if results.failures or problems else 0

    with FreshDatabase(resolve_database_url(args.pg, args.database_url), keep=args.keep) as db:
        shop = prepare_shop(db, keys=args.buyers, extra_env=args.server_env)
        with Processes() as processes:
            server = processes.add(Server(shop.env, db.tmp, free_port(), args.workers))
            try:
                server.wait_healthy()
                print(f"server up at {server.url} ({args.workers} worker(s)); {args.buyers} buyers, "
                      f"{args.concurrency} at a time ...", file=sys.stderr)
                results, wall = asyncio.run(run_buyers(server.url, shop.sku_id, shop.secrets["QUANYI_SANDBOX_SECRET"],
                                                       args.buyers, args.concurrency))
                verified = asyncio.run(verify_sample(server.url, results.orders, args.verify))
                problems = [f"{n} x {p}" for p, n in verified.items()]
            except Exception:
                print(f"--- last lines of the server log ({server.log_path}):\n{server.log_tail()}", file=sys.stderr)
                raise
        summary, inconsistencies = asyncio.run(check_database(db.url, len(results.orders)))
        notable = server.notable_lines(limit=10_000)
        count = len(notable.splitlines()) if notable else 0
        report(db.describe(), args, results, wall, problems + inconsistencies,
               [("database", summary), ("flood limit", flood_limits(shop.env)),
                ("server log", f"{count} lines of errors, warnings or 4xx/5xx answers")])
        failed = bool(results.failures or problems or inconsistencies)
        if failed or count:
            print(f"--- server log, errors and warnings ({server.log_path}):\n{server.notable_lines()}",
                  file=sys.stderr)
        return 1 if failed else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("interrupted; cleaned up", file=sys.stderr)
        sys.exit(130)
