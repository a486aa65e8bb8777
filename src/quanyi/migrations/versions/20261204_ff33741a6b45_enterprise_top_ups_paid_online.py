"""enterprises: top-up requests paid online through a payment gateway (its name and transaction number; one
transaction credits at most one request).

Revision ID: ff33741a6b45
Revises: 847ed6030e12
Create Date: 2026-12-04 23:14:36.556572
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'ff33741a6b45'
down_revision: str | None = '847ed6030e12'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('enterprises_top_up_request', schema=None) as batch_op:
        batch_op.add_column(sa.Column('gateway', sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column('gateway_trade_no', sa.String(length=64), nullable=True))
        batch_op.create_unique_constraint(batch_op.f('uq_enterprises_top_up_request_gateway_gateway_trade_no'), ['gateway', 'gateway_trade_no'])


def downgrade() -> None:
    with op.batch_alter_table('enterprises_top_up_request', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('uq_enterprises_top_up_request_gateway_gateway_trade_no'), type_='unique')
        batch_op.drop_column('gateway_trade_no')
        batch_op.drop_column('gateway')

