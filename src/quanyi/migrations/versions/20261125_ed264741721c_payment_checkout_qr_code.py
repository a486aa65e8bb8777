"""payment checkout qr code

Revision ID: ed264741721c
Revises: bf7541d18ee9
Create Date: 2026-11-25 22:26:01.879478
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'ed264741721c'
down_revision: str | None = 'bf7541d18ee9'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('payments_payment', schema=None) as batch_op:
        batch_op.add_column(sa.Column('checkout_qr_code', sa.String(length=1000), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('payments_payment', schema=None) as batch_op:
        batch_op.drop_column('checkout_qr_code')

