"""enterprise login apps wecom dingtalk

Revision ID: 1c2d9a197696
Revises: 529289339948
Create Date: 2026-12-04 17:05:11.012937
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '1c2d9a197696'
down_revision: str | None = '529289339948'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('enterprises_login_app',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('enterprise_id', sa.Integer(), nullable=False),
    sa.Column('provider', sa.String(length=16), nullable=False),
    sa.Column('app_id', sa.String(length=64), nullable=False),
    sa.Column('agent_id', sa.String(length=32), nullable=False),
    sa.Column('key_id', sa.String(length=32), nullable=False),
    sa.Column('ciphertext', sa.LargeBinary(), nullable=False),
    sa.Column('hint', sa.String(length=8), nullable=False),
    sa.Column('updated_by', sa.String(length=64), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['enterprise_id'], ['enterprises_enterprise.id'], name=op.f('fk_enterprises_login_app_enterprise_id_enterprises_enterprise')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_enterprises_login_app')),
    sa.UniqueConstraint('enterprise_id', 'provider', name=op.f('uq_enterprises_login_app_enterprise_id_provider'))
    )


def downgrade() -> None:
    op.drop_table('enterprises_login_app')
