"""Distribution (分销): promoters, programme, attribution, bindings, commission withdrawals; level-2 commission rate

Revision ID: 529289339948
Revises: 24628ab2b167
Create Date: 2026-12-04 16:18:03.714160
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '529289339948'
down_revision: str | None = '24628ab2b167'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('promoters_program',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('auto_approve', sa.Boolean(), nullable=False),
    sa.Column('levels', sa.Integer(), nullable=False),
    sa.Column('attribution_days', sa.Integer(), nullable=False),
    sa.Column('hold_days', sa.Integer(), nullable=False),
    sa.Column('max_margin_share_bps', sa.Integer(), nullable=False),
    sa.Column('min_withdrawal_cents', sa.BigInteger(), nullable=False),
    sa.Column('updated_by', sa.String(length=64), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('attribution_days BETWEEN 1 AND 365', name=op.f('ck_promoters_program_attribution_days_range')),
    sa.CheckConstraint('hold_days BETWEEN 0 AND 365', name=op.f('ck_promoters_program_hold_days_range')),
    sa.CheckConstraint('levels IN (1, 2)', name=op.f('ck_promoters_program_levels_one_or_two')),
    sa.CheckConstraint('max_margin_share_bps BETWEEN 0 AND 10000', name=op.f('ck_promoters_program_margin_share_range')),
    sa.CheckConstraint('min_withdrawal_cents >= 1', name=op.f('ck_promoters_program_min_withdrawal_positive')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_promoters_program'))
    )
    op.create_table('promoters_promoter',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=32), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('contact', sa.String(length=254), nullable=False),
    sa.Column('member_id', sa.Integer(), nullable=True),
    sa.Column('parent_id', sa.Integer(), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('note', sa.String(length=500), nullable=False),
    sa.Column('created_by', sa.String(length=64), nullable=False),
    sa.Column('applied_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('reviewed_by', sa.String(length=64), nullable=True),
    sa.Column('reviewed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('review_reason', sa.String(length=500), nullable=True),
    sa.ForeignKeyConstraint(['parent_id'], ['promoters_promoter.id'], name=op.f('fk_promoters_promoter_parent_id_promoters_promoter')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_promoters_promoter')),
    sa.UniqueConstraint('code', name=op.f('uq_promoters_promoter_code')),
    sa.UniqueConstraint('member_id', name=op.f('uq_promoters_promoter_member_id'))
    )
    with op.batch_alter_table('promoters_promoter', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_promoters_promoter_contact'), ['contact'], unique=False)
        batch_op.create_index(batch_op.f('ix_promoters_promoter_parent_id'), ['parent_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_promoters_promoter_status'), ['status'], unique=False)

    op.create_table('promoters_binding',
    sa.Column('member_id', sa.Integer(), nullable=False),
    sa.Column('promoter_id', sa.Integer(), nullable=False),
    sa.Column('bound_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['promoter_id'], ['promoters_promoter.id'], name=op.f('fk_promoters_binding_promoter_id_promoters_promoter')),
    sa.PrimaryKeyConstraint('member_id', name=op.f('pk_promoters_binding'))
    )
    with op.batch_alter_table('promoters_binding', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_promoters_binding_promoter_id'), ['promoter_id'], unique=False)

    op.create_table('promoters_withdrawal',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('withdrawal_no', sa.String(length=20), nullable=False),
    sa.Column('promoter_id', sa.Integer(), nullable=False),
    sa.Column('request_key', sa.String(length=80), nullable=True),
    sa.Column('amount_cents', sa.BigInteger(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('payout_account', sa.String(length=200), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('requested_by', sa.String(length=64), nullable=False),
    sa.Column('requested_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('reviewed_by', sa.String(length=64), nullable=True),
    sa.Column('reviewed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('review_reason', sa.String(length=500), nullable=True),
    sa.Column('paid_by', sa.String(length=64), nullable=True),
    sa.Column('paid_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('payout_reference', sa.String(length=128), nullable=True),
    sa.CheckConstraint('amount_cents > 0', name=op.f('ck_promoters_withdrawal_amount_positive')),
    sa.ForeignKeyConstraint(['promoter_id'], ['promoters_promoter.id'], name=op.f('fk_promoters_withdrawal_promoter_id_promoters_promoter')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_promoters_withdrawal')),
    sa.UniqueConstraint('request_key', name=op.f('uq_promoters_withdrawal_request_key')),
    sa.UniqueConstraint('withdrawal_no', name=op.f('uq_promoters_withdrawal_withdrawal_no'))
    )
    with op.batch_alter_table('promoters_withdrawal', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_promoters_withdrawal_promoter_id'), ['promoter_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_promoters_withdrawal_status'), ['status'], unique=False)

    op.create_table('promoters_attribution',
    sa.Column('order_id', sa.Integer(), nullable=False),
    sa.Column('promoter_id', sa.Integer(), nullable=False),
    sa.Column('parent_id', sa.Integer(), nullable=True),
    sa.Column('source', sa.String(length=16), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['order_id'], ['orders_order.id'], name=op.f('fk_promoters_attribution_order_id_orders_order')),
    sa.ForeignKeyConstraint(['parent_id'], ['promoters_promoter.id'], name=op.f('fk_promoters_attribution_parent_id_promoters_promoter')),
    sa.ForeignKeyConstraint(['promoter_id'], ['promoters_promoter.id'], name=op.f('fk_promoters_attribution_promoter_id_promoters_promoter')),
    sa.PrimaryKeyConstraint('order_id', name=op.f('pk_promoters_attribution'))
    )
    with op.batch_alter_table('promoters_attribution', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_promoters_attribution_parent_id'), ['parent_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_promoters_attribution_promoter_id'), ['promoter_id'], unique=False)

    with op.batch_alter_table('ledger_profit_share_rule', schema=None) as batch_op:
        batch_op.add_column(sa.Column('distributor_l2_bps', sa.Integer(), server_default='0', nullable=False))
        batch_op.drop_constraint(batch_op.f('ck_ledger_profit_share_rule_bps_not_negative'), type_='check')
        batch_op.drop_constraint(batch_op.f('ck_ledger_profit_share_rule_bps_within_whole'), type_='check')
        batch_op.create_check_constraint(
            batch_op.f('ck_ledger_profit_share_rule_bps_not_negative'),
            'merchant_bps >= 0 AND distributor_bps >= 0 AND distributor_l2_bps >= 0')
        batch_op.create_check_constraint(
            batch_op.f('ck_ledger_profit_share_rule_bps_within_whole'),
            'merchant_bps + distributor_bps + distributor_l2_bps <= 10000')



def downgrade() -> None:
    with op.batch_alter_table('ledger_profit_share_rule', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('ck_ledger_profit_share_rule_bps_not_negative'), type_='check')
        batch_op.drop_constraint(batch_op.f('ck_ledger_profit_share_rule_bps_within_whole'), type_='check')
        batch_op.drop_column('distributor_l2_bps')
        batch_op.create_check_constraint(batch_op.f('ck_ledger_profit_share_rule_bps_not_negative'),
                                         'merchant_bps >= 0 AND distributor_bps >= 0')
        batch_op.create_check_constraint(batch_op.f('ck_ledger_profit_share_rule_bps_within_whole'),
                                         'merchant_bps + distributor_bps <= 10000')

    with op.batch_alter_table('promoters_attribution', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_promoters_attribution_promoter_id'))
        batch_op.drop_index(batch_op.f('ix_promoters_attribution_parent_id'))

    op.drop_table('promoters_attribution')
    with op.batch_alter_table('promoters_withdrawal', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_promoters_withdrawal_status'))
        batch_op.drop_index(batch_op.f('ix_promoters_withdrawal_promoter_id'))

    op.drop_table('promoters_withdrawal')
    with op.batch_alter_table('promoters_binding', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_promoters_binding_promoter_id'))

    op.drop_table('promoters_binding')
    with op.batch_alter_table('promoters_promoter', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_promoters_promoter_status'))
        batch_op.drop_index(batch_op.f('ix_promoters_promoter_parent_id'))
        batch_op.drop_index(batch_op.f('ix_promoters_promoter_contact'))

    op.drop_table('promoters_promoter')
    op.drop_table('promoters_program')
