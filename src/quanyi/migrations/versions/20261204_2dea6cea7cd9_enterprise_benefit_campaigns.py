"""enterprise benefit campaigns

Revision ID: 2dea6cea7cd9
Revises: f68e28586f3b
Create Date: 2026-12-04 16:43:22.212708
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '2dea6cea7cd9'
down_revision: str | None = 'f68e28586f3b'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('enterprises_campaign',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('campaign_no', sa.String(length=24), nullable=False),
    sa.Column('enterprise_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('name_en', sa.String(length=200), nullable=False),
    sa.Column('greeting', sa.String(length=500), nullable=False),
    sa.Column('budget_per_employee_cents', sa.BigInteger(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('starts_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('ends_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('allow_wecom', sa.Boolean(), nullable=False),
    sa.Column('allow_dingtalk', sa.Boolean(), nullable=False),
    sa.Column('funded_cents', sa.BigInteger(), nullable=False),
    sa.Column('returned_cents', sa.BigInteger(), nullable=False),
    sa.Column('created_by', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('activated_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('ended_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint('budget_per_employee_cents > 0', name=op.f('ck_enterprises_campaign_budget_positive')),
    sa.CheckConstraint('ends_at > starts_at', name=op.f('ck_enterprises_campaign_ends_after_start')),
    sa.ForeignKeyConstraint(['account_id'], ['ledger_customer_account.id'], name=op.f('fk_enterprises_campaign_account_id_ledger_customer_account')),
    sa.ForeignKeyConstraint(['enterprise_id'], ['enterprises_enterprise.id'], name=op.f('fk_enterprises_campaign_enterprise_id_enterprises_enterprise')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_enterprises_campaign')),
    sa.UniqueConstraint('account_id', name=op.f('uq_enterprises_campaign_account_id')),
    sa.UniqueConstraint('campaign_no', name=op.f('uq_enterprises_campaign_campaign_no'))
    )
    with op.batch_alter_table('enterprises_campaign', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_enterprises_campaign_ends_at'), ['ends_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_enterprises_campaign_enterprise_id'), ['enterprise_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_enterprises_campaign_status'), ['status'], unique=False)

    op.create_table('enterprises_campaign_employee',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('campaign_id', sa.Integer(), nullable=False),
    sa.Column('employee_no', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('phone', sa.String(length=32), nullable=False),
    sa.Column('email', sa.String(length=254), nullable=False),
    sa.Column('wecom_userid', sa.String(length=64), nullable=True),
    sa.Column('dingtalk_union_id', sa.String(length=64), nullable=True),
    sa.Column('claim_code_hash', sa.LargeBinary(length=32), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['campaign_id'], ['enterprises_campaign.id'], name=op.f('fk_enterprises_campaign_employee_campaign_id_enterprises_campaign')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_enterprises_campaign_employee')),
    sa.UniqueConstraint('campaign_id', 'dingtalk_union_id', name=op.f('uq_enterprises_campaign_employee_campaign_id_dingtalk_union_id')),
    sa.UniqueConstraint('campaign_id', 'employee_no', name=op.f('uq_enterprises_campaign_employee_campaign_id_employee_no')),
    sa.UniqueConstraint('campaign_id', 'wecom_userid', name=op.f('uq_enterprises_campaign_employee_campaign_id_wecom_userid')),
    sa.UniqueConstraint('claim_code_hash', name=op.f('uq_enterprises_campaign_employee_claim_code_hash'))
    )
    with op.batch_alter_table('enterprises_campaign_employee', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_enterprises_campaign_employee_campaign_id'), ['campaign_id'], unique=False)

    op.create_table('enterprises_campaign_option',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('campaign_id', sa.Integer(), nullable=False),
    sa.Column('sku_id', sa.Integer(), nullable=False),
    sa.Column('unit_price_cents', sa.BigInteger(), nullable=False),
    sa.CheckConstraint('unit_price_cents > 0', name=op.f('ck_enterprises_campaign_option_price_positive')),
    sa.ForeignKeyConstraint(['campaign_id'], ['enterprises_campaign.id'], name=op.f('fk_enterprises_campaign_option_campaign_id_enterprises_campaign')),
    sa.ForeignKeyConstraint(['sku_id'], ['catalog_sku.id'], name=op.f('fk_enterprises_campaign_option_sku_id_catalog_sku')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_enterprises_campaign_option')),
    sa.UniqueConstraint('campaign_id', 'sku_id', name=op.f('uq_enterprises_campaign_option_campaign_id_sku_id'))
    )
    with op.batch_alter_table('enterprises_campaign_option', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_enterprises_campaign_option_campaign_id'), ['campaign_id'], unique=False)

    op.create_table('enterprises_campaign_claim',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('campaign_id', sa.Integer(), nullable=False),
    sa.Column('employee_id', sa.Integer(), nullable=False),
    sa.Column('order_id', sa.Integer(), nullable=True),
    sa.Column('sku_id', sa.Integer(), nullable=False),
    sa.Column('quantity', sa.Integer(), nullable=False),
    sa.Column('amount_cents', sa.BigInteger(), nullable=False),
    sa.Column('via', sa.String(length=16), nullable=False),
    sa.Column('claimed_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['campaign_id'], ['enterprises_campaign.id'], name=op.f('fk_enterprises_campaign_claim_campaign_id_enterprises_campaign')),
    sa.ForeignKeyConstraint(['employee_id'], ['enterprises_campaign_employee.id'], name=op.f('fk_enterprises_campaign_claim_employee_id_enterprises_campaign_employee')),
    sa.ForeignKeyConstraint(['order_id'], ['orders_order.id'], name=op.f('fk_enterprises_campaign_claim_order_id_orders_order')),
    sa.ForeignKeyConstraint(['sku_id'], ['catalog_sku.id'], name=op.f('fk_enterprises_campaign_claim_sku_id_catalog_sku')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_enterprises_campaign_claim')),
    sa.UniqueConstraint('employee_id', name=op.f('uq_enterprises_campaign_claim_employee_id')),
    sa.UniqueConstraint('order_id', name=op.f('uq_enterprises_campaign_claim_order_id'))
    )
    with op.batch_alter_table('enterprises_campaign_claim', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_enterprises_campaign_claim_campaign_id'), ['campaign_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('enterprises_campaign_claim', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_enterprises_campaign_claim_campaign_id'))

    op.drop_table('enterprises_campaign_claim')
    with op.batch_alter_table('enterprises_campaign_option', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_enterprises_campaign_option_campaign_id'))

    op.drop_table('enterprises_campaign_option')
    with op.batch_alter_table('enterprises_campaign_employee', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_enterprises_campaign_employee_campaign_id'))

    op.drop_table('enterprises_campaign_employee')
    with op.batch_alter_table('enterprises_campaign', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_enterprises_campaign_status'))
        batch_op.drop_index(batch_op.f('ix_enterprises_campaign_enterprise_id'))
        batch_op.drop_index(batch_op.f('ix_enterprises_campaign_ends_at'))

    op.drop_table('enterprises_campaign')
