"""The flash sale as raw SQL: the minimal statements of one purchase straight through the database driver
(asyncpg, or sqlite3 in threads) at the same concurrency, on a fresh shop. `flash_sale.py` prints the
shop's throughput as a percentage of this baseline."""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import threading
import time

import asyncpg
from sqlalchemy.engine import make_url

from benchlib import FreshDatabase, prepare_shop, resolve_database_url

__all__ = ["run_baseline", "raw_pg", "raw_sqlite"]

_PG_PURCHASE = """
WITH k AS (
    SELECT id FROM inventory_card_key WHERE sku_id = $1 AND status = 'available'
    ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED
)
UPDATE inventory_card_key SET status = 'reserved', reserved_at = now() FROM k
WHERE inventory_card_key.id = k.id RETURNING inventory_card_key.id
"""
_ORDER_COLUMNS = ("order_no, status, sku_id, product_id, product_name, sku_name, sku_code, delivery_type, "
                  "unit_price_cents, quantity, total_cents, refunded_cents, currency, contact_kind, contact, "
                  "locale, created_ip, created_at, updated_at, expires_at")


async def raw_pg(url: str, sku_id: int, buyers: int, concurrency: int) -> tuple[int, int, float]:
    """The minimal SQL of one purchase, three statements in one transaction per buyer: reserve a key
    (SKIP LOCKED), insert the order, mark it paid/delivered and the key sold to it."""
    dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    # `concurrency` buyers share at most 40 connections, as the shop's two default processes do (pool 10 +
    # overflow 10 each), and stay well below PostgreSQL's default max_connections of 100.
    connections = min(concurrency, 40)
    pool = await asyncpg.create_pool(dsn, min_size=connections, max_size=connections)
    counter = iter(range(buyers))
    done = refused = 0

    async def buyer() -> None:
        nonlocal done, refused
        for n in counter:
            async with pool.acquire() as connection, connection.transaction():
                key_id = await connection.fetchval(_PG_PURCHASE, sku_id)
                if key_id is None:
                    refused += 1
                    continue
                order_id = await connection.fetchval(
                    f"INSERT INTO orders_order ({_ORDER_COLUMNS}) VALUES ($1, 'pending_payment', $2, 1, 'p', "
                    "'s', 'c', 'card_key', 1980, 1, 1980, 0, 'CNY', 'email', $3, 'zh-CN', '', now(), now(), "
                    "now() + interval '15 minutes') RETURNING id", f"R{n:019d}", sku_id, f"fan{n}@example.com")
                await connection.execute("UPDATE inventory_card_key SET status = 'sold', order_id = $1, "
                                         "sold_at = now() WHERE id = $2", order_id, key_id)
                await connection.execute("UPDATE orders_order SET status = 'delivered', paid_at = now(), "
                                         "delivered_at = now() WHERE id = $1", order_id)
            done += 1

    started = time.perf_counter()
    await asyncio.gather(*(buyer() for _ in range(concurrency)))
    wall = time.perf_counter() - started
    await pool.close()
    return done, refused, wall


def raw_sqlite(path: str, sku_id: int, buyers: int, concurrency: int) -> tuple[int, int, float]:
    """The same three statements with the sqlite3 module, `concurrency` threads, BEGIN IMMEDIATE."""
    lock = threading.Lock()
    counter = iter(range(buyers))
    totals = {"done": 0, "refused": 0}

    def buyer() -> None:
        connection = sqlite3.connect(path, timeout=60, isolation_level=None)
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=NORMAL")
        while True:
            with lock:
                n = next(counter, None)
            if n is None:
                break
            connection.execute("BEGIN IMMEDIATE")
            row = connection.execute("SELECT id FROM inventory_card_key WHERE sku_id = ? AND status = 'available' "
                                     "ORDER BY id LIMIT 1", (sku_id,)).fetchone()
            if row is None:
                connection.execute("COMMIT")
                with lock:
                    totals["refused"] += 1
                continue
            cursor = connection.execute(
                f"INSERT INTO orders_order ({_ORDER_COLUMNS}) VALUES (?, 'pending_payment', ?, 1, 'p', 's', 'c', "
                "'card_key', 1980, 1, 1980, 0, 'CNY', 'email', ?, 'zh-CN', '', datetime('now'), datetime('now'), "
                "datetime('now', '+15 minutes'))", (f"R{n:019d}", sku_id, f"fan{n}@example.com"))
            connection.execute("UPDATE inventory_card_key SET status = 'sold', order_id = ?, sold_at = datetime('now') "
                               "WHERE id = ?", (cursor.lastrowid, row[0]))
            connection.execute("UPDATE orders_order SET status = 'delivered', paid_at = datetime('now'), "
                               "delivered_at = datetime('now') WHERE id = ?", (cursor.lastrowid,))
            connection.execute("COMMIT")
            with lock:
                totals["done"] += 1
        connection.close()

    threads = [threading.Thread(target=buyer) for _ in range(concurrency)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return totals["done"], totals["refused"], time.perf_counter() - started


def run_baseline(args: argparse.Namespace) -> tuple[float, str]:
    with FreshDatabase(resolve_database_url(args.pg, args.database_url)) as db:
        shop = prepare_shop(db, keys=args.keys)
        if db.backend == "postgresql":
            done, refused, wall = asyncio.run(raw_pg(db.url, shop.sku_id, args.buyers, args.concurrency))
        else:
            done, refused, wall = raw_sqlite(str(db.path), shop.sku_id, args.buyers, min(args.concurrency, 32))
    ok = done == args.keys and refused == args.buyers - args.keys
    return done / wall, f"{done} bought, {refused} refused in {wall:.2f} s" + ("" if ok else "  (COUNTS WRONG)")
