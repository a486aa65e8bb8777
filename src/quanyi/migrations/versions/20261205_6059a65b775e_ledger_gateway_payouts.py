"""ledger: gateway settlements paid into the bank (渠道结算/打款), one row per (gateway, settlement number).

Revision ID: 6059a65b775e
Revises: 3efc94e50e1a
Create Date: 2026-12-05 08:35:58.909032
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '6059a65b775e'
down_revision: str | None = '3efc94e50e1a'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('ledger_gateway_payout',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('gateway', sa.String(length=32), nullable=False),
    sa.Column('settlement_no', sa.String(length=64), nullable=False),
    sa.Column('period_from', sa.Date(), nullable=False),
    sa.Column('period_to', sa.Date(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('net_cents', sa.BigInteger(), nullable=False),
    sa.Column('fee_cents', sa.BigInteger(), nullable=False),
    sa.Column('refunds_cents', sa.BigInteger(), nullable=False),
    sa.Column('note', sa.String(length=500), nullable=False),
    sa.Column('posting_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('recorded_by', sa.String(length=64), nullable=False),
    sa.Column('recorded_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('fee_cents >= 0 AND refunds_cents >= 0', name=op.f('ck_ledger_gateway_payout_fee_refunds_not_negative')),
    sa.CheckConstraint('net_cents > 0', name=op.f('ck_ledger_gateway_payout_net_positive')),
    sa.CheckConstraint('period_from <= period_to', name=op.f('ck_ledger_gateway_payout_period_ordered')),
    sa.ForeignKeyConstraint(['posting_id'], ['ledger_posting.id'], name=op.f('fk_ledger_gateway_payout_posting_id_ledger_posting')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ledger_gateway_payout')),
    sa.UniqueConstraint('gateway', 'settlement_no', name=op.f('uq_ledger_gateway_payout_gateway_settlement_no'))
    )
    with op.batch_alter_table('ledger_gateway_payout', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_ledger_gateway_payout_recorded_at'), ['recorded_at'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('ledger_gateway_payout', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_ledger_gateway_payout_recorded_at'))

    op.drop_table('ledger_gateway_payout')
