"""coupons: coupons, their scope targets, grants (member coupons and single-use codes), code batches, redemptions, per-member tallies

Revision ID: f68e28586f3b
Revises: a7c3e1f0b2d4
Create Date: 2026-12-04 16:36:22.598755
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'f68e28586f3b'
down_revision: str | None = 'a7c3e1f0b2d4'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('coupons_coupon',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('merchant_id', sa.Integer(), server_default='1', nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('description', sa.String(length=500), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('amount_off_cents', sa.BigInteger(), nullable=True),
    sa.Column('percent_off_bps', sa.Integer(), nullable=True),
    sa.Column('max_discount_cents', sa.BigInteger(), nullable=True),
    sa.Column('fixed_price_cents', sa.BigInteger(), nullable=True),
    sa.Column('threshold_cents', sa.BigInteger(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('applies_to_all', sa.Boolean(), nullable=False),
    sa.Column('starts_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('ends_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('total_quantity', sa.Integer(), nullable=True),
    sa.Column('taken_count', sa.Integer(), nullable=False),
    sa.Column('per_member_limit', sa.Integer(), nullable=True),
    sa.Column('new_members_only', sa.Boolean(), nullable=False),
    sa.Column('stackable', sa.Boolean(), nullable=False),
    sa.Column('distribution', sa.String(length=16), nullable=False),
    sa.Column('code', sa.String(length=32), nullable=True),
    sa.Column('signup_gift', sa.Boolean(), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_by', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("(kind = 'amount_off' AND amount_off_cents > 0) OR (kind = 'percent_off' AND percent_off_bps > 0 AND percent_off_bps < 10000) OR (kind = 'fixed_price' AND fixed_price_cents >= 1)", name=op.f('ck_coupons_coupon_kind_has_its_amount')),
    sa.CheckConstraint('ends_at > starts_at', name=op.f('ck_coupons_coupon_window_not_empty')),
    sa.CheckConstraint('max_discount_cents IS NULL OR max_discount_cents >= 1', name=op.f('ck_coupons_coupon_cap_positive')),
    sa.CheckConstraint('per_member_limit IS NULL OR per_member_limit >= 1', name=op.f('ck_coupons_coupon_per_member_limit_positive')),
    sa.CheckConstraint('taken_count >= 0 AND (total_quantity IS NULL OR taken_count <= total_quantity)', name=op.f('ck_coupons_coupon_taken_within_total')),
    sa.CheckConstraint('threshold_cents >= 0', name=op.f('ck_coupons_coupon_threshold_not_negative')),
    sa.CheckConstraint('total_quantity IS NULL OR total_quantity >= 0', name=op.f('ck_coupons_coupon_total_not_negative')),
    sa.ForeignKeyConstraint(['merchant_id'], ['merchants_merchant.id'], name=op.f('fk_coupons_coupon_merchant_id_merchants_merchant')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_coupons_coupon')),
    sa.UniqueConstraint('code', name=op.f('uq_coupons_coupon_code'))
    )
    with op.batch_alter_table('coupons_coupon', schema=None) as batch_op:
        batch_op.create_index('ix_coupons_coupon_merchant_created', ['merchant_id', 'created_at'], unique=False)

    op.create_table('coupons_code_batch',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('coupon_id', sa.Integer(), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('note', sa.String(length=200), nullable=False),
    sa.Column('created_by', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['coupon_id'], ['coupons_coupon.id'], name=op.f('fk_coupons_code_batch_coupon_id_coupons_coupon')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_coupons_code_batch'))
    )
    with op.batch_alter_table('coupons_code_batch', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_coupons_code_batch_coupon_id'), ['coupon_id'], unique=False)

    op.create_table('coupons_tally',
    sa.Column('coupon_id', sa.Integer(), nullable=False),
    sa.Column('member_id', sa.Integer(), nullable=False),
    sa.Column('taken', sa.Integer(), nullable=False),
    sa.CheckConstraint('taken >= 0', name=op.f('ck_coupons_tally_taken_not_negative')),
    sa.ForeignKeyConstraint(['coupon_id'], ['coupons_coupon.id'], name=op.f('fk_coupons_tally_coupon_id_coupons_coupon')),
    sa.ForeignKeyConstraint(['member_id'], ['members_member.id'], name=op.f('fk_coupons_tally_member_id_members_member')),
    sa.PrimaryKeyConstraint('coupon_id', 'member_id', name=op.f('pk_coupons_tally'))
    )
    op.create_table('coupons_target',
    sa.Column('coupon_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('target_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['coupon_id'], ['coupons_coupon.id'], name=op.f('fk_coupons_target_coupon_id_coupons_coupon')),
    sa.PrimaryKeyConstraint('coupon_id', 'kind', 'target_id', name=op.f('pk_coupons_target'))
    )
    op.create_table('coupons_grant',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('coupon_id', sa.Integer(), nullable=False),
    sa.Column('member_id', sa.Integer(), nullable=True),
    sa.Column('code', sa.String(length=32), nullable=True),
    sa.Column('batch_id', sa.Integer(), nullable=True),
    sa.Column('source', sa.String(length=16), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('order_id', sa.Integer(), nullable=True),
    sa.Column('issued_by', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('member_id IS NOT NULL OR code IS NOT NULL', name=op.f('ck_coupons_grant_held_by_member_or_code')),
    sa.ForeignKeyConstraint(['batch_id'], ['coupons_code_batch.id'], name=op.f('fk_coupons_grant_batch_id_coupons_code_batch')),
    sa.ForeignKeyConstraint(['coupon_id'], ['coupons_coupon.id'], name=op.f('fk_coupons_grant_coupon_id_coupons_coupon')),
    sa.ForeignKeyConstraint(['order_id'], ['orders_order.id'], name=op.f('fk_coupons_grant_order_id_orders_order')),
    sa.ForeignKeyConstraint(['member_id'], ['members_member.id'], name=op.f('fk_coupons_grant_member_id_members_member')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_coupons_grant')),
    sa.UniqueConstraint('code', name=op.f('uq_coupons_grant_code'))
    )
    with op.batch_alter_table('coupons_grant', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_coupons_grant_batch_id'), ['batch_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_coupons_grant_coupon_id'), ['coupon_id'], unique=False)
        batch_op.create_index('ix_coupons_grant_member_status', ['member_id', 'status'], unique=False)

    op.create_table('coupons_redemption',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('coupon_id', sa.Integer(), nullable=False),
    sa.Column('order_id', sa.Integer(), nullable=False),
    sa.Column('grant_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('member_id', sa.Integer(), nullable=True),
    sa.Column('discount_cents', sa.BigInteger(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('discount_cents >= 0', name=op.f('ck_coupons_redemption_discount_not_negative')),
    sa.ForeignKeyConstraint(['coupon_id'], ['coupons_coupon.id'], name=op.f('fk_coupons_redemption_coupon_id_coupons_coupon')),
    sa.ForeignKeyConstraint(['grant_id'], ['coupons_grant.id'], name=op.f('fk_coupons_redemption_grant_id_coupons_grant')),
    sa.ForeignKeyConstraint(['order_id'], ['orders_order.id'], name=op.f('fk_coupons_redemption_order_id_orders_order')),
    sa.ForeignKeyConstraint(['member_id'], ['members_member.id'], name=op.f('fk_coupons_redemption_member_id_members_member')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_coupons_redemption')),
    sa.UniqueConstraint('order_id', 'coupon_id', name=op.f('uq_coupons_redemption_order_id_coupon_id'))
    )
    with op.batch_alter_table('coupons_redemption', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_coupons_redemption_coupon_id'), ['coupon_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_coupons_redemption_order_id'), ['order_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('coupons_redemption', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_coupons_redemption_order_id'))
        batch_op.drop_index(batch_op.f('ix_coupons_redemption_coupon_id'))

    op.drop_table('coupons_redemption')
    with op.batch_alter_table('coupons_grant', schema=None) as batch_op:
        batch_op.drop_index('ix_coupons_grant_member_status')
        batch_op.drop_index(batch_op.f('ix_coupons_grant_coupon_id'))
        batch_op.drop_index(batch_op.f('ix_coupons_grant_batch_id'))

    op.drop_table('coupons_grant')
    op.drop_table('coupons_target')
    op.drop_table('coupons_tally')
    with op.batch_alter_table('coupons_code_batch', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_coupons_code_batch_coupon_id'))

    op.drop_table('coupons_code_batch')
    with op.batch_alter_table('coupons_coupon', schema=None) as batch_op:
        batch_op.drop_index('ix_coupons_coupon_merchant_created')

    op.drop_table('coupons_coupon')
