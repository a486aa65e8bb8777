"""suppliers, their catalogs and sku mappings

Revision ID: 55f5fcadf0d3
Revises: d4558ceb3d20
Create Date: 2026-12-02 04:13:39.614174
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '55f5fcadf0d3'
down_revision: str | None = 'd4558ceb3d20'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('suppliers_supplier',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('dialect', sa.Enum('quanyi', 'card_platform', 'async_recharge', name='supplierdialect', native_enum=False, length=32), nullable=False),
    sa.Column('base_url', sa.String(length=500), nullable=False),
    sa.Column('credentials_key_id', sa.String(length=32), nullable=False),
    sa.Column('credentials_ciphertext', sa.LargeBinary(), nullable=False),
    sa.Column('status', sa.Enum('active', 'paused', 'disabled', name='supplierstatus', native_enum=False, length=32), nullable=False),
    sa.Column('settlement_cycle', sa.Enum('per_order', 'daily', 'weekly', name='settlementcycle', native_enum=False, length=32), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('balance_cents', sa.BigInteger(), nullable=False),
    sa.Column('credit_limit_cents', sa.BigInteger(), nullable=False),
    sa.Column('timeout_ms', sa.Integer(), nullable=False),
    sa.Column('consecutive_failures', sa.Integer(), nullable=False),
    sa.Column('circuit_open_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_success_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_failure_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_error', sa.String(length=500), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('balance_cents >= -credit_limit_cents', name=op.f('ck_suppliers_supplier_balance_within_credit')),
    sa.CheckConstraint('credit_limit_cents >= 0', name=op.f('ck_suppliers_supplier_credit_limit_not_negative')),
    sa.CheckConstraint('timeout_ms > 0', name=op.f('ck_suppliers_supplier_timeout_positive')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_suppliers_supplier')),
    sa.UniqueConstraint('code', name=op.f('uq_suppliers_supplier_code'))
    )
    op.create_table('suppliers_product',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('supplier_id', sa.Integer(), nullable=False),
    sa.Column('product_code', sa.String(length=128), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('kind', sa.Enum('card_key', 'direct_recharge', name='productkind', native_enum=False, length=32), nullable=False),
    sa.Column('face_value_cents', sa.BigInteger(), nullable=False),
    sa.Column('cost_cents', sa.BigInteger(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('stock', sa.Integer(), nullable=True),
    sa.Column('available', sa.Boolean(), nullable=False),
    sa.Column('last_synced_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_sync_source', sa.String(length=16), nullable=False),
    sa.CheckConstraint('cost_cents >= 0', name=op.f('ck_suppliers_product_cost_not_negative')),
    sa.CheckConstraint('stock IS NULL OR stock >= 0', name=op.f('ck_suppliers_product_stock_not_negative')),
    sa.ForeignKeyConstraint(['supplier_id'], ['suppliers_supplier.id'], name=op.f('fk_suppliers_product_supplier_id_suppliers_supplier')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_suppliers_product')),
    sa.UniqueConstraint('supplier_id', 'product_code', name=op.f('uq_suppliers_product_supplier_id_product_code'))
    )
    with op.batch_alter_table('suppliers_product', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_suppliers_product_supplier_id'), ['supplier_id'], unique=False)

    op.create_table('suppliers_sku_mapping',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('sku_id', sa.Integer(), nullable=False),
    sa.Column('supplier_product_id', sa.Integer(), nullable=False),
    sa.Column('priority', sa.Integer(), nullable=False),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['sku_id'], ['catalog_sku.id'], name=op.f('fk_suppliers_sku_mapping_sku_id_catalog_sku')),
    sa.ForeignKeyConstraint(['supplier_product_id'], ['suppliers_product.id'], name=op.f('fk_suppliers_sku_mapping_supplier_product_id_suppliers_product')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_suppliers_sku_mapping')),
    sa.UniqueConstraint('sku_id', 'supplier_product_id', name=op.f('uq_suppliers_sku_mapping_sku_id_supplier_product_id'))
    )
    with op.batch_alter_table('suppliers_sku_mapping', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_suppliers_sku_mapping_sku_id'), ['sku_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_suppliers_sku_mapping_supplier_product_id'), ['supplier_product_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('suppliers_sku_mapping', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_suppliers_sku_mapping_supplier_product_id'))
        batch_op.drop_index(batch_op.f('ix_suppliers_sku_mapping_sku_id'))

    op.drop_table('suppliers_sku_mapping')
    with op.batch_alter_table('suppliers_product', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_suppliers_product_supplier_id'))

    op.drop_table('suppliers_product')
    op.drop_table('suppliers_supplier')
