"""Coupon scopes name categories, products and SKUs by id, without a foreign key. A coupon that has not ended keeps
what it names from being deleted (a 409 naming the coupons); once it has ended the row may go, and the id is never
handed out again (SQLite AUTOINCREMENT, PostgreSQL sequences), so the old coupon, even moved back into its window,
never applies to a new row."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from sqlalchemy import select

from coupons.support import make_coupon
from helpers import Shop
from quanyi.catalog.models import Category, Product, Sku
from quanyi.catalog.references import UNLINKED
from quanyi.db import Base


def test_every_catalog_id_column_without_a_foreign_key_is_accounted_for():
    import quanyi.models  # noqa: F401 - every table

    unlinked = {(table.name, col.name) for table in Base.metadata.tables.values() for col in table.columns
                if re.fullmatch(r"(sku|product|category|target)_id", col.name) and not col.foreign_keys}
    assert unlinked == set(UNLINKED)


def test_catalog_tables_never_hand_out_an_id_twice_on_sqlite():
    for model in (Category, Product, Sku):
        assert model.__table__.dialect_options["sqlite"]["autoincrement"] is True


async def _ids(shop: Shop, sku: Sku) -> dict[str, int]:
    category_id = await shop.scalar(select(Product.category_id).where(Product.id == sku.product_id))
    return {"sku": sku.id, "product": sku.product_id, "category": category_id}


async def _set_end(shop: Shop, coupon_id: int, ends_at: dt.datetime) -> None:
    response = await shop.client.patch(f"/api/admin/coupons/{coupon_id}", headers=shop.admin,
                                       json={"ends_at": ends_at.isoformat()})
    assert response.status_code == 200, response.text


async def _delete(shop: Shop, path: str) -> dict:
    response = await shop.client.delete(f"/api/admin/{path}", headers=shop.admin)
    return {"status": response.status_code, **(response.json() if response.content else {})}


async def _quote(shop: Shop, sku_id: int, code: str) -> dict:
    response = await shop.client.post("/api/pricing/quote", json={"sku_id": sku_id, "quantity": 1,
                                                                   "coupon_codes": [code]})
    return {"status": response.status_code, **response.json()}


@pytest.mark.parametrize("kind", ["sku", "product", "category"])
async def test_an_old_coupon_never_applies_to_the_new_row_made_after_its_target_was_deleted(shop: Shop, kind: str):
    old_sku = await shop.make_sku()  # the newest category, product and SKU: the ids a reusing database hands out
    old = await _ids(shop, old_sku)
    made = await make_coupon(shop, name="旧券", code="OLD1", targets=[{"kind": kind, "id": old[kind]}])
    assert (await _quote(shop, old_sku.id, "OLD1"))["status"] == 200

    await _set_end(shop, made["id"], dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1))
    assert (await _delete(shop, f"products/{old['product']}"))["status"] == 204  # its SKU with it
    assert (await _delete(shop, f"categories/{old['category']}"))["status"] == 204

    new_sku = await shop.make_sku()
    new = await _ids(shop, new_sku)
    assert all(new[k] > old[k] for k in old), (old, new)

    await _set_end(shop, made["id"], dt.datetime.now(dt.UTC) + dt.timedelta(days=30))  # moved back into its window
    answer = await _quote(shop, new_sku.id, "OLD1")
    assert (answer["status"], answer["reason"]) == (409, "out_of_scope")


async def test_a_coupon_that_has_not_ended_keeps_its_sku_and_is_named(shop: Shop):
    sku = await shop.make_sku(code="GIFT-100")
    first = await make_coupon(shop, name="新年券", code="NY1", targets=[{"kind": "sku", "id": sku.id}])
    later = await make_coupon(shop, name="春节券", code="SF1", targets=[{"kind": "sku", "id": sku.id}],
                              starts_at=(dt.datetime.now(dt.UTC) + dt.timedelta(days=5)).isoformat(),
                              ends_at=(dt.datetime.now(dt.UTC) + dt.timedelta(days=9)).isoformat())
    paused = await shop.client.patch(f"/api/admin/coupons/{later['id']}", headers=shop.admin, json={"active": False})
    assert paused.status_code == 200  # paused: it can be resumed, so it still counts

    answer = await shop.refused_delete(sku, {"coupons": 2})
    assert answer["coupons"] == [f"#{first['id']} 新年券", f"#{later['id']} 春节券"]
    assert f"2 coupons that have not ended (#{first['id']} 新年券, #{later['id']} 春节券)" in answer["detail"]
    assert "PATCH /api/admin/coupons/{id} with ends_at now" in answer["detail"]

    await _set_end(shop, first["id"], dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1))
    await shop.refused_delete(sku, {"coupons": 1})
    await _set_end(shop, later["id"], later_end := dt.datetime.now(dt.UTC) + dt.timedelta(days=5, seconds=1))
    assert later_end > dt.datetime.now(dt.UTC)
    await shop.refused_delete(sku, {"coupons": 1})  # not started yet is not ended


async def test_coupons_keep_a_product_and_a_category_and_say_so(shop: Shop):
    sku = await shop.make_sku()
    ids = await _ids(shop, sku)
    by_product = await make_coupon(shop, name="商品券", code="P1", targets=[{"kind": "product", "id": ids["product"]}])
    refused = await _delete(shop, f"products/{ids['product']}")
    assert refused["status"] == 409 and refused["code"] == "in_use"
    assert refused["coupons"] == [f"#{by_product['id']} 商品券"]
    assert refused["detail"].startswith("product product-") and "deactivate the product instead" in refused["detail"]
    assert await shop.count(Sku, Sku.id == sku.id) == 1

    created = await shop.client.post("/api/admin/categories", headers=shop.admin,
                                     json={"slug": "games", "name": "游戏"})
    assert created.status_code == 201, created.text
    category_id = created.json()["id"]
    by_category = await make_coupon(shop, name="分类券", code="C1", targets=[{"kind": "category", "id": category_id}])
    refused = await _delete(shop, f"categories/{category_id}")
    assert refused["status"] == 409 and refused["coupons"] == [f"#{by_category['id']} 分类券"]
    assert refused["detail"].startswith("category games cannot be deleted")
    await _set_end(shop, by_category["id"], dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1))
    assert (await _delete(shop, f"categories/{category_id}"))["status"] == 204


def test_the_migration_starts_ids_above_every_id_a_coupon_or_order_still_names(tmp_path):
    """A database from before: ids deleted then (still named by a coupon scope or an order snapshot) are not
    handed out after the upgrade either."""
    import sqlite3

    from quanyi.migrate import upgrade

    path = tmp_path / "old.db"
    upgrade(f"sqlite:///{path}", "9df7f15a574f")
    with sqlite3.connect(path) as db:  # foreign keys off: the deleted rows are simply not there
        db.executemany("INSERT INTO coupons_target (coupon_id, kind, target_id) VALUES (1, ?, ?)",
                       [("category", 7), ("product", 8), ("sku", 9)])
        db.execute("INSERT INTO catalog_category (id, slug, name, description, sort_order, is_active, created_at, "
                   "updated_at) VALUES (3, 'c', 'c', '', 0, 1, '2026-01-01', '2026-01-01')")
    upgrade(f"sqlite:///{path}")
    with sqlite3.connect(path) as db:
        assert dict(db.execute("SELECT name, seq FROM sqlite_sequence WHERE name LIKE 'catalog_%'").fetchall()) == {
            "catalog_category": 7, "catalog_product": 8, "catalog_sku": 9}
        db.execute("INSERT INTO catalog_category (slug, name, description, sort_order, is_active, created_at, "
                   "updated_at) VALUES ('d', 'd', '', 0, 1, '2026-01-01', '2026-01-01')")
        assert db.execute("SELECT id FROM catalog_category WHERE slug = 'd'").fetchone() == (8,)
        assert db.execute("SELECT id FROM catalog_category WHERE slug = 'c'").fetchone() == (3,)
