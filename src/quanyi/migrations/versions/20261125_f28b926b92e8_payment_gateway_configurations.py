"""payment gateway configurations

Revision ID: f28b926b92e8
Revises: ed264741721c
Create Date: 2026-11-25 22:29:13.794747
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'f28b926b92e8'
down_revision: str | None = 'ed264741721c'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('payments_gateway_config',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('gateway', sa.String(length=32), nullable=False),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('key_id', sa.String(length=32), nullable=False),
    sa.Column('ciphertext', sa.LargeBinary(), nullable=False),
    sa.Column('updated_by', sa.String(length=64), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_payments_gateway_config')),
    sa.UniqueConstraint('gateway', name=op.f('uq_payments_gateway_config_gateway'))
    )


def downgrade() -> None:
    op.drop_table('payments_gateway_config')
