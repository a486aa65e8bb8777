"""payments: at most one open payment of an order at a gateway for an amount (a unique partial index), so that two
starts of one order's payment racing on separate connections cannot both insert one.

Open payments that such races created before (same order, gateway and amount, all `created`) stay payable: each but
the oldest (the one start payment has been answering since) is marked `raced_with` the oldest, outside the index.

Revision ID: 5b0c3f1e9a27
Revises: 6059a65b775e
Create Date: 2026-12-05 08:55:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '5b0c3f1e9a27'
down_revision: str | None = '6059a65b775e'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_OPEN = "status = 'created' AND raced_with IS NULL"


def upgrade() -> None:
    with op.batch_alter_table('payments_payment', schema=None) as batch_op:
        batch_op.add_column(sa.Column('raced_with', sa.String(length=32), nullable=True))
    op.execute("""
        UPDATE payments_payment SET raced_with = (
            SELECT first.payment_no FROM payments_payment AS first
            WHERE first.order_id = payments_payment.order_id AND first.gateway = payments_payment.gateway
              AND first.amount_cents = payments_payment.amount_cents AND first.status = 'created'
            ORDER BY first.id LIMIT 1)
        WHERE status = 'created' AND EXISTS (
            SELECT 1 FROM payments_payment AS earlier
            WHERE earlier.order_id = payments_payment.order_id AND earlier.gateway = payments_payment.gateway
              AND earlier.amount_cents = payments_payment.amount_cents AND earlier.status = 'created'
              AND earlier.id < payments_payment.id)
    """)
    op.create_index('uq_payments_payment_open', 'payments_payment', ['order_id', 'gateway', 'amount_cents'],
                    unique=True, postgresql_where=sa.text(_OPEN), sqlite_where=sa.text(_OPEN))


def downgrade() -> None:
    op.drop_index('uq_payments_payment_open', table_name='payments_payment',
                  postgresql_where=sa.text(_OPEN), sqlite_where=sa.text(_OPEN))
    with op.batch_alter_table('payments_payment', schema=None) as batch_op:
        batch_op.drop_column('raced_with')
