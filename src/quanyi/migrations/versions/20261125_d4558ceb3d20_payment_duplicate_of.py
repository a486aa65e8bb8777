"""payment duplicate_of

Revision ID: d4558ceb3d20
Revises: 62dccaf43d58
Create Date: 2026-11-25 23:58:29.810968
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'd4558ceb3d20'
down_revision: str | None = '62dccaf43d58'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('payments_payment', schema=None) as batch_op:
        batch_op.add_column(sa.Column('duplicate_of', sa.String(length=32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('payments_payment', schema=None) as batch_op:
        batch_op.drop_column('duplicate_of')

