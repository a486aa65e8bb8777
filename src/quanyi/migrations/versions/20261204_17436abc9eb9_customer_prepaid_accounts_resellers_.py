"""customer prepaid accounts, resellers open api

Revision ID: 17436abc9eb9
Revises: fc22568bbfb7
Create Date: 2026-12-04 11:34:52.564989
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '17436abc9eb9'
down_revision: str | None = 'fc22568bbfb7'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('ledger_customer_account',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('balance_cents', sa.BigInteger(), nullable=False),
    sa.Column('credit_limit_cents', sa.BigInteger(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('balance_cents >= -credit_limit_cents', name=op.f('ck_ledger_customer_account_balance_within_credit')),
    sa.CheckConstraint('credit_limit_cents >= 0', name=op.f('ck_ledger_customer_account_credit_limit_not_negative')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ledger_customer_account')),
    sa.UniqueConstraint('code', name=op.f('uq_ledger_customer_account_code'))
    )
    op.create_table('resellers_reseller',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=48), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('contact_email', sa.String(length=254), nullable=False),
    sa.Column('app_id', sa.String(length=64), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('rate_limit_per_minute', sa.Integer(), nullable=False),
    sa.Column('callback_url', sa.String(length=500), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('rate_limit_per_minute >= 0', name=op.f('ck_resellers_reseller_rate_limit_not_negative')),
    sa.ForeignKeyConstraint(['account_id'], ['ledger_customer_account.id'], name=op.f('fk_resellers_reseller_account_id_ledger_customer_account')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_resellers_reseller')),
    sa.UniqueConstraint('account_id', name=op.f('uq_resellers_reseller_account_id')),
    sa.UniqueConstraint('app_id', name=op.f('uq_resellers_reseller_app_id')),
    sa.UniqueConstraint('code', name=op.f('uq_resellers_reseller_code'))
    )
    op.create_table('resellers_nonce',
    sa.Column('reseller_id', sa.Integer(), nullable=False),
    sa.Column('nonce', sa.String(length=64), nullable=False),
    sa.Column('seen_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['reseller_id'], ['resellers_reseller.id'], name=op.f('fk_resellers_nonce_reseller_id_resellers_reseller')),
    sa.PrimaryKeyConstraint('reseller_id', 'nonce', name=op.f('pk_resellers_nonce'))
    )
    with op.batch_alter_table('resellers_nonce', schema=None) as batch_op:
        batch_op.create_index('ix_resellers_nonce_seen_at', ['seen_at'], unique=False)

    op.create_table('resellers_secret',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('reseller_id', sa.Integer(), nullable=False),
    sa.Column('key_id', sa.String(length=32), nullable=False),
    sa.Column('ciphertext', sa.LargeBinary(), nullable=False),
    sa.Column('hint', sa.String(length=8), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_by', sa.String(length=64), nullable=False),
    sa.ForeignKeyConstraint(['reseller_id'], ['resellers_reseller.id'], name=op.f('fk_resellers_secret_reseller_id_resellers_reseller')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_resellers_secret'))
    )
    with op.batch_alter_table('resellers_secret', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_resellers_secret_reseller_id'), ['reseller_id'], unique=False)

    op.create_table('resellers_price',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('reseller_id', sa.Integer(), nullable=False),
    sa.Column('sku_id', sa.Integer(), nullable=False),
    sa.Column('price_cents', sa.BigInteger(), nullable=False),
    sa.Column('updated_by', sa.String(length=64), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('price_cents > 0', name=op.f('ck_resellers_price_price_positive')),
    sa.ForeignKeyConstraint(['reseller_id'], ['resellers_reseller.id'], name=op.f('fk_resellers_price_reseller_id_resellers_reseller')),
    sa.ForeignKeyConstraint(['sku_id'], ['catalog_sku.id'], name=op.f('fk_resellers_price_sku_id_catalog_sku')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_resellers_price')),
    sa.UniqueConstraint('reseller_id', 'sku_id', name=op.f('uq_resellers_price_reseller_id_sku_id'))
    )
    with op.batch_alter_table('resellers_price', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_resellers_price_reseller_id'), ['reseller_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_resellers_price_sku_id'), ['sku_id'], unique=False)

    op.create_table('ledger_customer_charge',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('payment_no', sa.String(length=32), nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('order_id', sa.Integer(), nullable=False),
    sa.Column('amount_cents', sa.BigInteger(), nullable=False),
    sa.Column('refunded_cents', sa.BigInteger(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('balance_after_cents', sa.BigInteger(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('amount_cents > 0', name=op.f('ck_ledger_customer_charge_amount_positive')),
    sa.CheckConstraint('refunded_cents >= 0 AND refunded_cents <= amount_cents', name=op.f('ck_ledger_customer_charge_refunded_within_amount')),
    sa.ForeignKeyConstraint(['account_id'], ['ledger_customer_account.id'], name=op.f('fk_ledger_customer_charge_account_id_ledger_customer_account')),
    sa.ForeignKeyConstraint(['order_id'], ['orders_order.id'], name=op.f('fk_ledger_customer_charge_order_id_orders_order')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ledger_customer_charge')),
    sa.UniqueConstraint('order_id', name=op.f('uq_ledger_customer_charge_order_id')),
    sa.UniqueConstraint('payment_no', name=op.f('uq_ledger_customer_charge_payment_no'))
    )
    with op.batch_alter_table('ledger_customer_charge', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_ledger_customer_charge_account_id'), ['account_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_ledger_customer_charge_created_at'), ['created_at'], unique=False)

    op.create_table('resellers_order',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('reseller_id', sa.Integer(), nullable=False),
    sa.Column('idempotency_key', sa.String(length=64), nullable=False),
    sa.Column('order_id', sa.Integer(), nullable=True),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('product_code', sa.String(length=64), nullable=False),
    sa.Column('quantity', sa.Integer(), nullable=False),
    sa.Column('account', sa.String(length=128), nullable=True),
    sa.Column('callback_url', sa.String(length=500), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['order_id'], ['orders_order.id'], name=op.f('fk_resellers_order_order_id_orders_order')),
    sa.ForeignKeyConstraint(['reseller_id'], ['resellers_reseller.id'], name=op.f('fk_resellers_order_reseller_id_resellers_reseller')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_resellers_order')),
    sa.UniqueConstraint('order_id', name=op.f('uq_resellers_order_order_id')),
    sa.UniqueConstraint('reseller_id', 'idempotency_key', name=op.f('uq_resellers_order_reseller_id_idempotency_key'))
    )
    with op.batch_alter_table('orders_order', schema=None) as batch_op:
        batch_op.add_column(sa.Column('customer_account_id', sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f('ix_orders_order_customer_account_id'), ['customer_account_id'], unique=False)
        batch_op.create_foreign_key(batch_op.f('fk_orders_order_customer_account_id_ledger_customer_account'), 'ledger_customer_account', ['customer_account_id'], ['id'])



def downgrade() -> None:
    with op.batch_alter_table('orders_order', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_orders_order_customer_account_id_ledger_customer_account'), type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_orders_order_customer_account_id'))
        batch_op.drop_column('customer_account_id')

    op.drop_table('resellers_order')
    with op.batch_alter_table('ledger_customer_charge', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_ledger_customer_charge_created_at'))
        batch_op.drop_index(batch_op.f('ix_ledger_customer_charge_account_id'))

    op.drop_table('ledger_customer_charge')
    with op.batch_alter_table('resellers_price', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_resellers_price_sku_id'))
        batch_op.drop_index(batch_op.f('ix_resellers_price_reseller_id'))

    op.drop_table('resellers_price')
    with op.batch_alter_table('resellers_secret', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_resellers_secret_reseller_id'))

    op.drop_table('resellers_secret')
    with op.batch_alter_table('resellers_nonce', schema=None) as batch_op:
        batch_op.drop_index('ix_resellers_nonce_seen_at')

    op.drop_table('resellers_nonce')
    op.drop_table('resellers_reseller')
    op.drop_table('ledger_customer_account')
