"""Server CPU per refused checkout after the sell-out, over real HTTP: one `quanyi serve` process on a fresh
SQLite shop with one key, which is sold; then `--requests` checkouts of the sold-out SKU over `--connections`
keep-alive connections (bench/leanhttp.py). Prints the server's CPU per refusal (from /proc) and the rate.

    python bench/refused_checkout.py
    python bench/refused_checkout.py --server-env QUANYI_ACCESS_LOG=false
"""

from __future__ import annotations

import argparse
import asyncio
import time

from benchlib import FreshDatabase, Processes, Server, buyer_headers, cpu_seconds, free_port, prepare_shop
from leanhttp import LeanConnection


async def refuse(server: Server, sku_id: int, requests: int, connections: int) -> tuple[float, float]:
    clients = [LeanConnection(server.url) for _ in range(connections)]
    body = {"sku_id": sku_id, "quantity": 1, "contact": "fan@example.com"}
    for n, expected in ((1, 201), (2, 409)):  # the only key is sold; the next checkout finds it sold out
        answer = await clients[0].post("/api/orders", headers=buyer_headers(n), json=body)
        if answer.status_code != expected:
            raise SystemExit(f"checkout {n} answered {answer.status_code}, expected {expected}")
    counter = iter(range(requests))

    async def client(connection: LeanConnection) -> None:
        for n in counter:
            answer = await connection.post("/api/orders", headers=buyer_headers(n % 60_000), json=body)
            if answer.status_code != 409:
                raise SystemExit(f"a refusal answered {answer.status_code}")

    group = server.process.pid
    before = cpu_seconds(lambda pgid, _name: pgid == group)
    started = time.perf_counter()
    try:
        await asyncio.gather(*(client(c) for c in clients))
    finally:
        for connection in clients:
            await connection.close()
    wall = time.perf_counter() - started
    return cpu_seconds(lambda pgid, _name: pgid == group) - before, wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--connections", type=int, default=20)
    parser.add_argument("--server-env", action="append", default=[], metavar="QUANYI_X=value")
    args = parser.parse_args()
    with FreshDatabase(None) as db:
        shop = prepare_shop(db, keys=1, extra_env=args.server_env)
        with Processes() as processes:
            server = processes.add(Server(shop.env, db.tmp, free_port(), 1))
            server.wait_healthy()
            cpu, wall = asyncio.run(refuse(server, shop.sku_id, args.requests, args.connections))
    print(f"{args.requests} refused checkouts: server CPU {1000 * cpu / args.requests:.3f} ms each, "
          f"{args.requests / wall:.0f} refusals/s ({' '.join(args.server_env) or 'default settings'})")


if __name__ == "__main__":
    main()
