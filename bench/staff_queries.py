"""How long the staff's queries that read a large shop's history take: the console's order search (by contact, by
the gateway's trade number), attaching a member's guest orders at sign-up, the sales reports of a day, the active
trade query's claim (reconciliation) and the daily reconciliation's read. Rows are generated with SQL (not through
the shop), then each query is called through its service function, in-process, and timed (median of --repeat).

    python bench/staff_queries.py --pg --orders 1000000 --keep        # fill a new database, time, keep it
    python bench/staff_queries.py --reuse postgresql://postgres@127.0.0.1:5432/quanyi_bench_xxx   # time again
    python bench/staff_queries.py --orders 200000                      # SQLite

With `PYTHONPATH=<another checkout>/src` it times that code's queries (run `quanyi migrate` of that checkout, or an
alembic downgrade, against a reused database first so that its schema is that code's)."""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import logging
import sqlite3
import statistics
import time
from collections.abc import Awaitable, Callable
from zoneinfo import ZoneInfo

from sqlalchemy import select, text
from sqlalchemy.engine import make_url

from benchlib import FreshDatabase, resolve_database_url
from quanyi.db import Database
from quanyi.errors import DomainError
from quanyi.migrate import upgrade
from quanyi.orders import reports
from quanyi.orders.member_orders import attach_guest_orders
from quanyi.orders.models import Order
from quanyi.orders.search import OrderFilters, search_orders
from quanyi.payments import reconciliation
from quanyi.payments.models import Payment
from quanyi.scope import PLATFORM, Scope

GATEWAYS = ("alipay", "wechat", "sandbox", "stripe")
DAY = dt.timedelta(days=1)


def fill_statements(backend: str, orders: int) -> list[str]:
    """A year of orders, oldest first (id order = time order), one every 365 days / orders; 70 % e-mail buyers,
    30 % phone buyers, each contact ordering ~3 times; statuses as a shop has them (the unpaid ones of the last
    15 minutes still pending); a succeeded payment per paid order at one of four gateways, an abandoned `created`
    payment for a third of the cancelled orders."""
    step = 365 * 86400 / orders  # seconds between two orders
    contacts = max(orders // 3, 1)
    if backend == "postgresql":
        series = f"generate_series(1::bigint, {orders}) AS s(i)"
        at = f"(now() - ({orders} - i) * interval '{step} seconds')"
        plus = "{} + interval '{} seconds'"
        pad = "lpad(({} % {})::text, {}, '0')"
        head = ["SET session_replication_role = replica"]
        tail = ["SET session_replication_role = origin", "ANALYZE orders_order", "ANALYZE payments_payment",
                "SELECT setval('orders_order_id_seq', (SELECT max(id) FROM orders_order))"]
        gateway = "(ARRAY['alipay','wechat','sandbox','stripe'])[1 + o.id % 4]"
    else:
        series = (f"(WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < {orders}) "
                  "SELECT i FROM s)")
        at = f"(julianday('now') - ({orders} - i) * {step} / 86400.0)"
        plus = "({} + {} / 86400.0)"
        pad = "substr('000000000000000000' || ({0} % {1}), -{2}, {2})"
        head = []
        tail = ["ANALYZE"]
        gateway = "CASE o.id % 4 WHEN 0 THEN 'alipay' WHEN 1 THEN 'wechat' WHEN 2 THEN 'sandbox' ELSE 'stripe' END"

    def stamp(expression: str) -> str:
        if backend == "postgresql":
            return expression
        return f"strftime('%Y-%m-%d %H:%M:%f', {expression}) || '000'"

    recent = f"i > {orders} - {max(int(900 / step), 1)}"  # placed in the last 15 minutes
    status = (f"CASE WHEN i % 100 < 80 THEN 'delivered' WHEN i % 100 < 97 THEN "
              f"(CASE WHEN {recent} THEN 'pending_payment' ELSE 'cancelled' END) "
              "WHEN i % 100 = 97 THEN 'paid' WHEN i % 100 = 98 THEN 'under_review' ELSE 'refund_pending' END")
    paid = "(i % 100 < 80 OR i % 100 >= 97)"
    buyer = f"(i * 7919 % {contacts})"
    contact = (f"CASE WHEN {buyer} % 10 < 7 THEN 'buyer' || {buyer} || '@example.com' "
               f"ELSE '138' || {pad.format(buyer, 10**8, 8)} END")
    insert_orders = f"""
        INSERT INTO orders_order (id, order_no, status, sku_id, merchant_id, product_id, product_name, sku_name,
            sku_code, delivery_type, unit_price_cents, quantity, total_cents, currency, contact_kind, contact, locale,
            created_ip, created_at, updated_at, expires_at, paid_at, delivered_at, member_id, customer_account_id)
        SELECT i, '26' || {pad.format('i', 10**12, 12)}, {status}, 1 + i % 50,
               CASE WHEN i % 10 = 0 THEN 2 + i % 7 ELSE 1 END, 1, 'product', 'sku', 'SKU' || (i % 50), 'card_key',
               1000, 1, 1000, 'CNY',
               CASE WHEN {buyer} % 10 < 7 THEN 'email' ELSE 'phone' END, {contact}, 'zh-CN', '10.0.0.1',
               {stamp(at)}, {stamp(at)}, {stamp(plus.format(at, 900))},
               CASE WHEN {paid} THEN {stamp(plus.format(at, 20))} END,
               CASE WHEN i % 100 < 80 THEN {stamp(plus.format(at, 21))} END,
               CASE WHEN i % 20 = 0 THEN 1 + i % 5000 END, CASE WHEN i % 50 = 1 THEN 1 + i % 10 END
        FROM {series}"""
    insert_payments = f"""
        INSERT INTO payments_payment (payment_no, order_id, gateway, amount_cents, currency, status,
            gateway_trade_no, created_at, updated_at, paid_at, query_count)
        SELECT 'PY' || {pad.format('o.id', 10**18, 18)}, o.id, {gateway}, 1000, 'CNY',
               CASE WHEN o.paid_at IS NULL THEN 'created' ELSE 'succeeded' END,
               CASE WHEN o.paid_at IS NOT NULL THEN '2026' || {pad.format('o.id * 31', 10**9, 9)} || o.id END,
               o.created_at, o.created_at, o.paid_at, 0
        FROM orders_order o WHERE o.paid_at IS NOT NULL OR o.id % 3 = 0 OR o.status = 'pending_payment'
        ORDER BY o.id"""
    return [*head, insert_orders, insert_payments, *tail]


class NoGateways:
    """The trade queries' registry: every gateway unreachable, so the claim is timed without calling anything."""

    def lookup(self, name: str) -> object:
        raise DomainError(f"{name} is not called by this bench")


async def timed(repeat: int, call: Callable[[], Awaitable[object]]) -> tuple[float, object]:
    times, found = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        found = await call()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times), found


async def measure(db: Database, repeat: int) -> None:
    zone = ZoneInfo("Asia/Shanghai")
    async with db.read_session() as session:
        last_id = await session.scalar(select(Order.id).order_by(Order.id.desc()).limit(1))
        assert last_id, "no orders: fill the database first"
        email = await session.scalar(select(Order.contact).where(Order.contact_kind == "email",
                                                                 Order.id < last_id // 2).order_by(Order.id.desc())
                                     .limit(1))
        phone = await session.scalar(select(Order.contact).where(Order.contact_kind == "phone",
                                                                 Order.id < last_id // 2).order_by(Order.id.desc())
                                     .limit(1))
        trade_no = await session.scalar(select(Payment.gateway_trade_no).where(
            Payment.order_id < last_id // 3, Payment.gateway_trade_no.is_not(None))
            .order_by(Payment.order_id.desc()).limit(1))
        payment_no = await session.scalar(select(Payment.payment_no).where(Payment.order_id == last_id // 3))
        now = dt.datetime.now(dt.UTC)
    assert email and phone and trade_no and payment_no
    typed_phone = f"+86 {phone[:3]} {phone[3:7]} {phone[7:]}"
    print(f"orders: {last_id:,}; searched: {email.upper()!r}, {typed_phone!r}, trade {trade_no!r}")

    async def search(filters: OrderFilters, scope: Scope = PLATFORM) -> int:
        async with db.read_session() as session:
            return len(await search_orders(session=session, filters=filters, zone=zone, scope=scope))

    async def attach() -> int:
        async with db.transaction() as session:  # rolled back; no member row: its foreign key not checked
            await session.execute(text("PRAGMA defer_foreign_keys = ON" if db.is_sqlite
                                       else "SET LOCAL session_replication_role = replica"))
            attached = await attach_guest_orders(session=session, member_id=1, contact_kind="phone", contact=phone)
            await session.rollback()
        return attached

    start, end = now - 2 * DAY, now - DAY

    async def report(name: str, scope: Scope = PLATFORM) -> object:
        async with db.read_session() as session:
            if name == "sales_totals":
                return len(await reports.sales_totals(session=session, start=start, end=end, scope=scope))
            if name == "paid_buckets":
                return len(await reports.paid_buckets(session=session, start=start, end=end, currency="CNY",
                                                      scope=scope))
            if name == "sales_by_sku":
                return len(await reports.sales_by_sku(session=session, start=start, end=end, currency="CNY",
                                                      scope=scope))
            return await reports.placed_orders(session=session, start=start, end=end, scope=scope)

    async def claim() -> object:
        found = await reconciliation.query_open_payments(db=db, gateways=NoGateways(),  # type: ignore[arg-type]
                                                         window=dt.timedelta(hours=24))
        async with db.transaction() as session:  # not claimed: every run finds the same due payments
            await session.execute(text("UPDATE payments_payment SET next_query_at = NULL, query_count = 0, "
                                       "last_queried_at = NULL WHERE next_query_at IS NOT NULL"))
        return found.queried

    async def day_read() -> int:
        # reconcile_day's read (its gateway calls are not timed): yesterday's payments with their orders' numbers.
        async with db.read_session() as session:
            rows = (await session.execute(
                select(Payment, Order.order_no).join(Order, Order.id == Payment.order_id)
                .where(Payment.created_at >= start, Payment.created_at < end).order_by(Payment.id))).all()
        return len(rows)

    cases: list[tuple[str, Callable[[], Awaitable[object]]]] = [
        ("search: whole e-mail, other case", lambda: search(OrderFilters(contact=email.upper()))),
        ("search: whole phone, typed +86 and spaces", lambda: search(OrderFilters(contact=typed_phone))),
        ("search: whole e-mail, one merchant", lambda: search(OrderFilters(contact=email), Scope(1))),
        ("search: part of an e-mail", lambda: search(OrderFilters(contact=email.split("@")[0]))),
        ("search: gateway trade number", lambda: search(OrderFilters(number=trade_no))),
        ("search: payment number", lambda: search(OrderFilters(number=payment_no))),
        ("attach a member's guest orders", attach),
        *[(f"report: {name} (a day)", lambda name=name: report(name)) for name in
          ("sales_totals", "paid_buckets", "sales_by_sku", "placed_orders")],
        ("report: sales_totals (a day, one merchant)", lambda: report("sales_totals", Scope(3))),
        ("reconciliation: the trade queries' claim", claim),
        ("reconciliation: a day's payments (read)", day_read),
    ]
    for name, call in cases:
        await call()  # warm: the first call pays for the table's pages coming into the cache
        median, found = await timed(repeat, call)
        print(f"  {name:48} {median:10.2f} ms   ({found})")


async def fill_and_measure(url: str, orders: int, repeat: int) -> None:
    db = Database(url)
    try:
        backend = make_url(url).get_backend_name()
        started = time.perf_counter()
        if backend == "sqlite":  # the foreign keys off: the referenced rows are not needed
            connection = sqlite3.connect(make_url(url).database)
            connection.execute("PRAGMA foreign_keys = OFF")
            with connection:
                for statement in fill_statements(backend, orders):
                    connection.execute(statement)
            connection.close()
        else:
            async with db.transaction() as session:
                for statement in fill_statements(backend, orders):
                    await session.execute(text(statement))
        print(f"filled {orders:,} orders in {time.perf_counter() - started:.1f} s: {url}")
        await measure(db, repeat)
    finally:
        await db.dispose()


async def measure_again(url: str, repeat: int) -> None:
    db = Database(url)
    try:
        await measure(db, repeat)
    finally:
        await db.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pg", action="store_true")
    parser.add_argument("--database-url")
    parser.add_argument("--reuse", help="a filled database's URL: time only")
    parser.add_argument("--orders", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    if args.reuse:
        asyncio.run(measure_again(args.reuse, args.repeat))
        return
    with FreshDatabase(resolve_database_url(args.pg, args.database_url), keep=args.keep) as fresh:
        upgrade(fresh.url)
        asyncio.run(fill_and_measure(fresh.url, args.orders, args.repeat))


if __name__ == "__main__":
    logging.getLogger("quanyi.payments.reconciliation").setLevel(logging.ERROR)  # the unreachable gateways
    main()
