"""enterprise customers tier prices

Revision ID: 96d742441ed6
Revises: 17436abc9eb9
Create Date: 2026-12-04 16:16:28.748916
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '96d742441ed6'
down_revision: str | None = '17436abc9eb9'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('enterprises_enterprise',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=48), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('invoice_title', sa.String(length=200), nullable=False),
    sa.Column('tax_number', sa.String(length=20), nullable=False),
    sa.Column('invoice_address', sa.String(length=300), nullable=False),
    sa.Column('invoice_phone', sa.String(length=40), nullable=False),
    sa.Column('bank_name', sa.String(length=200), nullable=False),
    sa.Column('bank_account', sa.String(length=64), nullable=False),
    sa.Column('invoice_email', sa.String(length=254), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['ledger_customer_account.id'], name=op.f('fk_enterprises_enterprise_account_id_ledger_customer_account')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_enterprises_enterprise')),
    sa.UniqueConstraint('account_id', name=op.f('uq_enterprises_enterprise_account_id')),
    sa.UniqueConstraint('code', name=op.f('uq_enterprises_enterprise_code'))
    )
    op.create_table('enterprises_contact',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('enterprise_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('role', sa.String(length=32), nullable=False),
    sa.Column('email', sa.String(length=254), nullable=False),
    sa.Column('phone', sa.String(length=32), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['enterprise_id'], ['enterprises_enterprise.id'], name=op.f('fk_enterprises_contact_enterprise_id_enterprises_enterprise')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_enterprises_contact'))
    )
    with op.batch_alter_table('enterprises_contact', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_enterprises_contact_enterprise_id'), ['enterprise_id'], unique=False)

    op.create_table('enterprises_price_tier',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('enterprise_id', sa.Integer(), nullable=False),
    sa.Column('sku_id', sa.Integer(), nullable=False),
    sa.Column('min_quantity', sa.Integer(), nullable=False),
    sa.Column('unit_price_cents', sa.BigInteger(), nullable=False),
    sa.Column('updated_by', sa.String(length=64), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('min_quantity >= 1', name=op.f('ck_enterprises_price_tier_min_quantity_positive')),
    sa.CheckConstraint('unit_price_cents > 0', name=op.f('ck_enterprises_price_tier_price_positive')),
    sa.ForeignKeyConstraint(['enterprise_id'], ['enterprises_enterprise.id'], name=op.f('fk_enterprises_price_tier_enterprise_id_enterprises_enterprise')),
    sa.ForeignKeyConstraint(['sku_id'], ['catalog_sku.id'], name=op.f('fk_enterprises_price_tier_sku_id_catalog_sku')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_enterprises_price_tier')),
    sa.UniqueConstraint('enterprise_id', 'sku_id', 'min_quantity', name=op.f('uq_enterprises_price_tier_enterprise_id_sku_id_min_quantity'))
    )
    with op.batch_alter_table('enterprises_price_tier', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_enterprises_price_tier_enterprise_id'), ['enterprise_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_enterprises_price_tier_sku_id'), ['sku_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('enterprises_price_tier', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_enterprises_price_tier_sku_id'))
        batch_op.drop_index(batch_op.f('ix_enterprises_price_tier_enterprise_id'))

    op.drop_table('enterprises_price_tier')
    with op.batch_alter_table('enterprises_contact', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_enterprises_contact_enterprise_id'))

    op.drop_table('enterprises_contact')
    op.drop_table('enterprises_enterprise')
