"""coupons: level-up gifts (coupons a membership level gives) and the once-per-member-and-level reward record

Revision ID: 9c41d7e2a5b3
Revises: e5a21e575047
Create Date: 2026-12-04 19:55:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '9c41d7e2a5b3'
down_revision: str | None = 'e5a21e575047'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('coupons_level_gift',
    sa.Column('level_id', sa.Integer(), nullable=False),
    sa.Column('coupon_id', sa.Integer(), nullable=False),
    sa.Column('created_by', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['coupon_id'], ['coupons_coupon.id'], name=op.f('fk_coupons_level_gift_coupon_id_coupons_coupon')),
    sa.ForeignKeyConstraint(['level_id'], ['loyalty_level.id'], name=op.f('fk_coupons_level_gift_level_id_loyalty_level'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('level_id', 'coupon_id', name=op.f('pk_coupons_level_gift'))
    )
    op.create_index(op.f('ix_coupons_level_gift_coupon_id'), 'coupons_level_gift', ['coupon_id'], unique=False)
    op.create_table('coupons_level_reward',
    sa.Column('member_id', sa.Integer(), nullable=False),
    sa.Column('level_id', sa.Integer(), nullable=False),
    sa.Column('issued', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['level_id'], ['loyalty_level.id'], name=op.f('fk_coupons_level_reward_level_id_loyalty_level'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['member_id'], ['members_member.id'], name=op.f('fk_coupons_level_reward_member_id_members_member')),
    sa.PrimaryKeyConstraint('member_id', 'level_id', name=op.f('pk_coupons_level_reward'))
    )
    op.create_index(op.f('ix_coupons_level_reward_level_id'), 'coupons_level_reward', ['level_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_coupons_level_reward_level_id'), table_name='coupons_level_reward')
    op.drop_table('coupons_level_reward')
    op.drop_index(op.f('ix_coupons_level_gift_coupon_id'), table_name='coupons_level_gift')
    op.drop_table('coupons_level_gift')
