"""hot tables: fewer index entries per purchase (docs/PERFORMANCE.md section 23).

Partial indexes (`WHERE col IS NOT NULL`) on nullable columns that a guest purchase leaves NULL; one
(status, expires_at) index of orders instead of two; no index on ledger_posting.kind (no query selects by it).

Revision ID: c3a7e41d9b20
Revises: 5b0c3f1e9a27
Create Date: 2026-12-05 16:10:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'c3a7e41d9b20'
down_revision: str | None = '5b0c3f1e9a27'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# (table, column): its full index becomes one of the rows where the column is set.
WHERE_SET = (
    ('orders_order', 'member_id'),
    ('orders_order', 'customer_account_id'),
    ('inventory_card_key', 'order_id'),
    ('inventory_card_key', 'leak_report_id'),
    ('payments_payment', 'next_query_at'),
    ('ledger_posting', 'refund_no'),
    ('ledger_posting', 'supplier_id'),
    ('risk_order_signals', 'payer'),
)


def _set(column: str) -> dict[str, sa.TextClause]:
    where = sa.text(f'{column} IS NOT NULL')
    return {'postgresql_where': where, 'sqlite_where': where}


def upgrade() -> None:
    for table, column in WHERE_SET:
        op.drop_index(f'ix_{table}_{column}', table_name=table)
        op.create_index(f'ix_{table}_{column}', table, [column], unique=False, **_set(column))
    op.create_index('ix_orders_order_status_expires_at', 'orders_order', ['status', 'expires_at'], unique=False)
    op.drop_index('ix_orders_order_status', table_name='orders_order')
    op.drop_index('ix_orders_order_expires_at', table_name='orders_order')
    op.drop_index('ix_ledger_posting_kind', table_name='ledger_posting')


def downgrade() -> None:
    op.create_index('ix_ledger_posting_kind', 'ledger_posting', ['kind'], unique=False)
    op.create_index('ix_orders_order_expires_at', 'orders_order', ['expires_at'], unique=False)
    op.create_index('ix_orders_order_status', 'orders_order', ['status'], unique=False)
    op.drop_index('ix_orders_order_status_expires_at', table_name='orders_order')
    for table, column in WHERE_SET:
        op.drop_index(f'ix_{table}_{column}', table_name=table)
        op.create_index(f'ix_{table}_{column}', table, [column], unique=False)
