"""supplier sync state, sku price policy and price change log

Revision ID: b373a1e1ad1f
Revises: 55f5fcadf0d3
Create Date: 2026-12-02 04:19:02.227125
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'b373a1e1ad1f'
down_revision: str | None = '55f5fcadf0d3'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('suppliers_sync_state',
    sa.Column('supplier_id', sa.Integer(), nullable=False),
    sa.Column('claimed_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('claim_token', sa.String(length=32), nullable=True),
    sa.Column('last_pull_started_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_pull_ok_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_pull_failed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_pull_error', sa.String(length=500), nullable=True),
    sa.Column('last_catalog_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_push_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['supplier_id'], ['suppliers_supplier.id'], name=op.f('fk_suppliers_sync_state_supplier_id_suppliers_supplier')),
    sa.PrimaryKeyConstraint('supplier_id', name=op.f('pk_suppliers_sync_state'))
    )
    op.create_table('suppliers_price_change',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('sku_id', sa.Integer(), nullable=False),
    sa.Column('action', sa.Enum('repriced', 'price_restored', 'taken_off_sale', 'back_on_sale', name='pricechangeaction', native_enum=False, length=32), nullable=False),
    sa.Column('old_price_cents', sa.BigInteger(), nullable=False),
    sa.Column('new_price_cents', sa.BigInteger(), nullable=False),
    sa.Column('supplier_cost_cents', sa.BigInteger(), nullable=True),
    sa.Column('supplier_product_id', sa.Integer(), nullable=True),
    sa.Column('reason', sa.String(length=500), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['sku_id'], ['catalog_sku.id'], name=op.f('fk_suppliers_price_change_sku_id_catalog_sku')),
    sa.ForeignKeyConstraint(['supplier_product_id'], ['suppliers_product.id'], name=op.f('fk_suppliers_price_change_supplier_product_id_suppliers_product')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_suppliers_price_change'))
    )
    with op.batch_alter_table('suppliers_price_change', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_suppliers_price_change_created_at'), ['created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_suppliers_price_change_sku_id'), ['sku_id'], unique=False)

    op.create_table('suppliers_sku_pricing',
    sa.Column('sku_id', sa.Integer(), nullable=False),
    sa.Column('policy', sa.Enum('reprice', 'off_sale', name='pricepolicy', native_enum=False, length=32), nullable=False),
    sa.Column('margin_floor_cents', sa.BigInteger(), nullable=False),
    sa.Column('margin_floor_bps', sa.Integer(), nullable=False),
    sa.Column('markup_cents', sa.BigInteger(), nullable=False),
    sa.Column('markup_bps', sa.Integer(), nullable=False),
    sa.Column('max_price_cents', sa.BigInteger(), nullable=True),
    sa.Column('base_price_cents', sa.BigInteger(), nullable=True),
    sa.Column('auto_price_cents', sa.BigInteger(), nullable=True),
    sa.Column('off_sale_by_policy', sa.Boolean(), nullable=False),
    sa.Column('off_sale_reason', sa.String(length=500), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('margin_floor_bps >= 0 AND margin_floor_bps < 10000', name=op.f('ck_suppliers_sku_pricing_floor_bps_range')),
    sa.CheckConstraint('margin_floor_cents >= 0', name=op.f('ck_suppliers_sku_pricing_floor_cents_not_negative')),
    sa.CheckConstraint('markup_bps >= 0 AND markup_bps <= 100000', name=op.f('ck_suppliers_sku_pricing_markup_bps_range')),
    sa.CheckConstraint('markup_cents >= 0', name=op.f('ck_suppliers_sku_pricing_markup_cents_not_negative')),
    sa.ForeignKeyConstraint(['sku_id'], ['catalog_sku.id'], name=op.f('fk_suppliers_sku_pricing_sku_id_catalog_sku')),
    sa.PrimaryKeyConstraint('sku_id', name=op.f('pk_suppliers_sku_pricing'))
    )


def downgrade() -> None:
    op.drop_table('suppliers_sku_pricing')
    with op.batch_alter_table('suppliers_price_change', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_suppliers_price_change_sku_id'))
        batch_op.drop_index(batch_op.f('ix_suppliers_price_change_created_at'))

    op.drop_table('suppliers_price_change')
    op.drop_table('suppliers_sync_state')
