"""inventory import jobs

Revision ID: 24628ab2b167
Revises: a7c3e91f2b40
Create Date: 2026-12-04 16:16:08.565053
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '24628ab2b167'
down_revision: str | None = 'a7c3e91f2b40'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('inventory_import_job',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('sku_id', sa.Integer(), nullable=False),
    sa.Column('merchant_id', sa.Integer(), server_default='1', nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('source_name', sa.String(length=200), nullable=False),
    sa.Column('imported_by', sa.String(length=64), nullable=False),
    sa.Column('unit_cost_cents', sa.BigInteger(), nullable=True),
    sa.Column('batch_id', sa.Integer(), nullable=True),
    sa.Column('spool_name', sa.String(length=64), nullable=False),
    sa.Column('spool_key_id', sa.String(length=32), nullable=False),
    sa.Column('spool_key', sa.LargeBinary(), nullable=False),
    sa.Column('encoding', sa.String(length=16), nullable=False),
    sa.Column('bytes_total', sa.BigInteger(), nullable=False),
    sa.Column('bytes_done', sa.BigInteger(), nullable=False),
    sa.Column('lines_read', sa.Integer(), nullable=False),
    sa.Column('added', sa.Integer(), nullable=False),
    sa.Column('duplicates', sa.Integer(), nullable=False),
    sa.Column('invalid', sa.Integer(), nullable=False),
    sa.Column('content_seen', sa.Boolean(), nullable=False),
    sa.Column('error_code', sa.String(length=64), nullable=True),
    sa.Column('error', sa.String(length=500), nullable=True),
    sa.Column('lease_owner', sa.String(length=100), nullable=True),
    sa.Column('lease_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['batch_id'], ['inventory_import_batch.id'], name=op.f('fk_inventory_import_job_batch_id_inventory_import_batch')),
    sa.ForeignKeyConstraint(['merchant_id'], ['merchants_merchant.id'], name=op.f('fk_inventory_import_job_merchant_id_merchants_merchant')),
    sa.ForeignKeyConstraint(['sku_id', 'merchant_id'], ['catalog_sku.id', 'catalog_sku.merchant_id'], name=op.f('fk_inventory_import_job_sku_id_catalog_sku')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_inventory_import_job'))
    )
    with op.batch_alter_table('inventory_import_job', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_inventory_import_job_merchant_id'), ['merchant_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_inventory_import_job_sku_id'), ['sku_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_inventory_import_job_status'), ['status'], unique=False)

    op.create_table('inventory_import_problem',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('job_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('line', sa.Integer(), nullable=False),
    sa.Column('reason', sa.String(length=500), nullable=False),
    sa.ForeignKeyConstraint(['job_id'], ['inventory_import_job.id'], name=op.f('fk_inventory_import_problem_job_id_inventory_import_job')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_inventory_import_problem'))
    )
    with op.batch_alter_table('inventory_import_problem', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_inventory_import_problem_job_id'), ['job_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('inventory_import_problem', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_inventory_import_problem_job_id'))

    op.drop_table('inventory_import_problem')
    with op.batch_alter_table('inventory_import_job', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_inventory_import_job_status'))
        batch_op.drop_index(batch_op.f('ix_inventory_import_job_sku_id'))
        batch_op.drop_index(batch_op.f('ix_inventory_import_job_merchant_id'))

    op.drop_table('inventory_import_job')
