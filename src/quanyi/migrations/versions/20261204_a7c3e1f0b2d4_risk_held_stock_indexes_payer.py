"""risk: held-stock limits (indexes on the order signals by ip / device, the order's payer)

Revision ID: a7c3e1f0b2d4
Revises: 2ea632ff075b
Create Date: 2026-12-04 16:40:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'a7c3e1f0b2d4'
down_revision: str | None = '2ea632ff075b'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('risk_order_signals', schema=None) as batch_op:
        batch_op.add_column(sa.Column('payer', sa.String(length=64), nullable=True))
        batch_op.create_index(batch_op.f('ix_risk_order_signals_payer'), ['payer'], unique=False)
        batch_op.create_index('ix_risk_order_signals_ip_at', ['ip', 'at'], unique=False)
        batch_op.create_index('ix_risk_order_signals_device_at', ['device', 'at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('risk_order_signals', schema=None) as batch_op:
        batch_op.drop_index('ix_risk_order_signals_device_at')
        batch_op.drop_index('ix_risk_order_signals_ip_at')
        batch_op.drop_index(batch_op.f('ix_risk_order_signals_payer'))
        batch_op.drop_column('payer')
