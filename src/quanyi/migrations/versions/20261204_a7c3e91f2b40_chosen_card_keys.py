"""自选卡密: SKUs whose buyers pick a labelled card key for a surcharge; the key an order picked

Revision ID: a7c3e91f2b40
Revises: 2dea6cea7cd9
Create Date: 2026-12-04 16:50:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'a7c3e91f2b40'
down_revision: str | None = '2dea6cea7cd9'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('catalog_sku', schema=None) as batch_op:
        batch_op.add_column(sa.Column('pick_surcharge_cents', sa.BigInteger(), nullable=True))
        batch_op.create_check_constraint('pick_surcharge_not_negative',
                                         'pick_surcharge_cents IS NULL OR pick_surcharge_cents >= 0')
    with op.batch_alter_table('inventory_card_key', schema=None) as batch_op:
        batch_op.add_column(sa.Column('public_label', sa.String(length=100), nullable=True))
    with op.batch_alter_table('orders_order', schema=None) as batch_op:
        batch_op.add_column(sa.Column('picked_card_key_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'),
                                      nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('orders_order', schema=None) as batch_op:
        batch_op.drop_column('picked_card_key_id')
    with op.batch_alter_table('inventory_card_key', schema=None) as batch_op:
        batch_op.drop_column('public_label')
    with op.batch_alter_table('catalog_sku', schema=None) as batch_op:
        batch_op.drop_constraint('pick_surcharge_not_negative', type_='check')
        batch_op.drop_column('pick_surcharge_cents')
