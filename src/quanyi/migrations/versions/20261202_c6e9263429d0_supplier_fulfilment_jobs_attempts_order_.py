"""supplier fulfilment jobs, attempts, order recharge account

Revision ID: c6e9263429d0
Revises: d3b13fc07505
Create Date: 2026-12-02 04:24:02.977656
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'c6e9263429d0'
down_revision: str | None = 'd3b13fc07505'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('suppliers_fulfilment_job',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('order_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.Enum('card_key', 'direct_recharge', name='productkind', native_enum=False, length=32), nullable=False),
    sa.Column('status', sa.Enum('open', 'done', name='jobstatus', native_enum=False, length=32), nullable=False),
    sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('locked_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('lease_owner', sa.String(length=64), nullable=True),
    sa.Column('outcome', sa.String(length=16), nullable=True),
    sa.Column('rounds', sa.Integer(), nullable=False),
    sa.Column('last_error', sa.String(length=500), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['order_id'], ['orders_order.id'], name=op.f('fk_suppliers_fulfilment_job_order_id_orders_order')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_suppliers_fulfilment_job')),
    sa.UniqueConstraint('order_id', name=op.f('uq_suppliers_fulfilment_job_order_id'))
    )
    with op.batch_alter_table('suppliers_fulfilment_job', schema=None) as batch_op:
        batch_op.create_index('ix_suppliers_fulfilment_job_due', ['status', 'next_attempt_at'], unique=False)

    op.create_table('suppliers_attempt',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('job_id', sa.Integer(), nullable=False),
    sa.Column('order_id', sa.Integer(), nullable=False),
    sa.Column('supplier_id', sa.Integer(), nullable=False),
    sa.Column('supplier_product_id', sa.Integer(), nullable=False),
    sa.Column('product_code', sa.String(length=128), nullable=False),
    sa.Column('kind', sa.Enum('card_key', 'direct_recharge', name='productkind', native_enum=False, length=32), nullable=False),
    sa.Column('idempotency_key', sa.String(length=64), nullable=False),
    sa.Column('state', sa.Enum('sending', 'unknown', 'submitted', 'processing', 'succeeded', 'failed', name='attemptstate', native_enum=False, length=32), nullable=False),
    sa.Column('quantity', sa.Integer(), nullable=False),
    sa.Column('max_unit_cost_cents', sa.BigInteger(), nullable=False),
    sa.Column('unit_cost_cents', sa.BigInteger(), nullable=True),
    sa.Column('charged_cents', sa.BigInteger(), nullable=False),
    sa.Column('supplier_order_no', sa.String(length=128), nullable=True),
    sa.Column('codes_received', sa.Integer(), nullable=False),
    sa.Column('codes_duplicate', sa.Integer(), nullable=False),
    sa.Column('batch_id', sa.Integer(), nullable=True),
    sa.Column('recharge_account', sa.String(length=128), nullable=True),
    sa.Column('error', sa.String(length=500), nullable=True),
    sa.Column('checks', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['batch_id'], ['inventory_import_batch.id'], name=op.f('fk_suppliers_attempt_batch_id_inventory_import_batch')),
    sa.ForeignKeyConstraint(['job_id'], ['suppliers_fulfilment_job.id'], name=op.f('fk_suppliers_attempt_job_id_suppliers_fulfilment_job')),
    sa.ForeignKeyConstraint(['order_id'], ['orders_order.id'], name=op.f('fk_suppliers_attempt_order_id_orders_order')),
    sa.ForeignKeyConstraint(['supplier_id'], ['suppliers_supplier.id'], name=op.f('fk_suppliers_attempt_supplier_id_suppliers_supplier')),
    sa.ForeignKeyConstraint(['supplier_product_id'], ['suppliers_product.id'], name=op.f('fk_suppliers_attempt_supplier_product_id_suppliers_product')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_suppliers_attempt')),
    sa.UniqueConstraint('idempotency_key', name=op.f('uq_suppliers_attempt_idempotency_key'))
    )
    with op.batch_alter_table('suppliers_attempt', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_suppliers_attempt_job_id'), ['job_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_suppliers_attempt_order_id'), ['order_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_suppliers_attempt_supplier_id'), ['supplier_id'], unique=False)

    with op.batch_alter_table('orders_order', schema=None) as batch_op:
        batch_op.add_column(sa.Column('recharge_account', sa.String(length=128), nullable=True))



def downgrade() -> None:
    with op.batch_alter_table('orders_order', schema=None) as batch_op:
        batch_op.drop_column('recharge_account')

    with op.batch_alter_table('suppliers_attempt', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_suppliers_attempt_supplier_id'))
        batch_op.drop_index(batch_op.f('ix_suppliers_attempt_order_id'))
        batch_op.drop_index(batch_op.f('ix_suppliers_attempt_job_id'))

    op.drop_table('suppliers_attempt')
    with op.batch_alter_table('suppliers_fulfilment_job', schema=None) as batch_op:
        batch_op.drop_index('ix_suppliers_fulfilment_job_due')

    op.drop_table('suppliers_fulfilment_job')
