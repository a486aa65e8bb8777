"""refunds, refund events and keys; order refunded_cents; payment active queries

The notifications engineer branches off the same head; the lead re-chains one after the other.

Revision ID: 62dccaf43d58
Revises: b9059f0a337e
Create Date: 2026-11-25 23:21:55.738279
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '62dccaf43d58'
down_revision: str | None = 'b9059f0a337e'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('refunds_refund',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('refund_no', sa.String(length=32), nullable=False),
    sa.Column('request_key', sa.String(length=64), nullable=True),
    sa.Column('order_id', sa.Integer(), nullable=False),
    sa.Column('payment_id', sa.Integer(), nullable=False),
    sa.Column('gateway', sa.String(length=32), nullable=False),
    sa.Column('amount_cents', sa.BigInteger(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('quantity', sa.Integer(), nullable=False),
    sa.Column('reason', sa.String(length=500), nullable=False),
    sa.Column('requested_by', sa.String(length=64), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('gateway_refund_no', sa.String(length=64), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('lease_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_error', sa.String(length=500), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('completed_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint('amount_cents > 0', name=op.f('ck_refunds_refund_amount_positive')),
    sa.CheckConstraint('quantity >= 0', name=op.f('ck_refunds_refund_quantity_not_negative')),
    sa.ForeignKeyConstraint(['order_id'], ['orders_order.id'], name=op.f('fk_refunds_refund_order_id_orders_order')),
    sa.ForeignKeyConstraint(['payment_id'], ['payments_payment.id'], name=op.f('fk_refunds_refund_payment_id_payments_payment')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_refunds_refund')),
    sa.UniqueConstraint('refund_no', name=op.f('uq_refunds_refund_refund_no')),
    sa.UniqueConstraint('request_key', name=op.f('uq_refunds_refund_request_key'))
    )
    with op.batch_alter_table('refunds_refund', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_refunds_refund_next_attempt_at'), ['next_attempt_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_refunds_refund_order_id'), ['order_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_refunds_refund_payment_id'), ['payment_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_refunds_refund_status'), ['status'], unique=False)

    op.create_table('refunds_refund_event',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('refund_id', sa.Integer(), nullable=False),
    sa.Column('from_status', sa.String(length=16), nullable=True),
    sa.Column('to_status', sa.String(length=16), nullable=False),
    sa.Column('actor', sa.String(length=64), nullable=False),
    sa.Column('reason', sa.String(length=500), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['refund_id'], ['refunds_refund.id'], name=op.f('fk_refunds_refund_event_refund_id_refunds_refund')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_refunds_refund_event'))
    )
    with op.batch_alter_table('refunds_refund_event', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_refunds_refund_event_refund_id'), ['refund_id'], unique=False)

    op.create_table('refunds_refund_key',
    sa.Column('refund_id', sa.Integer(), nullable=False),
    sa.Column('card_key_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.ForeignKeyConstraint(['card_key_id'], ['inventory_card_key.id'], name=op.f('fk_refunds_refund_key_card_key_id_inventory_card_key')),
    sa.ForeignKeyConstraint(['refund_id'], ['refunds_refund.id'], name=op.f('fk_refunds_refund_key_refund_id_refunds_refund')),
    sa.PrimaryKeyConstraint('refund_id', 'card_key_id', name=op.f('pk_refunds_refund_key')),
    sa.UniqueConstraint('card_key_id', name=op.f('uq_refunds_refund_key_card_key_id'))
    )
    with op.batch_alter_table('orders_order', schema=None) as batch_op:
        batch_op.add_column(sa.Column('refunded_cents', sa.BigInteger(), server_default='0', nullable=False))
        batch_op.create_check_constraint(
            'refunded_within_total', 'refunded_cents >= 0 AND refunded_cents <= total_cents')

    with op.batch_alter_table('payments_payment', schema=None) as batch_op:
        batch_op.add_column(sa.Column('query_count', sa.Integer(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('last_queried_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('next_query_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index(batch_op.f('ix_payments_payment_next_query_at'), ['next_query_at'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('payments_payment', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_payments_payment_next_query_at'))
        batch_op.drop_column('next_query_at')
        batch_op.drop_column('last_queried_at')
        batch_op.drop_column('query_count')

    with op.batch_alter_table('orders_order', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_orders_order_refunded_within_total'), type_='check')
        batch_op.drop_column('refunded_cents')

    op.drop_table('refunds_refund_key')
    with op.batch_alter_table('refunds_refund_event', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_refunds_refund_event_refund_id'))

    op.drop_table('refunds_refund_event')
    with op.batch_alter_table('refunds_refund', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_refunds_refund_status'))
        batch_op.drop_index(batch_op.f('ix_refunds_refund_payment_id'))
        batch_op.drop_index(batch_op.f('ix_refunds_refund_order_id'))
        batch_op.drop_index(batch_op.f('ix_refunds_refund_next_attempt_at'))

    op.drop_table('refunds_refund')
