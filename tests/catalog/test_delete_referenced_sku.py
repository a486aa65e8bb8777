"""Deleting a SKU something still refers to: a 409 that names what refers to it and what to do (remove a price,
or take the SKU off sale), never the "changed at the same time" answer of a foreign-key error; the SKU stays.
Once the configuration is removed, the delete goes through."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from console.support import logged_in, post_form
from enterprises.support import add_enterprise, set_tiers
from helpers import Shop
from quanyi.catalog.models import Product, Sku
from quanyi.catalog.references import REFERRERS
from quanyi.db import Base
from resellers.support import add_reseller


def test_every_table_that_points_at_a_sku_is_named():
    import quanyi.models  # noqa: F401 - every table

    sku = Base.metadata.tables["catalog_sku"].c.id
    pointing = {(fk.parent.table.name, fk.parent.name) for table in Base.metadata.tables.values()
                for fk in table.foreign_keys if fk.column is sku}
    assert pointing == {(r.table, "sku_id") for r in REFERRERS}


async def _delete(shop: Shop, sku: Sku) -> dict:
    response = await shop.client.delete(f"/api/admin/skus/{sku.id}", headers=shop.admin)
    return {"status": response.status_code, **(response.json() if response.content else {})}


async def _draft_campaign_offering(shop: Shop, sku: Sku) -> None:
    """A draft benefit campaign of enterprise ACME with the SKU as its one option."""
    await add_enterprise(shop, "ACME")
    now = dt.datetime.now(dt.UTC)
    created = await shop.client.post("/api/admin/enterprises/ACME/campaigns", headers=shop.admin, json={
        "name": "2026 新年福利", "sku_codes": [sku.code], "budget_per_employee_cents": sku.price_cents,
        "starts_at": now.isoformat(), "ends_at": (now + dt.timedelta(days=7)).isoformat()})
    assert created.status_code == 201, created.text


async def _deleted(shop: Shop, sku: Sku) -> None:
    assert (await _delete(shop, sku))["status"] == 204
    assert await shop.count(Sku, Sku.id == sku.id) == 0


async def test_a_reseller_price_is_named_and_removing_it_lets_the_delete_through(shop: Shop):
    sku = await shop.make_sku(code="GIFT-100", price_cents=10_000)
    await add_reseller(shop, "R001")
    await add_reseller(shop, "R002")
    for code in ("R001", "R002"):
        put = await shop.client.put(f"/api/admin/resellers/{code}/prices/GIFT-100", headers=shop.admin,
                                    json={"price_cents": 9500})
        assert put.status_code == 200, put.text

    answer = await shop.refused_delete(sku, {"reseller_prices": 2})
    assert "2 reseller prices" in answer["detail"] and "/api/admin/resellers/{code}/prices/GIFT-100" in answer["detail"]
    assert "remove those first, or take the SKU off sale" in answer["detail"]

    for code in ("R001", "R002"):
        removed = await shop.client.delete(f"/api/admin/resellers/{code}/prices/GIFT-100", headers=shop.admin)
        assert removed.status_code == 204
    await _deleted(shop, sku)


async def test_enterprise_tier_prices_are_named_and_removing_them_lets_the_delete_through(shop: Shop):
    sku = await shop.make_sku(code="GIFT-100", price_cents=10_000)
    await add_enterprise(shop, "ACME")
    await set_tiers(shop, "ACME", "GIFT-100", (1, 9800), (10, 9500))

    answer = await shop.refused_delete(sku, {"enterprise_prices": 2})
    assert "2 enterprise tier prices" in answer["detail"]
    assert "DELETE /api/admin/enterprises/{code}/prices/GIFT-100" in answer["detail"]

    removed = await shop.client.delete("/api/admin/enterprises/ACME/prices/GIFT-100", headers=shop.admin)
    assert removed.status_code == 204
    await _deleted(shop, sku)


async def test_a_campaign_option_is_a_record_so_the_sku_is_taken_off_sale_instead(shop: Shop):
    sku = await shop.make_sku(code="GIFT-50", price_cents=5_000)
    await _draft_campaign_offering(shop, sku)

    answer = await shop.refused_delete(sku, {"campaign_options": 1})
    assert "1 enterprise campaign option;" in answer["detail"]
    assert "records the shop keeps, so take the SKU off sale instead (on_sale=false)" in answer["detail"]
    off = await shop.client.patch(f"/api/admin/skus/{sku.id}", headers=shop.admin, json={"on_sale": False})
    assert off.status_code == 200 and off.json()["stock"]["status"] == "off_sale"


async def test_level_prices_and_profit_share_rules_are_named_with_how_to_remove_them(shop: Shop):
    sku = await shop.make_sku(code="GIFT-100", price_cents=10_000)
    level = await shop.client.put("/api/admin/loyalty/levels/VIP", headers=shop.admin,
                                  json={"name": "VIP", "min_paid_cents": 0})
    assert level.status_code == 200, level.text
    price = await shop.client.put(f"/api/admin/loyalty/levels/VIP/prices/{sku.id}", headers=shop.admin,
                                  json={"price_cents": 9000})
    assert price.status_code == 200, price.text
    rule = await shop.client.put("/api/admin/ledger/share-rules", headers=shop.admin,
                                 json={"sku_id": sku.id, "distributor_bps": 300})
    assert rule.status_code == 200, rule.text

    answer = await shop.refused_delete(sku, {"level_prices": 1, "profit_share_rules": 1})
    assert f"DELETE /api/admin/loyalty/levels/{{code}}/prices/{sku.id}" in answer["detail"]
    assert f"DELETE /api/admin/ledger/share-rules?sku_id={sku.id}" in answer["detail"]

    assert (await shop.client.delete(f"/api/admin/loyalty/levels/VIP/prices/{sku.id}",
                                     headers=shop.admin)).status_code == 204
    await shop.refused_delete(sku, {"profit_share_rules": 1})
    assert (await shop.client.delete("/api/admin/ledger/share-rules", params={"sku_id": sku.id},
                                     headers=shop.admin)).status_code == 204
    await _deleted(shop, sku)


async def test_orders_and_card_keys_are_records_and_the_product_delete_says_so_too(shop: Shop, stocked_sku, order):
    sku = stocked_sku
    answer = await shop.refused_delete(sku, {"orders": 1, "card_keys": 10, "import_batches": 1})
    assert "1 order; 10 card keys; 1 card-key import;" in answer["detail"]
    assert "orders, card keys, card-key imports are records the shop keeps" in answer["detail"]

    product = await shop.client.delete(f"/api/admin/products/{sku.product_id}", headers=shop.admin)
    assert product.status_code == 409 and product.json()["code"] == "in_use"
    assert product.json()["detail"].startswith(f"product {(await shop.scalar(select(Product.slug)))} cannot be "
                                               f"deleted: SKU {sku.code} is still referred to by 1 order;")
    assert "so deactivate the product instead (is_active=false)" in product.json()["detail"]
    assert await shop.count(Product) == 1


@pytest.mark.parametrize("lang", ["zh-CN", "en"])
async def test_the_console_names_what_refers_to_the_sku(shop: Shop, app, lang):
    sku = await shop.make_sku(code="GIFT-100", price_cents=10_000)
    await add_reseller(shop, "R001")
    put = await shop.client.put("/api/admin/resellers/R001/prices/GIFT-100", headers=shop.admin,
                                json={"price_cents": 9500})
    assert put.status_code == 200
    client = await logged_in(shop, "cat", roles=("operator",))
    page_url = f"/console/catalog/products/{sku.product_id}"
    await client.get(f"{page_url}?lang={lang}")  # the language cookie
    kept = await post_form(client, f"/console/catalog/skus/{sku.id}/delete", page_url=page_url)
    assert kept.status_code == 409 and await shop.count(Sku, Sku.id == sku.id) == 1
    expected = {"zh-CN": "SKU GIFT-100 不能删除，仍被引用：分销商价格（1）。请先删除这些设置",
                "en": "SKU GIFT-100 cannot be deleted: still referred to by reseller prices (1). Remove these first"}
    assert expected[lang] in kept.text

    await _draft_campaign_offering(shop, sku)
    product = await post_form(client, f"/console/catalog/products/{sku.product_id}/delete", page_url=page_url)
    assert product.status_code == 409 and await shop.count(Product, Product.id == sku.product_id) == 1
    expected = {"zh-CN": "商品不能删除，其 SKU GIFT-100 仍被引用：分销商价格（1）、企业福利活动选项（1）。"
                         "其中有店铺须保留的记录，不能删除，请改为下架。",
                "en": "The product cannot be deleted: its SKU GIFT-100 is still referred to by reseller prices (1), "
                      "enterprise campaign options (1). Some are records the shop keeps: unlist the product instead."}
    assert expected[lang] in product.text
