"""pricing breakdown on orders

Revision ID: 3973a1848d32
Revises: 96d742441ed6
Create Date: 2026-12-04 16:15:48.421644
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '3973a1848d32'
down_revision: str | None = '96d742441ed6'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


_TOTAL_WAS = "total_cents = unit_price_cents * quantity"
_TOTAL_IS = ("total_cents = unit_price_cents * quantity - member_discount_cents - coupon_discount_cents"
             " - points_discount_cents")
_NOT_NEGATIVE = ("member_discount_cents >= 0 AND coupon_discount_cents >= 0 AND points_discount_cents >= 0"
                 " AND points_used >= 0 AND total_cents >= 0")


def upgrade() -> None:
    with op.batch_alter_table('orders_order', schema=None) as batch_op:
        batch_op.add_column(sa.Column('price_source', sa.String(length=16), server_default='list', nullable=False))
        batch_op.add_column(sa.Column('member_discount_cents', sa.BigInteger(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('coupon_discount_cents', sa.BigInteger(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('points_used', sa.BigInteger(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('points_discount_cents', sa.BigInteger(), server_default='0', nullable=False))
        batch_op.drop_constraint(batch_op.f('ck_orders_order_total_matches'), type_='check')
        batch_op.create_check_constraint('total_matches', sa.text(_TOTAL_IS))
        batch_op.create_check_constraint('discounts_not_negative', sa.text(_NOT_NEGATIVE))
    # Orders placed before the price calculation were bought by account customers at their own price or at the
    # list price; the source column tells them apart from now on.
    op.execute("UPDATE orders_order SET price_source = 'account' WHERE customer_account_id IS NOT NULL")


def downgrade() -> None:
    with op.batch_alter_table('orders_order', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('ck_orders_order_discounts_not_negative'), type_='check')
        batch_op.drop_constraint(batch_op.f('ck_orders_order_total_matches'), type_='check')
        batch_op.create_check_constraint('total_matches', sa.text(_TOTAL_WAS))
        batch_op.drop_column('points_discount_cents')
        batch_op.drop_column('points_used')
        batch_op.drop_column('coupon_discount_cents')
        batch_op.drop_column('member_discount_cents')
        batch_op.drop_column('price_source')
