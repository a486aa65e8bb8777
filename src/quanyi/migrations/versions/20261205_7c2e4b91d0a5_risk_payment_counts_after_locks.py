"""risk: PostgreSQL functions that count a payment's risk rules after the advisory locks of its payer, contact and
SKU (risk.payment_sql, risk.payment_stage.lock_counted), so that two notifications of one payer counting at once
count each other.

A statement's snapshot is taken when it starts, before any lock it takes; a VOLATILE function's queries each take a
fresh one under READ COMMITTED. So the notification's one statement (payments/express.py) counts inside these
functions, after their locks, and sees every payment that held a lock before it committed: no second statement.

- `risk_take_locks(keys)`: `pg_advisory_xact_lock` of each key's 64-bit hash, in ascending order (one fixed order:
  two callers never wait on each other crosswise); also called alone by the general way (a transaction).
- `risk_events_after_locks(locks, keys, since)`: the locks, then the counter events of `keys` after `since`.
- `risk_day_orders_after_locks(locks, since, wall_now, contact, sku_id, order_id)`: the locks, then the orders
  placed since `since` that count in a day's totals (paid, or still payable at `wall_now`), other than `order_id`:
  those of `contact` (by = 'contact') and those of `sku_id` (by = 'sku'), where given.

SQLite needs none of them: its one writer counts one payment at a time.

Revision ID: 7c2e4b91d0a5
Revises: c3a7e41d9b20
Create Date: 2026-12-05 16:10:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = '7c2e4b91d0a5'
down_revision: str | None = 'c3a7e41d9b20'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_FUNCTIONS = ("risk_day_orders_after_locks(text[], double precision, timestamptz, varchar, integer, integer)",
              "risk_events_after_locks(text[], text[], double precision)", "risk_take_locks(text[])")


def upgrade() -> None:
    if op.get_bind().dialect.name == 'sqlite':
        return
    op.execute("""
        CREATE FUNCTION risk_take_locks(lock_keys text[]) RETURNS void LANGUAGE plpgsql VOLATILE AS $$
        BEGIN
            PERFORM pg_advisory_xact_lock(h) FROM (
                SELECT DISTINCT hashtextextended(k, 0) AS h FROM unnest(lock_keys) AS k ORDER BY 1 OFFSET 0) AS ordered;
        END $$""")
    op.execute("""
        CREATE FUNCTION risk_events_after_locks(lock_keys text[], event_keys text[], since double precision)
        RETURNS TABLE (key varchar, member varchar, at double precision) LANGUAGE plpgsql VOLATILE AS $$
        BEGIN
            PERFORM risk_take_locks(lock_keys);
            RETURN QUERY SELECT e.key, e.member, e.at FROM risk_counter_event AS e
                WHERE e.key = ANY (event_keys) AND e.at > since;
        END $$""")
    op.execute("""
        CREATE FUNCTION risk_day_orders_after_locks(lock_keys text[], since double precision, wall_now timestamptz,
                                                    day_contact varchar, day_sku integer, own_order integer)
        RETURNS TABLE (by text, sku_id integer, quantity integer, amount_cents bigint)
        LANGUAGE plpgsql VOLATILE AS $$
        BEGIN
            PERFORM risk_take_locks(lock_keys);
            RETURN QUERY SELECT m.by, s.sku_id, s.quantity, s.amount_cents
                FROM (SELECT 'contact' AS by, c.order_id FROM risk_order_signals AS c
                      WHERE day_contact IS NOT NULL AND c.contact = day_contact AND c.at >= since
                      UNION ALL
                      SELECT 'sku', k.order_id FROM risk_order_signals AS k
                      WHERE day_sku IS NOT NULL AND k.sku_id = day_sku AND k.at >= since) AS m
                    JOIN risk_order_signals AS s ON s.order_id = m.order_id
                    JOIN orders_order AS o ON o.id = s.order_id
                WHERE s.order_id <> own_order
                    AND (s.paid IS true OR (o.status = 'pending_payment' AND o.expires_at > wall_now));
        END $$""")


def downgrade() -> None:
    if op.get_bind().dialect.name == 'sqlite':
        return
    for function in _FUNCTIONS:
        op.execute(f"DROP FUNCTION {function}")
