"""initial schema: catalog, card-key stock, orders, payments, sandbox gateway, rate counters

Revision ID: 236494b0af91
Revises:
Create Date: 2026-11-25 04:26:46.987899
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '236494b0af91'
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('catalog_category',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('slug', sa.String(length=80), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('sort_order', sa.Integer(), nullable=False),
    sa.Column('is_active', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_catalog_category')),
    sa.UniqueConstraint('slug', name=op.f('uq_catalog_category_slug'))
    )
    op.create_table('payments_sandbox_trade',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('trade_no', sa.String(length=64), nullable=False),
    sa.Column('payment_no', sa.String(length=32), nullable=False),
    sa.Column('amount_cents', sa.BigInteger(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('subject', sa.String(length=300), nullable=False),
    sa.Column('notify_url', sa.String(length=1000), nullable=False),
    sa.Column('return_url', sa.String(length=1000), nullable=False),
    sa.Column('paid_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('notify_status', sa.String(length=16), nullable=False),
    sa.Column('notify_attempts', sa.Integer(), nullable=False),
    sa.Column('next_notify_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_error', sa.String(length=500), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_payments_sandbox_trade')),
    sa.UniqueConstraint('payment_no', name=op.f('uq_payments_sandbox_trade_payment_no')),
    sa.UniqueConstraint('trade_no', name=op.f('uq_payments_sandbox_trade_trade_no'))
    )
    with op.batch_alter_table('payments_sandbox_trade', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_payments_sandbox_trade_next_notify_at'), ['next_notify_at'], unique=False)

    op.create_table('risk_rate_counter',
    sa.Column('key', sa.String(length=200), nullable=False),
    sa.Column('window_start', sa.BigInteger(), nullable=False),
    sa.Column('count', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('key', 'window_start', name=op.f('pk_risk_rate_counter'))
    )
    op.create_table('catalog_product',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('category_id', sa.Integer(), nullable=False),
    sa.Column('slug', sa.String(length=80), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('redemption_guide', sa.Text(), nullable=False),
    sa.Column('cover_image_url', sa.String(length=500), nullable=True),
    sa.Column('sort_order', sa.Integer(), nullable=False),
    sa.Column('is_active', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['category_id'], ['catalog_category.id'], name=op.f('fk_catalog_product_category_id_catalog_category')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_catalog_product')),
    sa.UniqueConstraint('slug', name=op.f('uq_catalog_product_slug'))
    )
    with op.batch_alter_table('catalog_product', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_catalog_product_category_id'), ['category_id'], unique=False)

    op.create_table('catalog_sku',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('product_id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('face_value_cents', sa.BigInteger(), nullable=False),
    sa.Column('price_cents', sa.BigInteger(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('delivery_type', sa.Enum('card_key', 'direct_recharge', 'manual', name='deliverytype', native_enum=False, length=32), nullable=False),
    sa.Column('min_quantity', sa.Integer(), nullable=False),
    sa.Column('max_quantity', sa.Integer(), nullable=False),
    sa.Column('on_sale', sa.Boolean(), nullable=False),
    sa.Column('sort_order', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('face_value_cents >= 0', name=op.f('ck_catalog_sku_face_value_not_negative')),
    sa.CheckConstraint('min_quantity >= 1 AND max_quantity >= min_quantity', name=op.f('ck_catalog_sku_quantity_bounds')),
    sa.CheckConstraint('price_cents >= 0', name=op.f('ck_catalog_sku_price_not_negative')),
    sa.ForeignKeyConstraint(['product_id'], ['catalog_product.id'], name=op.f('fk_catalog_sku_product_id_catalog_product')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_catalog_sku')),
    sa.UniqueConstraint('code', name=op.f('uq_catalog_sku_code'))
    )
    with op.batch_alter_table('catalog_sku', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_catalog_sku_product_id'), ['product_id'], unique=False)

    op.create_table('inventory_import_batch',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('sku_id', sa.Integer(), nullable=False),
    sa.Column('source_name', sa.String(length=200), nullable=False),
    sa.Column('imported_by', sa.String(length=64), nullable=False),
    sa.Column('added_count', sa.Integer(), nullable=False),
    sa.Column('duplicate_count', sa.Integer(), nullable=False),
    sa.Column('invalid_count', sa.Integer(), nullable=False),
    sa.Column('voided_count', sa.Integer(), nullable=False),
    sa.Column('void_reason', sa.String(length=500), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('voided_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['sku_id'], ['catalog_sku.id'], name=op.f('fk_inventory_import_batch_sku_id_catalog_sku')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_inventory_import_batch'))
    )
    with op.batch_alter_table('inventory_import_batch', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_inventory_import_batch_sku_id'), ['sku_id'], unique=False)

    op.create_table('orders_order',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('order_no', sa.String(length=20), nullable=False),
    sa.Column('status', sa.Enum('pending_payment', 'paid', 'delivered', 'cancelled', 'refund_pending', name='orderstatus', native_enum=False, length=32), nullable=False),
    sa.Column('sku_id', sa.Integer(), nullable=False),
    sa.Column('product_id', sa.Integer(), nullable=False),
    sa.Column('product_name', sa.String(length=200), nullable=False),
    sa.Column('sku_name', sa.String(length=200), nullable=False),
    sa.Column('sku_code', sa.String(length=64), nullable=False),
    sa.Column('delivery_type', sa.String(length=32), nullable=False),
    sa.Column('unit_price_cents', sa.BigInteger(), nullable=False),
    sa.Column('quantity', sa.Integer(), nullable=False),
    sa.Column('total_cents', sa.BigInteger(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('contact_kind', sa.String(length=8), nullable=False),
    sa.Column('contact', sa.String(length=254), nullable=False),
    sa.Column('query_password_hash', sa.String(length=200), nullable=True),
    sa.Column('locale', sa.String(length=8), nullable=False),
    sa.Column('created_ip', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('paid_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('delivered_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('cancelled_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('status_reason', sa.String(length=500), nullable=True),
    sa.CheckConstraint('quantity >= 1', name=op.f('ck_orders_order_quantity_positive')),
    sa.CheckConstraint('total_cents = unit_price_cents * quantity', name=op.f('ck_orders_order_total_matches')),
    sa.ForeignKeyConstraint(['sku_id'], ['catalog_sku.id'], name=op.f('fk_orders_order_sku_id_catalog_sku')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_orders_order')),
    sa.UniqueConstraint('order_no', name=op.f('uq_orders_order_order_no'))
    )
    with op.batch_alter_table('orders_order', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_orders_order_expires_at'), ['expires_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_orders_order_sku_id'), ['sku_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_orders_order_status'), ['status'], unique=False)

    op.create_table('inventory_card_key',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('sku_id', sa.Integer(), nullable=False),
    sa.Column('batch_id', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('order_id', sa.Integer(), nullable=True),
    sa.Column('fingerprint', sa.LargeBinary(length=32), nullable=False),
    sa.Column('key_id', sa.String(length=32), nullable=False),
    sa.Column('ciphertext', sa.LargeBinary(), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('reserved_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('sold_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('voided_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['batch_id'], ['inventory_import_batch.id'], name=op.f('fk_inventory_card_key_batch_id_inventory_import_batch')),
    sa.ForeignKeyConstraint(['order_id'], ['orders_order.id'], name=op.f('fk_inventory_card_key_order_id_orders_order')),
    sa.ForeignKeyConstraint(['sku_id'], ['catalog_sku.id'], name=op.f('fk_inventory_card_key_sku_id_catalog_sku')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_inventory_card_key')),
    sa.UniqueConstraint('fingerprint', name=op.f('uq_inventory_card_key_fingerprint'))
    )
    with op.batch_alter_table('inventory_card_key', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_inventory_card_key_batch_id'), ['batch_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_inventory_card_key_order_id'), ['order_id'], unique=False)
        batch_op.create_index('ix_inventory_card_key_stock', ['sku_id', 'status', 'expires_at'], unique=False)

    op.create_table('orders_order_event',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('order_id', sa.Integer(), nullable=False),
    sa.Column('from_status', sa.String(length=32), nullable=True),
    sa.Column('to_status', sa.String(length=32), nullable=False),
    sa.Column('reason', sa.String(length=500), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['order_id'], ['orders_order.id'], name=op.f('fk_orders_order_event_order_id_orders_order')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_orders_order_event'))
    )
    with op.batch_alter_table('orders_order_event', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_orders_order_event_order_id'), ['order_id'], unique=False)

    op.create_table('payments_payment',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('payment_no', sa.String(length=32), nullable=False),
    sa.Column('order_id', sa.Integer(), nullable=False),
    sa.Column('gateway', sa.String(length=32), nullable=False),
    sa.Column('amount_cents', sa.BigInteger(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('gateway_trade_no', sa.String(length=64), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('paid_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['order_id'], ['orders_order.id'], name=op.f('fk_payments_payment_order_id_orders_order')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_payments_payment')),
    sa.UniqueConstraint('gateway', 'gateway_trade_no', name=op.f('uq_payments_payment_gateway_gateway_trade_no')),
    sa.UniqueConstraint('payment_no', name=op.f('uq_payments_payment_payment_no'))
    )
    with op.batch_alter_table('payments_payment', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_payments_payment_order_id'), ['order_id'], unique=False)

    op.create_table('inventory_key_reveal',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('card_key_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('order_id', sa.Integer(), nullable=False),
    sa.Column('revealed_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('channel', sa.String(length=16), nullable=False),
    sa.Column('ip', sa.String(length=64), nullable=False),
    sa.Column('user_agent', sa.String(length=512), nullable=False),
    sa.ForeignKeyConstraint(['card_key_id'], ['inventory_card_key.id'], name=op.f('fk_inventory_key_reveal_card_key_id_inventory_card_key')),
    sa.ForeignKeyConstraint(['order_id'], ['orders_order.id'], name=op.f('fk_inventory_key_reveal_order_id_orders_order')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_inventory_key_reveal'))
    )
    with op.batch_alter_table('inventory_key_reveal', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_inventory_key_reveal_card_key_id'), ['card_key_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_inventory_key_reveal_order_id'), ['order_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('inventory_key_reveal', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_inventory_key_reveal_order_id'))
        batch_op.drop_index(batch_op.f('ix_inventory_key_reveal_card_key_id'))

    op.drop_table('inventory_key_reveal')
    with op.batch_alter_table('payments_payment', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_payments_payment_order_id'))

    op.drop_table('payments_payment')
    with op.batch_alter_table('orders_order_event', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_orders_order_event_order_id'))

    op.drop_table('orders_order_event')
    with op.batch_alter_table('inventory_card_key', schema=None) as batch_op:
        batch_op.drop_index('ix_inventory_card_key_stock')
        batch_op.drop_index(batch_op.f('ix_inventory_card_key_order_id'))
        batch_op.drop_index(batch_op.f('ix_inventory_card_key_batch_id'))

    op.drop_table('inventory_card_key')
    with op.batch_alter_table('orders_order', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_orders_order_status'))
        batch_op.drop_index(batch_op.f('ix_orders_order_sku_id'))
        batch_op.drop_index(batch_op.f('ix_orders_order_expires_at'))

    op.drop_table('orders_order')
    with op.batch_alter_table('inventory_import_batch', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_inventory_import_batch_sku_id'))

    op.drop_table('inventory_import_batch')
    with op.batch_alter_table('catalog_sku', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_catalog_sku_product_id'))

    op.drop_table('catalog_sku')
    with op.batch_alter_table('catalog_product', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_catalog_product_category_id'))

    op.drop_table('catalog_product')
    op.drop_table('risk_rate_counter')
    with op.batch_alter_table('payments_sandbox_trade', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_payments_sandbox_trade_next_notify_at'))

    op.drop_table('payments_sandbox_trade')
    op.drop_table('catalog_category')
