"""Loyalty: points (programme, lots, journal), membership levels and member prices; promoters belong to members

Revision ID: e5a21e575047
Revises: b81d5c0e7a21
Create Date: 2026-12-04 17:04:16.760496
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'e5a21e575047'
down_revision: str | None = 'b81d5c0e7a21'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('loyalty_level',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=32), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('min_paid_cents', sa.BigInteger(), nullable=False),
    sa.Column('discount_bps', sa.Integer(), nullable=False),
    sa.Column('points_multiplier_bps', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('discount_bps BETWEEN 0 AND 9999', name=op.f('ck_loyalty_level_discount_range')),
    sa.CheckConstraint('min_paid_cents >= 0', name=op.f('ck_loyalty_level_min_paid_not_negative')),
    sa.CheckConstraint('points_multiplier_bps BETWEEN 0 AND 100000', name=op.f('ck_loyalty_level_multiplier_range')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_loyalty_level')),
    sa.UniqueConstraint('code', name=op.f('uq_loyalty_level_code')),
    sa.UniqueConstraint('min_paid_cents', name=op.f('uq_loyalty_level_min_paid_cents'))
    )
    op.create_table('loyalty_program',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('points_enabled', sa.Boolean(), nullable=False),
    sa.Column('points_per_yuan', sa.Integer(), nullable=False),
    sa.Column('point_value_cents', sa.Integer(), nullable=False),
    sa.Column('max_points_share_bps', sa.Integer(), nullable=False),
    sa.Column('expiry_years', sa.Integer(), nullable=False),
    sa.Column('updated_by', sa.String(length=64), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('expiry_years BETWEEN 1 AND 10', name=op.f('ck_loyalty_program_expiry_years_range')),
    sa.CheckConstraint('max_points_share_bps BETWEEN 0 AND 10000', name=op.f('ck_loyalty_program_max_share_range')),
    sa.CheckConstraint('point_value_cents >= 1', name=op.f('ck_loyalty_program_point_value_positive')),
    sa.CheckConstraint('points_per_yuan >= 0', name=op.f('ck_loyalty_program_points_per_yuan_not_negative')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_loyalty_program'))
    )
    op.create_table('loyalty_member',
    sa.Column('member_id', sa.Integer(), nullable=False),
    sa.Column('points_balance', sa.BigInteger(), nullable=False),
    sa.Column('paid_total_cents', sa.BigInteger(), nullable=False),
    sa.Column('level_id', sa.Integer(), nullable=True),
    sa.Column('level_since', sa.DateTime(timezone=True), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['level_id'], ['loyalty_level.id'], name=op.f('fk_loyalty_member_level_id_loyalty_level'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['member_id'], ['members_member.id'], name=op.f('fk_loyalty_member_member_id_members_member')),
    sa.PrimaryKeyConstraint('member_id', name=op.f('pk_loyalty_member'))
    )
    op.create_table('loyalty_level_price',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('level_id', sa.Integer(), nullable=False),
    sa.Column('sku_id', sa.Integer(), nullable=False),
    sa.Column('price_cents', sa.BigInteger(), nullable=False),
    sa.CheckConstraint('price_cents >= 0', name=op.f('ck_loyalty_level_price_price_ok')),
    sa.ForeignKeyConstraint(['level_id'], ['loyalty_level.id'], name=op.f('fk_loyalty_level_price_level_id_loyalty_level'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['sku_id'], ['catalog_sku.id'], name=op.f('fk_loyalty_level_price_sku_id_catalog_sku')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_loyalty_level_price')),
    sa.UniqueConstraint('level_id', 'sku_id', name=op.f('uq_loyalty_level_price_level_id_sku_id'))
    )
    with op.batch_alter_table('loyalty_level_price', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_loyalty_level_price_level_id'), ['level_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_loyalty_level_price_sku_id'), ['sku_id'], unique=False)

    op.create_table('loyalty_points_lot',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('member_id', sa.Integer(), nullable=False),
    sa.Column('order_id', sa.Integer(), nullable=True),
    sa.Column('points', sa.BigInteger(), nullable=False),
    sa.Column('remaining', sa.BigInteger(), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('remaining >= 0 AND remaining <= points', name=op.f('ck_loyalty_points_lot_remaining_within_points')),
    sa.ForeignKeyConstraint(['member_id'], ['members_member.id'], name=op.f('fk_loyalty_points_lot_member_id_members_member')),
    sa.ForeignKeyConstraint(['order_id'], ['orders_order.id'], name=op.f('fk_loyalty_points_lot_order_id_orders_order')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_loyalty_points_lot'))
    )
    with op.batch_alter_table('loyalty_points_lot', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_loyalty_points_lot_expires_at'), ['expires_at'], unique=False)
        batch_op.create_index('ix_loyalty_points_lot_member_expiry', ['member_id', 'expires_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_loyalty_points_lot_order_id'), ['order_id'], unique=False)

    op.create_table('loyalty_points_movement',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('member_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('points', sa.BigInteger(), nullable=False),
    sa.Column('balance_after', sa.BigInteger(), nullable=False),
    sa.Column('order_id', sa.Integer(), nullable=True),
    sa.Column('lot_id', sa.Integer(), nullable=True),
    sa.Column('reference', sa.String(length=120), nullable=False),
    sa.Column('note', sa.String(length=500), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['lot_id'], ['loyalty_points_lot.id'], name=op.f('fk_loyalty_points_movement_lot_id_loyalty_points_lot')),
    sa.ForeignKeyConstraint(['member_id'], ['members_member.id'], name=op.f('fk_loyalty_points_movement_member_id_members_member')),
    sa.ForeignKeyConstraint(['order_id'], ['orders_order.id'], name=op.f('fk_loyalty_points_movement_order_id_orders_order')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_loyalty_points_movement'))
    )
    with op.batch_alter_table('loyalty_points_movement', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_loyalty_points_movement_lot_id'), ['lot_id'], unique=False)
        batch_op.create_index('ix_loyalty_points_movement_member', ['member_id', 'id'], unique=False)
        batch_op.create_index(batch_op.f('ix_loyalty_points_movement_order_id'), ['order_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_loyalty_points_movement_reference'), ['reference'], unique=False)

    with op.batch_alter_table('promoters_binding', schema=None) as batch_op:
        batch_op.create_foreign_key(batch_op.f('fk_promoters_binding_member_id_members_member'), 'members_member', ['member_id'], ['id'])

    with op.batch_alter_table('promoters_promoter', schema=None) as batch_op:
        batch_op.create_foreign_key(batch_op.f('fk_promoters_promoter_member_id_members_member'), 'members_member', ['member_id'], ['id'])



def downgrade() -> None:
    with op.batch_alter_table('promoters_promoter', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_promoters_promoter_member_id_members_member'), type_='foreignkey')

    with op.batch_alter_table('promoters_binding', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_promoters_binding_member_id_members_member'), type_='foreignkey')

    with op.batch_alter_table('loyalty_points_movement', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_loyalty_points_movement_reference'))
        batch_op.drop_index(batch_op.f('ix_loyalty_points_movement_order_id'))
        batch_op.drop_index('ix_loyalty_points_movement_member')
        batch_op.drop_index(batch_op.f('ix_loyalty_points_movement_lot_id'))

    op.drop_table('loyalty_points_movement')
    with op.batch_alter_table('loyalty_points_lot', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_loyalty_points_lot_order_id'))
        batch_op.drop_index('ix_loyalty_points_lot_member_expiry')
        batch_op.drop_index(batch_op.f('ix_loyalty_points_lot_expires_at'))

    op.drop_table('loyalty_points_lot')
    with op.batch_alter_table('loyalty_level_price', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_loyalty_level_price_sku_id'))
        batch_op.drop_index(batch_op.f('ix_loyalty_level_price_level_id'))

    op.drop_table('loyalty_level_price')
    op.drop_table('loyalty_member')
    op.drop_table('loyalty_program')
    op.drop_table('loyalty_level')
