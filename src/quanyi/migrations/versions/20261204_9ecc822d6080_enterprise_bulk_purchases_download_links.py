"""enterprise bulk purchases download links

Revision ID: 9ecc822d6080
Revises: 3973a1848d32
Create Date: 2026-12-04 16:26:41.263682
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '9ecc822d6080'
down_revision: str | None = '3973a1848d32'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('enterprises_purchase',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('purchase_no', sa.String(length=32), nullable=False),
    sa.Column('enterprise_id', sa.Integer(), nullable=False),
    sa.Column('reference', sa.String(length=100), nullable=True),
    sa.Column('sku_id', sa.Integer(), nullable=False),
    sa.Column('quantity', sa.Integer(), nullable=False),
    sa.Column('unit_price_cents', sa.BigInteger(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('placed_quantity', sa.Integer(), nullable=False),
    sa.Column('error_code', sa.String(length=48), nullable=True),
    sa.Column('error', sa.String(length=500), nullable=True),
    sa.Column('lease_owner', sa.String(length=80), nullable=True),
    sa.Column('lease_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_by', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint('placed_quantity >= 0 AND placed_quantity <= quantity', name=op.f('ck_enterprises_purchase_placed_within_quantity')),
    sa.CheckConstraint('quantity >= 1', name=op.f('ck_enterprises_purchase_quantity_positive')),
    sa.ForeignKeyConstraint(['enterprise_id'], ['enterprises_enterprise.id'], name=op.f('fk_enterprises_purchase_enterprise_id_enterprises_enterprise')),
    sa.ForeignKeyConstraint(['sku_id'], ['catalog_sku.id'], name=op.f('fk_enterprises_purchase_sku_id_catalog_sku')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_enterprises_purchase')),
    sa.UniqueConstraint('enterprise_id', 'reference', name=op.f('uq_enterprises_purchase_enterprise_id_reference')),
    sa.UniqueConstraint('purchase_no', name=op.f('uq_enterprises_purchase_purchase_no'))
    )
    with op.batch_alter_table('enterprises_purchase', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_enterprises_purchase_enterprise_id'), ['enterprise_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_enterprises_purchase_status'), ['status'], unique=False)

    op.create_table('enterprises_download_link',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('purchase_id', sa.Integer(), nullable=False),
    sa.Column('token_hash', sa.LargeBinary(length=32), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('max_downloads', sa.Integer(), nullable=False),
    sa.Column('downloads', sa.Integer(), nullable=False),
    sa.Column('created_by', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint('downloads >= 0 AND downloads <= max_downloads', name=op.f('ck_enterprises_download_link_downloads_within_max')),
    sa.ForeignKeyConstraint(['purchase_id'], ['enterprises_purchase.id'], name=op.f('fk_enterprises_download_link_purchase_id_enterprises_purchase')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_enterprises_download_link')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_enterprises_download_link_token_hash'))
    )
    with op.batch_alter_table('enterprises_download_link', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_enterprises_download_link_purchase_id'), ['purchase_id'], unique=False)

    op.create_table('enterprises_purchase_order',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('purchase_id', sa.Integer(), nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('order_id', sa.Integer(), nullable=False),
    sa.Column('quantity', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['order_id'], ['orders_order.id'], name=op.f('fk_enterprises_purchase_order_order_id_orders_order')),
    sa.ForeignKeyConstraint(['purchase_id'], ['enterprises_purchase.id'], name=op.f('fk_enterprises_purchase_order_purchase_id_enterprises_purchase')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_enterprises_purchase_order')),
    sa.UniqueConstraint('order_id', name=op.f('uq_enterprises_purchase_order_order_id')),
    sa.UniqueConstraint('purchase_id', 'seq', name=op.f('uq_enterprises_purchase_order_purchase_id_seq'))
    )
    op.create_table('enterprises_download_audit',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('purchase_id', sa.Integer(), nullable=False),
    sa.Column('link_id', sa.Integer(), nullable=True),
    sa.Column('actor', sa.String(length=64), nullable=False),
    sa.Column('outcome', sa.String(length=16), nullable=False),
    sa.Column('file_format', sa.String(length=8), nullable=False),
    sa.Column('ip', sa.String(length=64), nullable=False),
    sa.Column('user_agent', sa.String(length=512), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['link_id'], ['enterprises_download_link.id'], name=op.f('fk_enterprises_download_audit_link_id_enterprises_download_link')),
    sa.ForeignKeyConstraint(['purchase_id'], ['enterprises_purchase.id'], name=op.f('fk_enterprises_download_audit_purchase_id_enterprises_purchase')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_enterprises_download_audit'))
    )
    with op.batch_alter_table('enterprises_download_audit', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_enterprises_download_audit_purchase_id'), ['purchase_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('enterprises_download_audit', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_enterprises_download_audit_purchase_id'))

    op.drop_table('enterprises_download_audit')
    op.drop_table('enterprises_purchase_order')
    with op.batch_alter_table('enterprises_download_link', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_enterprises_download_link_purchase_id'))

    op.drop_table('enterprises_download_link')
    with op.batch_alter_table('enterprises_purchase', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_enterprises_purchase_status'))
        batch_op.drop_index(batch_op.f('ix_enterprises_purchase_enterprise_id'))

    op.drop_table('enterprises_purchase')
