"""循环卡密: shared codes sold to many buyers with a sale counter and limit, and the units each order holds

Revision ID: b81d5c0e7a21
Revises: 1c2d9a197696
Create Date: 2026-12-04 17:15:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'b81d5c0e7a21'
down_revision: str | None = '1c2d9a197696'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('inventory_shared_code',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('sku_id', sa.Integer(), nullable=False),
    sa.Column('merchant_id', sa.Integer(), server_default='1', nullable=False),
    sa.Column('card_key_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('sale_limit', sa.Integer(), nullable=False),
    sa.Column('sold_count', sa.Integer(), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_by', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('sold_count >= 0 AND sold_count <= sale_limit', name=op.f('ck_inventory_shared_code_sold_within_limit')),
    sa.CheckConstraint('sale_limit >= 1', name=op.f('ck_inventory_shared_code_sale_limit_positive')),
    sa.ForeignKeyConstraint(['card_key_id'], ['inventory_card_key.id'], name=op.f('fk_inventory_shared_code_card_key_id_inventory_card_key')),
    sa.ForeignKeyConstraint(['merchant_id'], ['merchants_merchant.id'], name=op.f('fk_inventory_shared_code_merchant_id_merchants_merchant')),
    sa.ForeignKeyConstraint(['sku_id', 'merchant_id'], ['catalog_sku.id', 'catalog_sku.merchant_id'], name=op.f('fk_inventory_shared_code_sku_id_catalog_sku')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_inventory_shared_code')),
    sa.UniqueConstraint('card_key_id', name=op.f('uq_inventory_shared_code_card_key_id'))
    )
    with op.batch_alter_table('inventory_shared_code', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_inventory_shared_code_sku_id'), ['sku_id'], unique=False)
    op.create_table('inventory_shared_code_use',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('shared_code_id', sa.Integer(), nullable=False),
    sa.Column('order_id', sa.Integer(), nullable=False),
    sa.Column('quantity', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('sold_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['order_id'], ['orders_order.id'], name=op.f('fk_inventory_shared_code_use_order_id_orders_order')),
    sa.ForeignKeyConstraint(['shared_code_id'], ['inventory_shared_code.id'], name=op.f('fk_inventory_shared_code_use_shared_code_id_inventory_shared_code')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_inventory_shared_code_use')),
    sa.UniqueConstraint('order_id', name=op.f('uq_inventory_shared_code_use_order_id'))
    )
    with op.batch_alter_table('inventory_shared_code_use', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_inventory_shared_code_use_shared_code_id'), ['shared_code_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('inventory_shared_code_use', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_inventory_shared_code_use_shared_code_id'))
    op.drop_table('inventory_shared_code_use')
    with op.batch_alter_table('inventory_shared_code', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_inventory_shared_code_sku_id'))
    op.drop_table('inventory_shared_code')
