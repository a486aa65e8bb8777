"""enterprises: portal users (企业门户账号), their sessions and second-factor recovery codes

Revision ID: 9df7f15a574f
Revises: 9c41d7e2a5b3
Create Date: 2026-12-04 19:28:32.797780
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '9df7f15a574f'
down_revision: str | None = '9c41d7e2a5b3'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('enterprises_user',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('enterprise_id', sa.Integer(), nullable=False),
    sa.Column('username', sa.String(length=64), nullable=False),
    sa.Column('display_name', sa.String(length=100), nullable=False),
    sa.Column('password_hash', sa.String(length=200), nullable=False),
    sa.Column('role', sa.String(length=16), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_by', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('password_changed_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_login_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('totp_key_id', sa.String(length=32), nullable=True),
    sa.Column('totp_ciphertext', sa.LargeBinary(), nullable=True),
    sa.Column('totp_enabled_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('totp_last_step', sa.BigInteger(), nullable=True),
    sa.ForeignKeyConstraint(['enterprise_id'], ['enterprises_enterprise.id'], name=op.f('fk_enterprises_user_enterprise_id_enterprises_enterprise')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_enterprises_user')),
    sa.UniqueConstraint('enterprise_id', 'username', name=op.f('uq_enterprises_user_enterprise_id_username'))
    )
    with op.batch_alter_table('enterprises_user', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_enterprises_user_enterprise_id'), ['enterprise_id'], unique=False)

    op.create_table('enterprises_user_recovery_code',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('code_hash', sa.LargeBinary(length=32), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('used_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['enterprises_user.id'], name=op.f('fk_enterprises_user_recovery_code_user_id_enterprises_user')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_enterprises_user_recovery_code')),
    sa.UniqueConstraint('code_hash', name=op.f('uq_enterprises_user_recovery_code_code_hash'))
    )
    with op.batch_alter_table('enterprises_user_recovery_code', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_enterprises_user_recovery_code_user_id'), ['user_id'], unique=False)

    op.create_table('enterprises_user_session',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('token_hash', sa.LargeBinary(length=32), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_seen_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('second_factor_pending', sa.Boolean(), server_default=sa.false(), nullable=False),
    sa.Column('ip', sa.String(length=64), nullable=False),
    sa.Column('user_agent', sa.String(length=512), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['enterprises_user.id'], name=op.f('fk_enterprises_user_session_user_id_enterprises_user')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_enterprises_user_session')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_enterprises_user_session_token_hash'))
    )
    with op.batch_alter_table('enterprises_user_session', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_enterprises_user_session_user_id'), ['user_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('enterprises_user_session', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_enterprises_user_session_user_id'))

    op.drop_table('enterprises_user_session')
    with op.batch_alter_table('enterprises_user_recovery_code', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_enterprises_user_recovery_code_user_id'))

    op.drop_table('enterprises_user_recovery_code')
    with op.batch_alter_table('enterprises_user', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_enterprises_user_enterprise_id'))

    op.drop_table('enterprises_user')
