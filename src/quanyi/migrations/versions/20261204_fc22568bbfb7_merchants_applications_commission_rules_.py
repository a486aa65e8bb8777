"""merchants: applications, commission rules, withdrawals, statements

Revision ID: fc22568bbfb7
Revises: d5dd0e350591
Create Date: 2026-12-04 12:15:25.451559
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'fc22568bbfb7'
down_revision: str | None = 'd5dd0e350591'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('merchants_application',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('application_no', sa.String(length=20), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('code', sa.String(length=32), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('contact_name', sa.String(length=100), nullable=False),
    sa.Column('contact_email', sa.String(length=254), nullable=False),
    sa.Column('contact_phone', sa.String(length=32), nullable=False),
    sa.Column('owner_username', sa.String(length=64), nullable=False),
    sa.Column('owner_password_hash', sa.String(length=200), nullable=False),
    sa.Column('locale', sa.String(length=8), nullable=False),
    sa.Column('ip', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('reviewed_by', sa.String(length=64), nullable=True),
    sa.Column('reviewed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('review_reason', sa.String(length=500), nullable=True),
    sa.Column('merchant_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['merchant_id'], ['merchants_merchant.id'], name=op.f('fk_merchants_application_merchant_id_merchants_merchant')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_merchants_application')),
    sa.UniqueConstraint('application_no', name=op.f('uq_merchants_application_application_no'))
    )
    with op.batch_alter_table('merchants_application', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_merchants_application_status'), ['status'], unique=False)

    op.create_table('merchants_commission_rule',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('merchant_id', sa.Integer(), nullable=False),
    sa.Column('category_id', sa.Integer(), nullable=False),
    sa.Column('commission_bps', sa.Integer(), nullable=False),
    sa.Column('updated_by', sa.String(length=64), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('commission_bps >= 0 AND commission_bps <= 10000', name=op.f('ck_merchants_commission_rule_commission_bps_range')),
    sa.ForeignKeyConstraint(['category_id'], ['catalog_category.id'], name=op.f('fk_merchants_commission_rule_category_id_catalog_category')),
    sa.ForeignKeyConstraint(['merchant_id'], ['merchants_merchant.id'], name=op.f('fk_merchants_commission_rule_merchant_id_merchants_merchant')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_merchants_commission_rule')),
    sa.UniqueConstraint('merchant_id', 'category_id', name=op.f('uq_merchants_commission_rule_merchant_id_category_id'))
    )
    op.create_table('merchants_statement',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('statement_no', sa.String(length=40), nullable=False),
    sa.Column('merchant_id', sa.Integer(), server_default='1', nullable=False),
    sa.Column('cycle', sa.String(length=16), nullable=False),
    sa.Column('period_start', sa.Date(), nullable=False),
    sa.Column('period_end', sa.Date(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('opening_cents', sa.BigInteger(), nullable=False),
    sa.Column('gross_cents', sa.BigInteger(), nullable=False),
    sa.Column('fees_cents', sa.BigInteger(), nullable=False),
    sa.Column('net_sales_cents', sa.BigInteger(), nullable=False),
    sa.Column('refunds_cents', sa.BigInteger(), nullable=False),
    sa.Column('withdrawals_cents', sa.BigInteger(), nullable=False),
    sa.Column('closing_cents', sa.BigInteger(), nullable=False),
    sa.Column('orders', sa.Integer(), nullable=False),
    sa.Column('created_by', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['merchant_id'], ['merchants_merchant.id'], name=op.f('fk_merchants_statement_merchant_id_merchants_merchant')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_merchants_statement')),
    sa.UniqueConstraint('merchant_id', 'cycle', 'period_start', 'currency', name=op.f('uq_merchants_statement_merchant_id_cycle_period_start_currency')),
    sa.UniqueConstraint('statement_no', name=op.f('uq_merchants_statement_statement_no'))
    )
    with op.batch_alter_table('merchants_statement', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_merchants_statement_merchant_id'), ['merchant_id'], unique=False)

    op.create_table('merchants_withdrawal',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('withdrawal_no', sa.String(length=20), nullable=False),
    sa.Column('merchant_id', sa.Integer(), server_default='1', nullable=False),
    sa.Column('request_key', sa.String(length=80), nullable=True),
    sa.Column('amount_cents', sa.BigInteger(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('note', sa.String(length=500), nullable=False),
    sa.Column('requested_by', sa.String(length=64), nullable=False),
    sa.Column('requested_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('reviewed_by', sa.String(length=64), nullable=True),
    sa.Column('reviewed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('review_reason', sa.String(length=500), nullable=True),
    sa.Column('paid_by', sa.String(length=64), nullable=True),
    sa.Column('paid_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('payout_reference', sa.String(length=128), nullable=True),
    sa.CheckConstraint('amount_cents > 0', name=op.f('ck_merchants_withdrawal_amount_positive')),
    sa.ForeignKeyConstraint(['merchant_id'], ['merchants_merchant.id'], name=op.f('fk_merchants_withdrawal_merchant_id_merchants_merchant')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_merchants_withdrawal')),
    sa.UniqueConstraint('request_key', name=op.f('uq_merchants_withdrawal_request_key')),
    sa.UniqueConstraint('withdrawal_no', name=op.f('uq_merchants_withdrawal_withdrawal_no'))
    )
    with op.batch_alter_table('merchants_withdrawal', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_merchants_withdrawal_merchant_id'), ['merchant_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_merchants_withdrawal_status'), ['status'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('merchants_withdrawal', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_merchants_withdrawal_status'))
        batch_op.drop_index(batch_op.f('ix_merchants_withdrawal_merchant_id'))

    op.drop_table('merchants_withdrawal')
    with op.batch_alter_table('merchants_statement', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_merchants_statement_merchant_id'))

    op.drop_table('merchants_statement')
    op.drop_table('merchants_commission_rule')
    with op.batch_alter_table('merchants_application', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_merchants_application_status'))

    op.drop_table('merchants_application')
