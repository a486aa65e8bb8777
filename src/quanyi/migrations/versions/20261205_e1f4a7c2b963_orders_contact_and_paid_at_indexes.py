"""orders: an index on the contact (console search, guest orders attached at sign-up) and a partial one on paid_at
(sales reports), docs/PERFORMANCE.md section 30.

Both read every order to build (in the migration's transaction: writes to orders wait for it; ~5 s and ~1 s for
1,000,000 orders on the test machine).

Revision ID: e1f4a7c2b963
Revises: 7c2e4b91d0a5
Create Date: 2026-12-05 18:50:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'e1f4a7c2b963'
down_revision: str | None = '7c2e4b91d0a5'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index('ix_orders_order_contact', 'orders_order', ['contact'], unique=False)
    where = sa.text('paid_at IS NOT NULL')
    op.create_index('ix_orders_order_paid_at', 'orders_order', ['paid_at'], unique=False, postgresql_where=where,
                    sqlite_where=where)


def downgrade() -> None:
    op.drop_index('ix_orders_order_paid_at', table_name='orders_order')
    op.drop_index('ix_orders_order_contact', table_name='orders_order')
