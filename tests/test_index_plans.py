"""The queries that read the hot tables' trimmed indexes (docs/PERFORMANCE.md section 23) still use them on
PostgreSQL, on tables large enough that PostgreSQL would scan them whole otherwise, prepared once with parameters
as asyncpg does: the first execution's plan and the one PostgreSQL keeps from the sixth on. Each query is the
shape of the one in src/ named beside it; a query whose index went away plans a Seq Scan and fails here."""

from __future__ import annotations

import asyncio
import json
import re
import sqlite3

import asyncpg
import pytest
from sqlalchemy.engine import make_url

ROWS = 20_000

# Guest orders mostly: 5 % signed-in members, 2 % account customers; most delivered or cancelled.
_FILL = [
    "SET session_replication_role = replica",  # no foreign-key triggers: the referenced rows are not needed
    f"""INSERT INTO orders_order (order_no, status, sku_id, product_id, product_name, sku_name, sku_code,
            delivery_type, unit_price_cents, quantity, total_cents, currency, contact_kind, contact, locale,
            created_ip, created_at, updated_at, expires_at, member_id, customer_account_id, paid_at)
        SELECT 'Q' || lpad(i::text, 12, '0'),
               CASE WHEN i % 100 < 80 THEN 'delivered' WHEN i % 100 < 95 THEN 'cancelled'
                    WHEN i % 100 < 97 THEN 'pending_payment' WHEN i % 100 = 97 THEN 'paid'
                    WHEN i % 100 = 98 THEN 'under_review' ELSE 'refund_pending' END,
               1 + i % 20, 1, 'product', 'sku', 'SKU', 'card_key', 1000, 1, 1000, 'CNY', 'email',
               'buyer' || i || '@example.com', 'zh-CN', '10.0.0.1', now() - i * interval '1 minute',
               now() - i * interval '1 minute', now() - i * interval '1 minute' + interval '15 minutes',
               CASE WHEN i % 20 = 0 THEN 1 + i % 500 END, CASE WHEN i % 50 = 1 THEN 1 + i % 10 END,
               CASE WHEN i % 100 < 80 OR i % 100 >= 97 THEN now() - i * interval '1 minute' + interval '20 seconds' END
        FROM generate_series(1, {ROWS}) AS i""",
    f"""INSERT INTO inventory_card_key (sku_id, batch_id, status, order_id, fingerprint, key_id, ciphertext,
            created_at, leak_report_id)
        SELECT 1 + i % 20, 1 + i % 40, CASE WHEN i % 2 = 0 THEN 'sold' ELSE 'available' END,
               CASE WHEN i % 2 = 0 THEN i / 2 END, sha256(int4send(i)), 'k1', '\\x00'::bytea, now(),
               CASE WHEN i % 1000 = 0 THEN 1 + i % 3 END
        FROM generate_series(1, {2 * ROWS}) AS i""",
    f"""INSERT INTO ledger_posting (reference, kind, order_id, supplier_id, refund_no, memo, actor, created_at)
        SELECT 'ref:' || i, CASE WHEN i % 100 = 0 THEN 'refund' ELSE 'payment_received' END, 1 + i / 2,
               CASE WHEN i % 100 = 1 THEN 1 + i % 5 END, CASE WHEN i % 100 = 0 THEN 'R' || i END, '', 'system',
               now() - i * interval '30 seconds'
        FROM generate_series(1, {2 * ROWS}) AS i""",
    # Payments at four gateways, created with their orders; the unpaid ones (the cancelled orders') still `created`.
    f"""INSERT INTO payments_payment (payment_no, order_id, gateway, amount_cents, currency, status, gateway_trade_no,
            created_at, updated_at, next_query_at)
        SELECT 'P' || i, i, (ARRAY['alipay', 'wechat', 'sandbox', 'stripe'])[1 + i % 4], 1000, 'CNY',
               CASE WHEN i % 100 < 80 OR i % 100 >= 97 THEN 'succeeded' ELSE 'created' END,
               CASE WHEN i % 100 < 80 OR i % 100 >= 97 THEN '20261205220014' || lpad(i::text, 14, '0') END,
               now() - i * interval '1 minute', now(), CASE WHEN i % 100 = 90 THEN now() + interval '1 minute' END
        FROM generate_series(1, {ROWS}) AS i""",
    f"""INSERT INTO risk_order_signals (order_id, ip, device, contact, sku_id, quantity, amount_cents, at, paid,
            payer)
        SELECT i, '10.0.' || (i % 250) || '.' || (i % 7), 'd' || i, 'buyer' || i || '@example.com', 1, 1, 1000,
               i, i % 100 < 80, CASE WHEN i % 100 < 3 THEN 'payer' || (i % 30) END
        FROM generate_series(1, {ROWS}) AS i""",
    "SET session_replication_role = origin",
    "ANALYZE orders_order, inventory_card_key, ledger_posting, payments_payment, risk_order_signals",
]

# orders.search._paid_by_trade_no: the gateways that have payments, one probe of the unique index each.
_GATEWAYS_IN_USE = (
    "WITH RECURSIVE gateways_in_use(gateway) AS ("
    "SELECT (SELECT gateway FROM payments_payment ORDER BY gateway LIMIT 1) AS gateway UNION ALL "
    "SELECT (SELECT p.gateway FROM payments_payment p WHERE p.gateway > g.gateway ORDER BY p.gateway LIMIT 1) "
    "FROM gateways_in_use g WHERE g.gateway IS NOT NULL) ")

# Section 30: the staff's queries that read every order or payment before.
_SECTION_30 = [
    ("orders.search: a whole contact (typed any way, normalized)",
     "SELECT id FROM orders_order WHERE contact = $1 ORDER BY id DESC LIMIT 50", "('buyer77@example.com')",
     "ix_orders_order_contact"),
    ("orders.member_orders.attach_guest_orders (a member's sign-up)",
     "UPDATE orders_order SET updated_at = $1, member_id = $2 WHERE contact_kind = $3 AND contact = $4 "
     "AND member_id IS NULL AND customer_account_id IS NULL", "(now(), 7, 'email', 'buyer77@example.com')",
     "ix_orders_order_contact"),
    ("orders.search.paid_by_number: a gateway's trade number (under each gateway in use, on its unique index)",
     _GATEWAYS_IN_USE + "SELECT order_id FROM payments_payment WHERE payment_no = $1 UNION ALL SELECT (SELECT "
     "p.order_id FROM payments_payment p WHERE p.gateway = g.gateway AND p.gateway_trade_no = $2) "
     "FROM gateways_in_use g WHERE g.gateway IS NOT NULL",
     "('20261205220014000000000077', '20261205220014000000000077')",
     "uq_payments_payment_gateway_gateway_trade_no"),
    ("orders.search: the order number, or the orders paid_by_number found",
     "SELECT id FROM orders_order WHERE order_no = $1 OR id IN ($2, $3) ORDER BY id DESC LIMIT 50",
     "('261205ABCD1234', 77, 78)", "uq_orders_order_order_no"),
    *[(f"orders.reports.{name} (the orders paid in a period)",
       f"SELECT {columns} FROM orders_order WHERE paid_at >= $1 AND paid_at < $2 {more} GROUP BY {group}",
       f"(now() - interval '3 hours', now() - interval '1 hour'{extra})", "ix_orders_order_paid_at")
      for name, columns, more, group, extra in [
          ("sales_totals", "currency, count(*), coalesce(sum(total_cents), 0)", "", "currency", ""),
          ("sales_totals of a merchant", "currency, count(*), coalesce(sum(total_cents), 0)",
           "AND merchant_id + 0 = $3", "currency", ", 1"),
          ("sales_by_sku", "sku_id, max(sku_code), coalesce(sum(quantity), 0), coalesce(sum(total_cents), 0)",
           "AND currency = $3", "sku_id", ", 'CNY'")]],
    ("payments.reconciliation.query_open_payments (the trade queries' claim)",
     "SELECT p.id FROM payments_payment p JOIN orders_order o ON o.id = p.order_id WHERE p.status = $1 "
     "AND o.status IN ($2, $3) AND o.expires_at > $4 AND p.created_at >= $4 AND p.created_at <= $5 "
     "AND (p.next_query_at IS NULL OR p.next_query_at <= $6) ORDER BY p.id LIMIT 50 FOR UPDATE OF p SKIP LOCKED",
     # The window's share of this table's 14 days as 24 hours' of a year's orders: PostgreSQL rightly reads every
     # payment of a table where the window holds a large share of them.
     "('created', 'pending_payment', 'cancelled', now() - interval '2 hours', now() - interval '1 minute', now())",
     "ix_orders_order_status_expires_at"),
]

# (what in src/ asks it, the statement with its parameters as the shop sends them, the arguments, the index)
QUERIES = [
    ("orders.member_orders.list_member_orders",
     "SELECT id FROM orders_order WHERE member_id = $1 ORDER BY id DESC LIMIT 20", "(21)",
     "ix_orders_order_member_id"),
    ("orders.member_orders.count_member_orders",
     "SELECT count(*) FROM orders_order WHERE member_id = $1", "(21)", "ix_orders_order_member_id"),
    ("loyalty.points: a member's delivered orders",
     "SELECT count(*) FROM orders_order WHERE member_id = $1 AND delivered_at IS NOT NULL", "(21)",
     "ix_orders_order_member_id"),
    ("foreign key orders_order.member_id (a member deleted)",
     "SELECT 1 FROM ONLY orders_order x WHERE member_id = $1 FOR KEY SHARE OF x", "(21)",
     "ix_orders_order_member_id"),
    ("foreign key orders_order.customer_account_id (an account deleted)",
     "SELECT 1 FROM ONLY orders_order x WHERE customer_account_id = $1 FOR KEY SHARE OF x", "(2)",
     "ix_orders_order_customer_account_id"),
    ("orders.service.expire_due_orders (the sweeper)",
     "SELECT id FROM orders_order WHERE status = $1 AND expires_at <= $2 ORDER BY expires_at LIMIT 200 "
     "FOR UPDATE SKIP LOCKED", "('pending_payment', now())", "ix_orders_order_status_expires_at"),
    ("risk.review.count_held_orders",
     "SELECT count(*) FROM orders_order WHERE status = $1 AND merchant_id = $2", "('under_review', 1)",
     "ix_orders_order_status_expires_at"),
    ("orders.reports.status_counts (the dashboard)",
     "SELECT status, count(*) FROM orders_order WHERE status IN ($1, $2) GROUP BY status",
     "('paid', 'refund_pending')", "ix_orders_order_status_expires_at"),
    ("orders.manual.awaiting_manual_delivery",
     "SELECT id FROM orders_order WHERE status = $1 AND delivery_type = $2 AND merchant_id = $3 "
     "ORDER BY paid_at, id LIMIT 200", "('paid', 'manual', 1)", "ix_orders_order_status_expires_at"),
    ("inventory.service: an order's reserved / sold keys",
     "SELECT id FROM inventory_card_key WHERE order_id = $1 AND status = $2", "(77, 'sold')",
     "ix_inventory_card_key_order_id"),
    ("ledger.order_events: cost of the keys of delivered orders",
     "SELECT order_id, count(*) FROM inventory_card_key WHERE order_id = ANY($1::int[]) AND status = $2 "
     "GROUP BY order_id", "('{5,6,7}', 'sold')", "ix_inventory_card_key_order_id"),
    ("suppliers.service.promised_units: pending orders still holding keys",
     "SELECT o.id FROM orders_order o WHERE o.sku_id = $1 AND o.status = $2 AND NOT EXISTS ("
     "SELECT 1 FROM inventory_card_key k WHERE k.order_id = o.id AND k.status = $3)",
     "(3, 'pending_payment', 'reserved')", "ix_inventory_card_key_order_id"),
    ("foreign key inventory_card_key.leak_report_id (a leak report deleted)",
     "SELECT 1 FROM ONLY inventory_card_key x WHERE leak_report_id = $1 FOR KEY SHARE OF x", "(2)",
     "ix_inventory_card_key_leak_report_id"),
    ("ledger.order_events: a refund's postings",
     "SELECT id FROM ledger_posting WHERE refund_no = $1 AND kind = $2 ORDER BY id", "('R100', 'refund')",
     "ix_ledger_posting_refund_no"),
    ("foreign key ledger_posting.supplier_id (a supplier deleted)",
     "SELECT 1 FROM ONLY ledger_posting x WHERE supplier_id = $1 FOR KEY SHARE OF x", "(2)",
     "ix_ledger_posting_supplier_id"),
    ("ledger.reports: postings of a period",
     "SELECT id FROM ledger_posting WHERE created_at >= $1 AND created_at < $2 ORDER BY created_at, id LIMIT 101",
     "(now() - interval '1 hour', now())", "ix_ledger_posting_created_at"),
    ("risk.holdings.payer_held_units",
     "SELECT coalesce(sum(s.quantity), 0) FROM risk_order_signals s WHERE s.payer = $1", "('payer7')",
     "ix_risk_order_signals_payer"),
    *[(f"risk.engine.placed_orders_count (unpaid orders by {column}; section 24)",
       f"SELECT count(*) FROM risk_order_signals WHERE {column} = $1 AND at > $2 AND at <= $3", args,
       f"ix_risk_order_signals_{column}_at")
      for column, args in [("contact", "('buyer77@example.com', 10, 19000)"), ("ip", "('10.0.7.0', 10, 19000)"),
                           ("device", "('d77', 10, 19000)")]],
    # The orders paid in a window, counted from their rows (paid_risk_at, not indexed): the same index, walked from
    # the window's start less engine.PAID_COUNTED_WITHIN (section 28).
    *[(f"risk.engine.paid_orders_count (unpaid orders by {column}; section 28)",
       f"SELECT count(*) FROM risk_order_signals WHERE {column} = $1 AND at > $2 AND at <= $3 AND paid_risk_at > $4 "
       "AND paid_risk_at <= $3", args, f"ix_risk_order_signals_{column}_at")
      for column, args in [("contact", "('buyer77@example.com', 10, 19000, 3610)"),
                           ("ip", "('10.0.7.0', 10, 19000, 3610)"), ("device", "('d77', 10, 19000, 3610)")]],
    *_SECTION_30,
]


def _plan_nodes(plan: dict) -> list[dict]:
    return [plan, *(node for child in plan.get("Plans", []) for node in _plan_nodes(child))]


async def _plans(dsn: str) -> dict[tuple[str, str], dict]:
    """Each query prepared once and explained as PostgreSQL runs it: its first executions are planned for their
    values (custom), from the sixth on it keeps a generic plan unless that looks dearer (plan_cache_mode auto)."""
    connection = await asyncpg.connect(dsn)
    try:
        for statement in _FILL:
            await connection.execute(statement)
        plans = {}
        for number, (name, sql, args, _index) in enumerate(QUERIES):
            await connection.execute(f"PREPARE q{number} AS {sql}")
            for execution in range(1, 8):
                found = await connection.fetchval(f"EXPLAIN (FORMAT JSON) EXECUTE q{number}{args}")
                if execution in (1, 7):
                    plans[(name, "first" if execution == 1 else "kept")] = json.loads(found)[0]["Plan"]
        return plans
    finally:
        await connection.close()


# SQLite: an equality on the column uses the partial index (its rule: `col = ?` implies `col IS NOT NULL`).
SQLITE_QUERIES = [
    *[(f"SELECT id FROM {table} WHERE {column} = ?", f"ix_{table}_{column}")
      for table, column in [("orders_order", "member_id"), ("orders_order", "customer_account_id"),
                            ("inventory_card_key", "order_id"), ("inventory_card_key", "leak_report_id"),
                            ("ledger_posting", "refund_no"), ("ledger_posting", "supplier_id"),
                            ("payments_payment", "next_query_at")]],
    ("SELECT order_id FROM risk_order_signals WHERE payer = ?", "ix_risk_order_signals_payer"),
    *[(f"SELECT count(*) FROM risk_order_signals WHERE {column} = ? AND at > ? AND at <= ?",
       f"ix_risk_order_signals_{column}_at") for column in ("contact", "ip", "device")],
    *[(f"SELECT count(*) FROM risk_order_signals WHERE {column} = ? AND at > ? AND at <= ? AND paid_risk_at > ? "
       "AND paid_risk_at <= ?", f"ix_risk_order_signals_{column}_at") for column in ("contact", "ip", "device")],
    ("SELECT id FROM orders_order WHERE status = ? AND expires_at <= ? ORDER BY expires_at LIMIT 200",
     "ix_orders_order_status_expires_at"),
    # Section 30: the same statements as on PostgreSQL (`?` for `$n`), on SQLite's names of the unique indexes.
    *[(sql, {"uq_payments_payment_gateway_gateway_trade_no": "sqlite_autoindex_payments_payment_1",
             "uq_orders_order_order_no": "sqlite_autoindex_orders_order_1"}.get(index, index))
      for name, sql, _args, index in QUERIES[QUERIES.index(_SECTION_30[0]):]],
]


def test_partial_indexes_serve_equalities_on_sqlite(backend, database_url):
    if backend != "sqlite":
        pytest.skip("SQLite's planner")
    connection = sqlite3.connect(make_url(database_url).database)
    try:
        plans = {}
        for statement, _index in SQLITE_QUERIES:
            sql = re.sub(r"\$\d+", "?", statement.replace(" FOR UPDATE OF p SKIP LOCKED", ""))
            plans[statement] = " ".join(row[3] for row in connection.execute(f"EXPLAIN QUERY PLAN {sql}",
                                                                             (1,) * sql.count("?")))
    finally:
        connection.close()
    assert {sql: plan for sql, plan in plans.items() if f"INDEX {dict(SQLITE_QUERIES)[sql]} " not in plan} == {}


def test_audited_queries_use_their_indexes_on_a_large_shop(backend, database_url):
    if backend != "postgresql":
        pytest.skip("PostgreSQL's plans")
    dsn = make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)
    plans = asyncio.run(_plans(dsn))
    wrong = []
    for (name, mode), plan in plans.items():
        index = next(index for query, _sql, _args, index in QUERIES if query == name)
        nodes = _plan_nodes(plan)
        used = {node.get("Index Name") for node in nodes}
        scanned = {node["Relation Name"] for node in nodes if node["Node Type"] == "Seq Scan"}
        if index not in used or scanned:
            wrong.append(f"{name} ({mode}): indexes {sorted(filter(None, used))}, whole tables {sorted(scanned)}")
    assert wrong == [], "\n".join(wrong)
