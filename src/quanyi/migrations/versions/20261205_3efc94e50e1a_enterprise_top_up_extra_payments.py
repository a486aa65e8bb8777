"""enterprises: second payments of an online top-up already credited (to refund at the gateway; one row a
gateway trade).

Revision ID: 3efc94e50e1a
Revises: ff33741a6b45
Create Date: 2026-12-05 01:34:15.131709
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '3efc94e50e1a'
down_revision: str | None = 'ff33741a6b45'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('enterprises_top_up_extra_payment',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('request_id', sa.Integer(), nullable=False),
    sa.Column('gateway', sa.String(length=32), nullable=False),
    sa.Column('gateway_trade_no', sa.String(length=64), nullable=False),
    sa.Column('amount_cents', sa.BigInteger(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('seen_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('refunded_by', sa.String(length=64), nullable=True),
    sa.Column('refunded_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['request_id'], ['enterprises_top_up_request.id'], name=op.f('fk_enterprises_top_up_extra_payment_request_id_enterprises_top_up_request')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_enterprises_top_up_extra_payment')),
    sa.UniqueConstraint('gateway', 'gateway_trade_no', name=op.f('uq_enterprises_top_up_extra_payment_gateway_gateway_trade_no'))
    )
    with op.batch_alter_table('enterprises_top_up_extra_payment', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_enterprises_top_up_extra_payment_request_id'), ['request_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('enterprises_top_up_extra_payment', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_enterprises_top_up_extra_payment_request_id'))

    op.drop_table('enterprises_top_up_extra_payment')
