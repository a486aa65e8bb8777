"""ledger accounts postings supplier charges profit share

Revision ID: d3b13fc07505
Revises: 55f5fcadf0d3
Create Date: 2026-12-02 04:19:13.864087
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'd3b13fc07505'
down_revision: str | None = '55f5fcadf0d3'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('ledger_account',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=128), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ledger_account')),
    sa.UniqueConstraint('code', name=op.f('uq_ledger_account_code'))
    )
    op.create_table('ledger_profit_share_rule',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('scope', sa.String(length=32), nullable=False),
    sa.Column('sku_id', sa.Integer(), nullable=True),
    sa.Column('merchant_code', sa.String(length=64), nullable=False),
    sa.Column('merchant_bps', sa.Integer(), nullable=False),
    sa.Column('distributor_bps', sa.Integer(), nullable=False),
    sa.Column('updated_by', sa.String(length=64), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('merchant_bps + distributor_bps <= 10000', name=op.f('ck_ledger_profit_share_rule_bps_within_whole')),
    sa.CheckConstraint('merchant_bps >= 0 AND distributor_bps >= 0', name=op.f('ck_ledger_profit_share_rule_bps_not_negative')),
    sa.ForeignKeyConstraint(['sku_id'], ['catalog_sku.id'], name=op.f('fk_ledger_profit_share_rule_sku_id_catalog_sku')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ledger_profit_share_rule')),
    sa.UniqueConstraint('scope', name=op.f('uq_ledger_profit_share_rule_scope'))
    )
    op.create_table('ledger_posting',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('reference', sa.String(length=160), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('order_id', sa.Integer(), nullable=True),
    sa.Column('supplier_id', sa.Integer(), nullable=True),
    sa.Column('payment_no', sa.String(length=32), nullable=True),
    sa.Column('refund_no', sa.String(length=32), nullable=True),
    sa.Column('attempt_key', sa.String(length=128), nullable=True),
    sa.Column('memo', sa.String(length=500), nullable=False),
    sa.Column('actor', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['order_id'], ['orders_order.id'], name=op.f('fk_ledger_posting_order_id_orders_order')),
    sa.ForeignKeyConstraint(['supplier_id'], ['suppliers_supplier.id'], name=op.f('fk_ledger_posting_supplier_id_suppliers_supplier')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ledger_posting')),
    sa.UniqueConstraint('reference', name=op.f('uq_ledger_posting_reference'))
    )
    with op.batch_alter_table('ledger_posting', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_ledger_posting_created_at'), ['created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_ledger_posting_kind'), ['kind'], unique=False)
        batch_op.create_index(batch_op.f('ix_ledger_posting_order_id'), ['order_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_ledger_posting_refund_no'), ['refund_no'], unique=False)
        batch_op.create_index(batch_op.f('ix_ledger_posting_supplier_id'), ['supplier_id'], unique=False)

    op.create_table('ledger_supplier_charge',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('reference', sa.String(length=128), nullable=False),
    sa.Column('supplier_id', sa.Integer(), nullable=False),
    sa.Column('order_id', sa.Integer(), nullable=True),
    sa.Column('amount_cents', sa.BigInteger(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('balance_after_cents', sa.BigInteger(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('released_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('release_reason', sa.String(length=500), nullable=True),
    sa.CheckConstraint('amount_cents > 0', name=op.f('ck_ledger_supplier_charge_amount_positive')),
    sa.ForeignKeyConstraint(['order_id'], ['orders_order.id'], name=op.f('fk_ledger_supplier_charge_order_id_orders_order')),
    sa.ForeignKeyConstraint(['supplier_id'], ['suppliers_supplier.id'], name=op.f('fk_ledger_supplier_charge_supplier_id_suppliers_supplier')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ledger_supplier_charge')),
    sa.UniqueConstraint('reference', name=op.f('uq_ledger_supplier_charge_reference'))
    )
    with op.batch_alter_table('ledger_supplier_charge', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_ledger_supplier_charge_created_at'), ['created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_ledger_supplier_charge_order_id'), ['order_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_ledger_supplier_charge_supplier_id'), ['supplier_id'], unique=False)

    op.create_table('ledger_entry',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('posting_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('amount_cents', sa.BigInteger(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.CheckConstraint('amount_cents <> 0', name=op.f('ck_ledger_entry_amount_not_zero')),
    sa.ForeignKeyConstraint(['account_id'], ['ledger_account.id'], name=op.f('fk_ledger_entry_account_id_ledger_account')),
    sa.ForeignKeyConstraint(['posting_id'], ['ledger_posting.id'], name=op.f('fk_ledger_entry_posting_id_ledger_posting')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ledger_entry'))
    )
    with op.batch_alter_table('ledger_entry', schema=None) as batch_op:
        batch_op.create_index('ix_ledger_entry_account_posting', ['account_id', 'posting_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_ledger_entry_posting_id'), ['posting_id'], unique=False)

    with op.batch_alter_table('inventory_import_batch', schema=None) as batch_op:
        batch_op.add_column(sa.Column('unit_cost_cents', sa.BigInteger(), nullable=True))

    with op.batch_alter_table('orders_order', schema=None) as batch_op:
        batch_op.add_column(sa.Column('distributor_code', sa.String(length=64), nullable=True))



def downgrade() -> None:
    with op.batch_alter_table('orders_order', schema=None) as batch_op:
        batch_op.drop_column('distributor_code')

    with op.batch_alter_table('inventory_import_batch', schema=None) as batch_op:
        batch_op.drop_column('unit_cost_cents')

    with op.batch_alter_table('ledger_entry', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_ledger_entry_posting_id'))
        batch_op.drop_index('ix_ledger_entry_account_posting')

    op.drop_table('ledger_entry')
    with op.batch_alter_table('ledger_supplier_charge', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_ledger_supplier_charge_supplier_id'))
        batch_op.drop_index(batch_op.f('ix_ledger_supplier_charge_order_id'))
        batch_op.drop_index(batch_op.f('ix_ledger_supplier_charge_created_at'))

    op.drop_table('ledger_supplier_charge')
    with op.batch_alter_table('ledger_posting', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_ledger_posting_supplier_id'))
        batch_op.drop_index(batch_op.f('ix_ledger_posting_refund_no'))
        batch_op.drop_index(batch_op.f('ix_ledger_posting_order_id'))
        batch_op.drop_index(batch_op.f('ix_ledger_posting_kind'))
        batch_op.drop_index(batch_op.f('ix_ledger_posting_created_at'))

    op.drop_table('ledger_posting')
    op.drop_table('ledger_profit_share_rule')
    op.drop_table('ledger_account')
