"""catalog: ids of categories, products and SKUs are never handed out twice (SQLite AUTOINCREMENT)

Coupon targets (and order snapshots) name catalog ids without a foreign key. Plain SQLite INTEGER PRIMARY KEY hands
out max(id)+1, so deleting the newest SKU and adding another gave the new one the old id, and a coupon made for the
old SKU applied to it. AUTOINCREMENT needs a table rebuild on SQLite (batch mode). The sequence is started above
every id anything still names, so ids deleted before this migration are never handed out either. PostgreSQL:
nothing to do, its sequences never go back.

Revision ID: c4d1a9e2f3b7
Revises: 9df7f15a574f
Create Date: 2026-12-04 22:50:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'c4d1a9e2f3b7'
down_revision: str | None = '9df7f15a574f'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# table -> the highest id it holds or anything else names (the sequence starts above them all)
_NAMED_BY = {
    'catalog_category': ["SELECT max(id) FROM catalog_category",
                         "SELECT max(target_id) FROM coupons_target WHERE kind = 'category'"],
    'catalog_product': ["SELECT max(id) FROM catalog_product",
                        "SELECT max(target_id) FROM coupons_target WHERE kind = 'product'",
                        "SELECT max(product_id) FROM orders_order"],
    'catalog_sku': ["SELECT max(id) FROM catalog_sku",
                    "SELECT max(target_id) FROM coupons_target WHERE kind = 'sku'",
                    "SELECT max(sku_id) FROM risk_order_signals", "SELECT max(sku_id) FROM orders_order"],
}


def _rebuild(autoincrement: bool) -> None:
    for table in _NAMED_BY:
        with op.batch_alter_table(table, recreate='always',
                                  table_kwargs={'sqlite_autoincrement': autoincrement}):
            pass


def upgrade() -> None:
    if op.get_bind().dialect.name != 'sqlite':
        return
    _rebuild(True)
    for table, named in _NAMED_BY.items():
        highest = ", ".join(f"coalesce(({query}), 0)" for query in named)
        op.execute(sa.text("DELETE FROM sqlite_sequence WHERE name = :name").bindparams(name=table))
        op.execute(sa.text(f"INSERT INTO sqlite_sequence (name, seq) SELECT :name, max({highest}, 0)")  # noqa: S608 - constants above
                   .bindparams(name=table))


def downgrade() -> None:
    if op.get_bind().dialect.name != 'sqlite':
        return
    _rebuild(False)
