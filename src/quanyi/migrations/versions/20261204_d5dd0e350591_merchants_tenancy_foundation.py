"""merchants: tenancy foundation (the platform's own store, merchant_id on every owned table)

Revision ID: d5dd0e350591
Revises: a7e2c4d9f013
Create Date: 2026-12-04 11:29:17.743605
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'd5dd0e350591'
down_revision: str | None = 'a7e2c4d9f013'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('merchants_merchant',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=32), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('self_operated', sa.Boolean(), nullable=False),
    sa.Column('commission_bps', sa.Integer(), nullable=False),
    sa.Column('hold_days', sa.Integer(), nullable=True),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('contact_name', sa.String(length=100), nullable=False),
    sa.Column('contact_email', sa.String(length=254), nullable=False),
    sa.Column('contact_phone', sa.String(length=32), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('commission_bps >= 0 AND commission_bps <= 10000', name=op.f('ck_merchants_merchant_commission_bps_range')),
    sa.CheckConstraint('hold_days IS NULL OR (hold_days >= 0 AND hold_days <= 365)', name=op.f('ck_merchants_merchant_hold_days_range')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_merchants_merchant')),
    sa.UniqueConstraint('code', name=op.f('uq_merchants_merchant_code'))
    )
    # The platform's own store (自营) is merchant 1: every existing row becomes its own (the columns below
    # default to 1), so a single-shop install keeps working unchanged. First row of a fresh table: id 1.
    merchant = sa.table('merchants_merchant', sa.column('code'), sa.column('name'), sa.column('status'),
                        sa.column('self_operated', sa.Boolean()), sa.column('commission_bps'), sa.column('description'),
                        sa.column('contact_name'), sa.column('contact_email'), sa.column('contact_phone'),
                        sa.column('created_at', sa.DateTime(timezone=True)),
                        sa.column('updated_at', sa.DateTime(timezone=True)))
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None) if op.get_bind().dialect.name == 'sqlite' else dt.datetime.now(dt.UTC)
    op.bulk_insert(merchant, [{'code': 'platform', 'name': '平台自营', 'status': 'active', 'self_operated': True,
                               'commission_bps': 0, 'description': '', 'contact_name': '', 'contact_email': '',
                               'contact_phone': '', 'created_at': now, 'updated_at': now}])
    assert op.get_bind().execute(sa.text("SELECT id FROM merchants_merchant WHERE code = 'platform'")).scalar() == 1
    with op.batch_alter_table('catalog_product', schema=None) as batch_op:
        batch_op.add_column(sa.Column('merchant_id', sa.Integer(), server_default='1', nullable=False))
        batch_op.create_index(batch_op.f('ix_catalog_product_merchant_id'), ['merchant_id'], unique=False)
        batch_op.create_unique_constraint(batch_op.f('uq_catalog_product_id_merchant_id'), ['id', 'merchant_id'])
        batch_op.create_foreign_key(batch_op.f('fk_catalog_product_merchant_id_merchants_merchant'), 'merchants_merchant', ['merchant_id'], ['id'])

    with op.batch_alter_table('catalog_sku', schema=None) as batch_op:
        batch_op.add_column(sa.Column('merchant_id', sa.Integer(), server_default='1', nullable=False))
        batch_op.create_index(batch_op.f('ix_catalog_sku_merchant_id'), ['merchant_id'], unique=False)
        batch_op.create_unique_constraint(batch_op.f('uq_catalog_sku_id_merchant_id'), ['id', 'merchant_id'])
        batch_op.drop_constraint(batch_op.f('fk_catalog_sku_product_id_catalog_product'), type_='foreignkey')
        batch_op.create_foreign_key(batch_op.f('fk_catalog_sku_merchant_id_merchants_merchant'), 'merchants_merchant', ['merchant_id'], ['id'])
        batch_op.create_foreign_key(batch_op.f('fk_catalog_sku_product_id_catalog_product'), 'catalog_product', ['product_id', 'merchant_id'], ['id', 'merchant_id'])

    with op.batch_alter_table('inventory_card_key', schema=None) as batch_op:
        batch_op.add_column(sa.Column('merchant_id', sa.Integer(), server_default='1', nullable=False))
        batch_op.drop_constraint(batch_op.f('fk_inventory_card_key_sku_id_catalog_sku'), type_='foreignkey')
        batch_op.create_foreign_key(batch_op.f('fk_inventory_card_key_sku_id_catalog_sku'), 'catalog_sku', ['sku_id', 'merchant_id'], ['id', 'merchant_id'])
        batch_op.create_foreign_key(batch_op.f('fk_inventory_card_key_merchant_id_merchants_merchant'), 'merchants_merchant', ['merchant_id'], ['id'])

    with op.batch_alter_table('inventory_import_batch', schema=None) as batch_op:
        batch_op.add_column(sa.Column('merchant_id', sa.Integer(), server_default='1', nullable=False))
        batch_op.create_index(batch_op.f('ix_inventory_import_batch_merchant_id'), ['merchant_id'], unique=False)
        batch_op.drop_constraint(batch_op.f('fk_inventory_import_batch_sku_id_catalog_sku'), type_='foreignkey')
        batch_op.create_foreign_key(batch_op.f('fk_inventory_import_batch_sku_id_catalog_sku'), 'catalog_sku', ['sku_id', 'merchant_id'], ['id', 'merchant_id'])
        batch_op.create_foreign_key(batch_op.f('fk_inventory_import_batch_merchant_id_merchants_merchant'), 'merchants_merchant', ['merchant_id'], ['id'])

    with op.batch_alter_table('inventory_leak_report', schema=None) as batch_op:
        batch_op.add_column(sa.Column('merchant_id', sa.Integer(), server_default='1', nullable=False))
        batch_op.create_index(batch_op.f('ix_inventory_leak_report_merchant_id'), ['merchant_id'], unique=False)
        batch_op.create_foreign_key(batch_op.f('fk_inventory_leak_report_merchant_id_merchants_merchant'), 'merchants_merchant', ['merchant_id'], ['id'])

    with op.batch_alter_table('notifications_outbox', schema=None) as batch_op:
        batch_op.add_column(sa.Column('merchant_id', sa.Integer(), server_default='1', nullable=False))
        batch_op.create_index(batch_op.f('ix_notifications_outbox_merchant_id'), ['merchant_id'], unique=False)
        batch_op.create_foreign_key(batch_op.f('fk_notifications_outbox_merchant_id_merchants_merchant'), 'merchants_merchant', ['merchant_id'], ['id'])

    with op.batch_alter_table('orders_order', schema=None) as batch_op:
        batch_op.add_column(sa.Column('merchant_id', sa.Integer(), server_default='1', nullable=False))
        batch_op.create_index('ix_orders_order_merchant_created', ['merchant_id', 'created_at'], unique=False)
        batch_op.drop_constraint(batch_op.f('fk_orders_order_sku_id_catalog_sku'), type_='foreignkey')
        batch_op.create_foreign_key(batch_op.f('fk_orders_order_sku_id_catalog_sku'), 'catalog_sku', ['sku_id', 'merchant_id'], ['id', 'merchant_id'])
        batch_op.create_foreign_key(batch_op.f('fk_orders_order_merchant_id_merchants_merchant'), 'merchants_merchant', ['merchant_id'], ['id'])

    with op.batch_alter_table('staff_user', schema=None) as batch_op:
        batch_op.add_column(sa.Column('merchant_id', sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f('ix_staff_user_merchant_id'), ['merchant_id'], unique=False)
        batch_op.create_foreign_key(batch_op.f('fk_staff_user_merchant_id_merchants_merchant'), 'merchants_merchant', ['merchant_id'], ['id'])

    with op.batch_alter_table('suppliers_supplier', schema=None) as batch_op:
        batch_op.add_column(sa.Column('merchant_id', sa.Integer(), server_default='1', nullable=False))
        batch_op.create_index(batch_op.f('ix_suppliers_supplier_merchant_id'), ['merchant_id'], unique=False)
        batch_op.create_foreign_key(batch_op.f('fk_suppliers_supplier_merchant_id_merchants_merchant'), 'merchants_merchant', ['merchant_id'], ['id'])



def downgrade() -> None:
    with op.batch_alter_table('suppliers_supplier', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_suppliers_supplier_merchant_id_merchants_merchant'), type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_suppliers_supplier_merchant_id'))
        batch_op.drop_column('merchant_id')

    with op.batch_alter_table('staff_user', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_staff_user_merchant_id_merchants_merchant'), type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_staff_user_merchant_id'))
        batch_op.drop_column('merchant_id')

    with op.batch_alter_table('orders_order', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_orders_order_merchant_id_merchants_merchant'), type_='foreignkey')
        batch_op.drop_constraint(batch_op.f('fk_orders_order_sku_id_catalog_sku'), type_='foreignkey')
        batch_op.create_foreign_key(batch_op.f('fk_orders_order_sku_id_catalog_sku'), 'catalog_sku', ['sku_id'], ['id'])
        batch_op.drop_index('ix_orders_order_merchant_created')
        batch_op.drop_column('merchant_id')

    with op.batch_alter_table('notifications_outbox', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_notifications_outbox_merchant_id_merchants_merchant'), type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_notifications_outbox_merchant_id'))
        batch_op.drop_column('merchant_id')

    with op.batch_alter_table('inventory_leak_report', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_inventory_leak_report_merchant_id_merchants_merchant'), type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_inventory_leak_report_merchant_id'))
        batch_op.drop_column('merchant_id')

    with op.batch_alter_table('inventory_import_batch', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_inventory_import_batch_merchant_id_merchants_merchant'), type_='foreignkey')
        batch_op.drop_constraint(batch_op.f('fk_inventory_import_batch_sku_id_catalog_sku'), type_='foreignkey')
        batch_op.create_foreign_key(batch_op.f('fk_inventory_import_batch_sku_id_catalog_sku'), 'catalog_sku', ['sku_id'], ['id'])
        batch_op.drop_index(batch_op.f('ix_inventory_import_batch_merchant_id'))
        batch_op.drop_column('merchant_id')

    with op.batch_alter_table('inventory_card_key', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_inventory_card_key_merchant_id_merchants_merchant'), type_='foreignkey')
        batch_op.drop_constraint(batch_op.f('fk_inventory_card_key_sku_id_catalog_sku'), type_='foreignkey')
        batch_op.create_foreign_key(batch_op.f('fk_inventory_card_key_sku_id_catalog_sku'), 'catalog_sku', ['sku_id'], ['id'])
        batch_op.drop_column('merchant_id')

    with op.batch_alter_table('catalog_sku', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_catalog_sku_product_id_catalog_product'), type_='foreignkey')
        batch_op.drop_constraint(batch_op.f('fk_catalog_sku_merchant_id_merchants_merchant'), type_='foreignkey')
        batch_op.create_foreign_key(batch_op.f('fk_catalog_sku_product_id_catalog_product'), 'catalog_product', ['product_id'], ['id'])
        batch_op.drop_constraint(batch_op.f('uq_catalog_sku_id_merchant_id'), type_='unique')
        batch_op.drop_index(batch_op.f('ix_catalog_sku_merchant_id'))
        batch_op.drop_column('merchant_id')

    with op.batch_alter_table('catalog_product', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_catalog_product_merchant_id_merchants_merchant'), type_='foreignkey')
        batch_op.drop_constraint(batch_op.f('uq_catalog_product_id_merchant_id'), type_='unique')
        batch_op.drop_index(batch_op.f('ix_catalog_product_merchant_id'))
        batch_op.drop_column('merchant_id')

    op.drop_table('merchants_merchant')
