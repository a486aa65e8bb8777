"""staff accounts, leak reports, staff reveal audit

Revision ID: 96c1c6b08f87
Revises: b373a1e1ad1f
Create Date: 2026-12-02 04:18:07.774117
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '96c1c6b08f87'
down_revision: str | None = 'b373a1e1ad1f'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('inventory_leak_report',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('created_by', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('submitted_count', sa.Integer(), nullable=False),
    sa.Column('found_count', sa.Integer(), nullable=False),
    sa.Column('withdrawn_count', sa.Integer(), nullable=False),
    sa.Column('voided_batch_ids', sa.String(length=500), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_inventory_leak_report'))
    )
    op.create_table('staff_user',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('username', sa.String(length=64), nullable=False),
    sa.Column('password_hash', sa.String(length=200), nullable=False),
    sa.Column('permissions', sa.String(length=500), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('password_changed_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_staff_user')),
    sa.UniqueConstraint('username', name=op.f('uq_staff_user_username'))
    )
    op.create_table('staff_session',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('token_hash', sa.LargeBinary(length=32), nullable=False),
    sa.Column('staff_id', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('ip', sa.String(length=64), nullable=False),
    sa.Column('user_agent', sa.String(length=512), nullable=False),
    sa.ForeignKeyConstraint(['staff_id'], ['staff_user.id'], name=op.f('fk_staff_session_staff_id_staff_user')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_staff_session')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_staff_session_token_hash'))
    )
    with op.batch_alter_table('staff_session', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_staff_session_staff_id'), ['staff_id'], unique=False)

    with op.batch_alter_table('inventory_card_key', schema=None) as batch_op:
        batch_op.add_column(sa.Column('leaked_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('leak_report_id', sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f('ix_inventory_card_key_leak_report_id'), ['leak_report_id'], unique=False)
        batch_op.create_foreign_key(batch_op.f('fk_inventory_card_key_leak_report_id_inventory_leak_report'), 'inventory_leak_report', ['leak_report_id'], ['id'])

    with op.batch_alter_table('inventory_key_reveal', schema=None) as batch_op:
        batch_op.add_column(sa.Column('actor', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('reason', sa.String(length=500), nullable=True))
        batch_op.alter_column('order_id',
               existing_type=sa.INTEGER(),
               nullable=True)


def downgrade() -> None:
    # Staff reveals of unsold keys have no order; the old schema cannot hold them.
    op.execute("DELETE FROM inventory_key_reveal WHERE order_id IS NULL")
    with op.batch_alter_table('inventory_key_reveal', schema=None) as batch_op:
        batch_op.alter_column('order_id',
               existing_type=sa.INTEGER(),
               nullable=False)
        batch_op.drop_column('reason')
        batch_op.drop_column('actor')

    with op.batch_alter_table('inventory_card_key', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_inventory_card_key_leak_report_id_inventory_leak_report'), type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_inventory_card_key_leak_report_id'))
        batch_op.drop_column('leak_report_id')
        batch_op.drop_column('leaked_at')

    with op.batch_alter_table('staff_session', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_staff_session_staff_id'))

    op.drop_table('staff_session')
    op.drop_table('staff_user')
    op.drop_table('inventory_leak_report')
