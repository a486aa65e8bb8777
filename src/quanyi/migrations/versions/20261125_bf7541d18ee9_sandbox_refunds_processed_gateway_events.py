"""sandbox refunds (the simulated gateway's side), processed gateway events (replay protection)

Revision ID: bf7541d18ee9
Revises: 236494b0af91
Create Date: 2026-11-25 22:16:32.204097
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'bf7541d18ee9'
down_revision: str | None = '236494b0af91'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('payments_gateway_event',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('gateway', sa.String(length=32), nullable=False),
    sa.Column('event_id', sa.String(length=128), nullable=False),
    sa.Column('payment_no', sa.String(length=32), nullable=True),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_payments_gateway_event')),
    sa.UniqueConstraint('gateway', 'event_id', name=op.f('uq_payments_gateway_event_gateway_event_id'))
    )
    op.create_table('payments_sandbox_refund',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('refund_no', sa.String(length=40), nullable=False),
    sa.Column('gateway_refund_no', sa.String(length=64), nullable=False),
    sa.Column('trade_id', sa.Integer(), nullable=False),
    sa.Column('amount_cents', sa.BigInteger(), nullable=False),
    sa.Column('reason', sa.String(length=200), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['trade_id'], ['payments_sandbox_trade.id'], name=op.f('fk_payments_sandbox_refund_trade_id_payments_sandbox_trade')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_payments_sandbox_refund')),
    sa.UniqueConstraint('gateway_refund_no', name=op.f('uq_payments_sandbox_refund_gateway_refund_no')),
    sa.UniqueConstraint('refund_no', name=op.f('uq_payments_sandbox_refund_refund_no'))
    )
    with op.batch_alter_table('payments_sandbox_refund', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_payments_sandbox_refund_trade_id'), ['trade_id'], unique=False)
    with op.batch_alter_table('payments_payment', schema=None) as batch_op:
        batch_op.add_column(sa.Column('gateway_session_id', sa.String(length=255), nullable=True))



def downgrade() -> None:
    with op.batch_alter_table('payments_payment', schema=None) as batch_op:
        batch_op.drop_column('gateway_session_id')
    with op.batch_alter_table('payments_sandbox_refund', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_payments_sandbox_refund_trade_id'))

    op.drop_table('payments_sandbox_refund')
    op.drop_table('payments_gateway_event')
