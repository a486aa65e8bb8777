"""members: accounts, sessions, sign-in codes, orders.member_id

Revision ID: 2ea632ff075b
Revises: 9ecc822d6080
Create Date: 2026-12-04 16:18:09.600975
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '2ea632ff075b'
down_revision: str | None = '9ecc822d6080'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('members_member',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('email', sa.String(length=254), nullable=True),
    sa.Column('phone', sa.String(length=32), nullable=True),
    sa.Column('password_hash', sa.String(length=200), nullable=True),
    sa.Column('status', sa.Enum('active', 'disabled', name='memberstatus', native_enum=False, length=16), nullable=False),
    sa.Column('locale', sa.String(length=8), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_login_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('password_changed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('disabled_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('disabled_reason', sa.String(length=500), nullable=True),
    sa.CheckConstraint('email IS NOT NULL OR phone IS NOT NULL', name=op.f('ck_members_member_has_contact')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_members_member')),
    sa.UniqueConstraint('email', name=op.f('uq_members_member_email')),
    sa.UniqueConstraint('phone', name=op.f('uq_members_member_phone'))
    )
    op.create_table('members_code',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('public_id', sa.String(length=40), nullable=False),
    sa.Column('purpose', sa.Enum('sign_in', 'add_contact', name='codepurpose', native_enum=False, length=16), nullable=False),
    sa.Column('contact_kind', sa.String(length=8), nullable=False),
    sa.Column('contact', sa.String(length=254), nullable=False),
    sa.Column('member_id', sa.Integer(), nullable=True),
    sa.Column('code_hash', sa.String(length=64), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('max_attempts', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('used_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('ip', sa.String(length=64), nullable=False),
    sa.ForeignKeyConstraint(['member_id'], ['members_member.id'], name=op.f('fk_members_code_member_id_members_member')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_members_code')),
    sa.UniqueConstraint('public_id', name=op.f('uq_members_code_public_id'))
    )
    with op.batch_alter_table('members_code', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_members_code_contact'), ['contact'], unique=False)

    op.create_table('members_session',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('token_hash', sa.LargeBinary(length=32), nullable=False),
    sa.Column('member_id', sa.Integer(), nullable=False),
    sa.Column('method', sa.Enum('code', 'password', name='loginmethod', native_enum=False, length=16), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_seen_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('ip', sa.String(length=64), nullable=False),
    sa.Column('user_agent', sa.String(length=512), nullable=False),
    sa.ForeignKeyConstraint(['member_id'], ['members_member.id'], name=op.f('fk_members_session_member_id_members_member')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_members_session')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_members_session_token_hash'))
    )
    with op.batch_alter_table('members_session', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_members_session_member_id'), ['member_id'], unique=False)

    with op.batch_alter_table('orders_order', schema=None) as batch_op:
        batch_op.add_column(sa.Column('member_id', sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f('ix_orders_order_member_id'), ['member_id'], unique=False)
        batch_op.create_foreign_key(batch_op.f('fk_orders_order_member_id_members_member'), 'members_member', ['member_id'], ['id'])



def downgrade() -> None:
    with op.batch_alter_table('orders_order', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_orders_order_member_id_members_member'), type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_orders_order_member_id'))
        batch_op.drop_column('member_id')

    with op.batch_alter_table('members_session', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_members_session_member_id'))

    op.drop_table('members_session')
    with op.batch_alter_table('members_code', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_members_code_contact'))

    op.drop_table('members_code')
    op.drop_table('members_member')
