"""Server CPU per request of the flash-sale hot path over real HTTP, one request type at a time: the counterpart of
bench/hot_path.py (in-process) with the HTTP server, proxy headers and access log in the way. `--purchases`
orders are created, then paid, then notified, then revealed, each phase over `--connections` keep-alive
connections (bench/leanhttp.py), then `--purchases` more checkouts with `pay` (order and payment in one request:
create+pay, orders.pay_at_checkout), then `--refused` checkouts of the sold-out SKU; the server's CPU per request
of each phase comes from /proc. The difference from hot_path.py's column is what HTTP costs per request type.

    python bench/http_path.py --pg
    python bench/http_path.py --pg --server-env QUANYI_ACCESS_LOG=false
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from benchlib import (
    FreshDatabase,
    Processes,
    Server,
    buyer_headers,
    cpu_seconds,
    free_port,
    prepare_shop,
    resolve_database_url,
    table,
)
from leanhttp import LeanConnection
from purchase import notification


async def phase(connections: list[LeanConnection], items: list[Any],
                call: Callable[[LeanConnection, Any], Awaitable[Any]]) -> list[Any]:
    queue = iter(enumerate(items))
    results: list[Any] = [None] * len(items)

    async def worker(connection: LeanConnection) -> None:
        for index, item in queue:
            results[index] = await call(connection, item)

    await asyncio.gather(*(worker(c) for c in connections))
    return results


async def run(server: Server, sku_id: int, secret: str, purchases: int, refused: int,
              connections: int) -> list[tuple[str, int, float, float]]:
    clients = [LeanConnection(server.url) for _ in range(connections)]
    group = server.process.pid
    rows = []

    async def measured(name: str, items: list[Any], call: Callable[[LeanConnection, Any], Awaitable[Any]]) -> list[Any]:
        before, started = cpu_seconds(lambda pgid, _name: pgid == group), time.perf_counter()
        results = await phase(clients, items, call)
        wall = time.perf_counter() - started
        cpu = cpu_seconds(lambda pgid, _name: pgid == group) - before
        rows.append((name, len(items), 1000 * cpu / len(items), 1000 * wall / len(items) * connections))
        return results

    async def expect(response: Any, status: int, step: str) -> Any:
        if response.status_code != status:
            raise SystemExit(f"{step} answered {response.status_code}: {response.text[:300]}")
        return response

    async def create(c: LeanConnection, n: int) -> dict[str, Any]:
        answer = await c.post("/api/orders", headers=buyer_headers(n),
                              json={"sku_id": sku_id, "quantity": 1, "contact": f"fan{n}@example.com"})
        return (await expect(answer, 201, "checkout")).json()

    async def create_and_pay(c: LeanConnection, n: int) -> dict[str, Any]:
        answer = await c.post("/api/orders", headers=buyer_headers(n),
                              json={"sku_id": sku_id, "quantity": 1, "contact": f"fan{n}@example.com",
                                    "pay": {"gateway": "sandbox"}})
        order = (await expect(answer, 201, "checkout with pay")).json()
        if "payment" not in order:
            raise SystemExit(f"checkout with pay started no payment: {order.get('payment_error')}")
        return order

    async def pay(c: LeanConnection, order: dict[str, Any]) -> dict[str, Any]:
        answer = await c.post(f"/api/orders/{order['order_no']}/payments", json={"gateway": "sandbox"},
                              headers={"X-Order-Token": order["access_token"]})
        return (await expect(answer, 201, "start payment")).json()

    async def notify(c: LeanConnection, payment: dict[str, Any]) -> None:
        await expect(await c.post("/payments/sandbox/notify", data=notification(secret, payment)), 200, "notify")

    async def reveal(c: LeanConnection, order: dict[str, Any]) -> None:
        answer = await c.post(f"/api/orders/{order['order_no']}/reveal",
                              headers={"X-Order-Token": order["access_token"]})
        await expect(answer, 200, "reveal")

    async def refuse(c: LeanConnection, n: int) -> None:
        answer = await c.post("/api/orders", headers=buyer_headers(n % 60_000),
                              json={"sku_id": sku_id, "quantity": 1, "contact": f"late{n}@example.com"})
        await expect(answer, 409, "refused checkout")

    try:
        orders = await measured("create", list(range(purchases)), create)
        payments = await measured("pay", orders, pay)
        await measured("notify", payments, notify)
        await measured("reveal", orders, reveal)
        await measured("create+pay", list(range(purchases, 2 * purchases)), create_and_pay)
        await measured("refused", list(range(2 * purchases, 2 * purchases + refused)), refuse)
    finally:
        for connection in clients:
            await connection.close()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--purchases", type=int, default=300)
    parser.add_argument("--refused", type=int, default=3000)
    parser.add_argument("--connections", type=int, default=10)
    parser.add_argument("--pg", action="store_true", help="fresh PostgreSQL database (default: SQLite)")
    parser.add_argument("--database-url", help="PostgreSQL server to create the fresh database on")
    parser.add_argument("--server-env", action="append", default=[], metavar="QUANYI_X=value")
    args = parser.parse_args()
    env = args.server_env  # flood limits as configured: every buyer has its own address and device (buyer_headers)
    with FreshDatabase(resolve_database_url(args.pg, args.database_url)) as db:
        shop = prepare_shop(db, keys=2 * args.purchases, extra_env=env)
        with Processes() as processes:
            server = processes.add(Server(shop.env, db.tmp, free_port(), 1))
            server.wait_healthy()
            rows = asyncio.run(run(server, shop.sku_id, shop.secrets["QUANYI_SANDBOX_SECRET"], args.purchases,
                                   args.refused, args.connections))
        print(f"{db.describe()}: one `quanyi serve` process, {args.connections} keep-alive connections "
              f"({' '.join(args.server_env) or 'default settings'})")
        print(table(("request", "n", "server CPU ms", "wall ms"),
                    [(name, n, f"{cpu:.3f}", f"{wall:.2f}") for name, n, cpu, wall in rows]))


if __name__ == "__main__":
    main()
