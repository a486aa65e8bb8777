"""notification outbox (notifications_outbox): messages to send, written with the state change

Revision ID: b9059f0a337e
Revises: f28b926b92e8
Create Date: 2026-11-25 22:45:46.878177
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'b9059f0a337e'
down_revision: str | None = 'f28b926b92e8'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('notifications_outbox',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('channel', sa.String(length=16), nullable=False),
    sa.Column('recipient', sa.String(length=254), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('locale', sa.String(length=8), nullable=False),
    sa.Column('payload', sa.JSON(), nullable=False),
    sa.Column('dedupe_key', sa.String(length=200), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('locked_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('lease_owner', sa.String(length=64), nullable=True),
    sa.Column('last_error', sa.String(length=1000), nullable=True),
    sa.Column('provider_message_id', sa.String(length=128), nullable=True),
    sa.Column('order_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_notifications_outbox')),
    sa.UniqueConstraint('dedupe_key', name=op.f('uq_notifications_outbox_dedupe_key'))
    )
    with op.batch_alter_table('notifications_outbox', schema=None) as batch_op:
        batch_op.create_index('ix_notifications_outbox_due', ['status', 'next_attempt_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_notifications_outbox_order_id'), ['order_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('notifications_outbox', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_notifications_outbox_order_id'))
        batch_op.drop_index('ix_notifications_outbox_due')

    op.drop_table('notifications_outbox')
