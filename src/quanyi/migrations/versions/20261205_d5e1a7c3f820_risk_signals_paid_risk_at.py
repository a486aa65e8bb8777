"""risk: the payment's risk-clock moment on risk_order_signals (`paid_risk_at`): the database counters count an
order's `paid` events from its signals row (risk.engine.paid_orders_count) instead of writing three
`paid:<ip|device|contact>` counter events per paid order (docs/PERFORMANCE.md, section 28). Nullable, no default,
not indexed: PostgreSQL adds it without rewriting the table; SQLite's ADD COLUMN.

Revision ID: d5e1a7c3f820
Revises: e1f4a7c2b963
Create Date: 2026-12-05 19:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'd5e1a7c3f820'
down_revision: str | None = 'e1f4a7c2b963'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column('risk_order_signals', sa.Column('paid_risk_at', sa.Float(), nullable=True))


def downgrade() -> None:
    # The orders counted from their rows get the `paid` events the older code reads (rules.placed_events(.., "paid"):
    # key cut to 200 characters, member the order, an empty value none), at their payment's moment.
    for dimension in ('ip', 'device', 'contact'):
        op.execute(f"INSERT INTO risk_counter_event (key, member, at) "  # noqa: S608 - constants only
                   f"SELECT substr('paid:{dimension}:' || {dimension}, 1, 200), CAST(order_id AS varchar(200)), "
                   f"paid_risk_at FROM risk_order_signals WHERE paid_risk_at IS NOT NULL AND {dimension} <> ''")
    with op.batch_alter_table('risk_order_signals') as batch:
        batch.drop_column('paid_risk_at')
