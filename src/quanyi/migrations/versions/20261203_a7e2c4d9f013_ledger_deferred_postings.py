"""ledger deferred postings: payments whose postings wait for the ledger worker

Revision ID: a7e2c4d9f013
Revises: 462e9e59d729
Create Date: 2026-12-03 12:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'a7e2c4d9f013'
down_revision: str | None = '462e9e59d729'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('ledger_deferred_posting',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('order_id', sa.Integer(), nullable=False),
    sa.Column('payment_id', sa.Integer(), nullable=False),
    sa.Column('order_status', sa.String(length=32), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['order_id'], ['orders_order.id'], name=op.f('fk_ledger_deferred_posting_order_id_orders_order')),
    sa.ForeignKeyConstraint(['payment_id'], ['payments_payment.id'], name=op.f('fk_ledger_deferred_posting_payment_id_payments_payment')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ledger_deferred_posting'))
    )
    op.create_index(op.f('ix_ledger_deferred_posting_order_id'), 'ledger_deferred_posting', ['order_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_ledger_deferred_posting_order_id'), table_name='ledger_deferred_posting')
    op.drop_table('ledger_deferred_posting')
