"""risk rules, counters, decisions, challenges, review

Revision ID: 53859ec7bcb8
Revises: c6e9263429d0
Create Date: 2026-12-02 04:22:13.090717
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '53859ec7bcb8'
down_revision: str | None = 'c6e9263429d0'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('risk_challenge',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('public_id', sa.String(length=40), nullable=False),
    sa.Column('contact', sa.String(length=254), nullable=False),
    sa.Column('channel', sa.String(length=16), nullable=False),
    sa.Column('code_hash', sa.String(length=64), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('max_attempts', sa.Integer(), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('verified_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_risk_challenge')),
    sa.UniqueConstraint('public_id', name=op.f('uq_risk_challenge_public_id'))
    )
    op.create_table('risk_counter_event',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('key', sa.String(length=200), nullable=False),
    sa.Column('member', sa.String(length=200), nullable=False),
    sa.Column('at', sa.Float(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_risk_counter_event'))
    )
    with op.batch_alter_table('risk_counter_event', schema=None) as batch_op:
        batch_op.create_index('ix_risk_counter_event_key_at', ['key', 'at'], unique=False)

    op.create_table('risk_decision',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('stage', sa.String(length=16), nullable=False),
    sa.Column('order_id', sa.Integer(), nullable=True),
    sa.Column('decision', sa.String(length=16), nullable=False),
    sa.Column('score', sa.Integer(), nullable=False),
    sa.Column('rules_hit', sa.JSON(), nullable=False),
    sa.Column('signals', sa.JSON(), nullable=False),
    sa.Column('outcome', sa.String(length=32), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_risk_decision'))
    )
    with op.batch_alter_table('risk_decision', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_risk_decision_created_at'), ['created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_risk_decision_order_id'), ['order_id'], unique=False)

    op.create_table('risk_order_signals',
    sa.Column('order_id', sa.Integer(), nullable=False),
    sa.Column('ip', sa.String(length=64), nullable=False),
    sa.Column('device', sa.String(length=128), nullable=False),
    sa.Column('contact', sa.String(length=254), nullable=False),
    sa.Column('sku_id', sa.Integer(), nullable=False),
    sa.Column('quantity', sa.Integer(), nullable=False),
    sa.Column('amount_cents', sa.BigInteger(), nullable=False),
    sa.Column('at', sa.Float(), nullable=False),
    sa.Column('paid', sa.Boolean(), nullable=False),
    sa.Column('review_reason', sa.String(length=300), nullable=True),
    sa.PrimaryKeyConstraint('order_id', name=op.f('pk_risk_order_signals'))
    )
    with op.batch_alter_table('risk_order_signals', schema=None) as batch_op:
        batch_op.create_index('ix_risk_order_signals_contact_at', ['contact', 'at'], unique=False)

    op.create_table('risk_policy',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('challenge_at', sa.Integer(), nullable=True),
    sa.Column('review_at', sa.Integer(), nullable=True),
    sa.Column('deny_at', sa.Integer(), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_risk_policy'))
    )
    op.create_table('risk_review_action',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('order_id', sa.Integer(), nullable=False),
    sa.Column('action', sa.String(length=16), nullable=False),
    sa.Column('actor', sa.String(length=100), nullable=False),
    sa.Column('reason', sa.String(length=500), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_risk_review_action'))
    )
    with op.batch_alter_table('risk_review_action', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_risk_review_action_order_id'), ['order_id'], unique=False)

    op.create_table('risk_rule',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('params', sa.JSON(), nullable=False),
    sa.Column('stages', sa.JSON(), nullable=False),
    sa.Column('action', sa.String(length=16), nullable=False),
    sa.Column('score', sa.Integer(), nullable=False),
    sa.Column('reason_code', sa.String(length=64), nullable=False),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_risk_rule')),
    sa.UniqueConstraint('name', name=op.f('uq_risk_rule_name'))
    )


def downgrade() -> None:
    op.drop_table('risk_rule')
    with op.batch_alter_table('risk_review_action', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_risk_review_action_order_id'))

    op.drop_table('risk_review_action')
    op.drop_table('risk_policy')
    with op.batch_alter_table('risk_order_signals', schema=None) as batch_op:
        batch_op.drop_index('ix_risk_order_signals_contact_at')

    op.drop_table('risk_order_signals')
    with op.batch_alter_table('risk_decision', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_risk_decision_order_id'))
        batch_op.drop_index(batch_op.f('ix_risk_decision_created_at'))

    op.drop_table('risk_decision')
    with op.batch_alter_table('risk_counter_event', schema=None) as batch_op:
        batch_op.drop_index('ix_risk_counter_event_key_at')

    op.drop_table('risk_counter_event')
    op.drop_table('risk_challenge')
