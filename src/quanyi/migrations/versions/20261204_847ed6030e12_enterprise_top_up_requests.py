"""enterprises: top-up requests from the portal (充值申请): asked for by an enterprise admin, credited once when
an operator confirms the bank transfer arrived, or refused with a reason.

Revision ID: 847ed6030e12
Revises: c4d1a9e2f3b7
Create Date: 2026-12-04 22:55:10.275200
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '847ed6030e12'
down_revision: str | None = 'c4d1a9e2f3b7'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('enterprises_top_up_request',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('request_no', sa.String(length=24), nullable=False),
    sa.Column('enterprise_id', sa.Integer(), nullable=False),
    sa.Column('request_key', sa.String(length=64), nullable=False),
    sa.Column('amount_cents', sa.BigInteger(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('method', sa.String(length=16), nullable=False),
    sa.Column('payer_reference', sa.String(length=64), nullable=False),
    sa.Column('note', sa.String(length=500), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('requested_by', sa.String(length=64), nullable=False),
    sa.Column('requested_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('decided_by', sa.String(length=64), nullable=True),
    sa.Column('decided_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('refusal_reason', sa.String(length=500), nullable=False),
    sa.CheckConstraint('amount_cents > 0', name=op.f('ck_enterprises_top_up_request_amount_positive')),
    sa.ForeignKeyConstraint(['enterprise_id'], ['enterprises_enterprise.id'], name=op.f('fk_enterprises_top_up_request_enterprise_id_enterprises_enterprise')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_enterprises_top_up_request')),
    sa.UniqueConstraint('enterprise_id', 'request_key', name=op.f('uq_enterprises_top_up_request_enterprise_id_request_key')),
    sa.UniqueConstraint('request_no', name=op.f('uq_enterprises_top_up_request_request_no'))
    )
    with op.batch_alter_table('enterprises_top_up_request', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_enterprises_top_up_request_enterprise_id'), ['enterprise_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_enterprises_top_up_request_status'), ['status'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('enterprises_top_up_request', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_enterprises_top_up_request_status'))
        batch_op.drop_index(batch_op.f('ix_enterprises_top_up_request_enterprise_id'))

    op.drop_table('enterprises_top_up_request')
