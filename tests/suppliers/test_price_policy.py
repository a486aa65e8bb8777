"""The margin-floor price policy: a supplier cost rise beyond the floor reprices the SKU or takes it off
sale; when the cost falls back, what the policy did is undone, never what an operator did. Every
automatic change is in the price-change log."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given
from hypothesis import strategies as st

from quanyi.catalog import service as catalog_service
from quanyi.suppliers.pricing import meets_floor, minimum_price
from quanyi.suppliers.sync_models import PricePolicy, SkuPricePolicy
from quanyi.tasks import sync_suppliers_once
from quanyi.testpeers.suppliers import CARD_PRODUCT
from suppliers.shop_support import map_sku, register, sync


@pytest.fixture
def sim(supplier_sim):
    return supplier_sim("quanyi")  # GIFT-100 costs 9500


async def _guarded_sku(shop, sim, *, price_cents=10000, **policy):
    await register(shop, sim)
    await sync(shop)
    sku = await shop.make_sku(code="GIFT-CARD", price_cents=price_cents)
    await map_sku(shop, sku.id, CARD_PRODUCT)
    response = await shop.client.put(f"/api/admin/skus/{sku.id}/price-policy", headers=shop.admin, json=policy)
    assert response.status_code == 200, response.text
    assert response.json()["changes"] == []  # 10000 - 9500 keeps a 300-cent floor
    return sku


async def _sku(shop, sku):
    async with shop.ctx.db.read_session() as session:
        found = await catalog_service.get_sku(session=session, sku_id=sku.id)
        return {"price_cents": found.price_cents, "on_sale": found.on_sale}


async def _log(shop, sku):
    response = await shop.client.get(f"/api/admin/supplier-price-changes?sku_id={sku.id}", headers=shop.admin)
    assert response.status_code == 200
    return [(c["action"], c["old_price_cents"], c["new_price_cents"], c["supplier_cost_cents"])
            for c in reversed(response.json())]


async def _cost(shop, sim, cents):
    sim.set_cost(CARD_PRODUCT, cents)
    shop.ctx.settings.supplier_sync_interval_seconds = 0.01
    await asyncio.sleep(0.02)
    [result] = await sync_suppliers_once(shop.ctx)
    assert result.ok
    return result


async def _checkout(shop, sku):
    return await shop.client.post("/api/orders", json={"sku_id": sku.id, "quantity": 1,
                                                       "contact": "buyer@example.com"})


async def test_cost_rise_beyond_the_floor_reprices_and_a_fall_restores_the_price(shop, sim):
    sku = await _guarded_sku(shop, sim, policy="reprice", margin_floor_cents=300)
    result = await _cost(shop, sim, 9900)
    assert [c.action.value for c in result.price_changes] == ["repriced"]
    assert (await _sku(shop, sku))["price_cents"] == 10200
    order = await _checkout(shop, sku)
    assert order.status_code == 201 and order.json()["total_cents"] == 10200

    await _cost(shop, sim, 9800)  # still above the operator's price: comes down only as far as it can
    assert (await _sku(shop, sku))["price_cents"] == 10100
    await _cost(shop, sim, 9500)
    assert (await _sku(shop, sku))["price_cents"] == 10000
    assert await _log(shop, sku) == [("repriced", 10000, 10200, 9900), ("price_restored", 10200, 10100, 9800),
                                     ("price_restored", 10100, 10000, 9500)]
    policy = (await shop.client.get(f"/api/admin/skus/{sku.id}/price-policy", headers=shop.admin)).json()
    assert policy["base_price_cents"] is None and policy["auto_price_cents"] is None


async def test_reprice_adds_the_markup_and_never_exceeds_the_ceiling(shop, sim):
    sku = await _guarded_sku(shop, sim, policy="reprice", margin_floor_bps=300, markup_bps=500,
                             max_price_cents=11000)
    await _cost(shop, sim, 9800)  # 10000 - 9800 < 3% of 10000: reprice to cost + 5%
    assert (await _sku(shop, sku))["price_cents"] == 10290
    await _cost(shop, sim, 10700)  # would need 11235 > ceiling: off sale instead
    after = await _sku(shop, sku)
    assert after["price_cents"] == 10290 and not after["on_sale"]
    assert (await _checkout(shop, sku)).status_code == 409
    await _cost(shop, sim, 9900)
    back = await _sku(shop, sku)
    assert back["on_sale"] and back["price_cents"] == 10290
    assert [entry[0] for entry in await _log(shop, sku)] == ["repriced", "taken_off_sale", "back_on_sale"]


async def test_cost_rise_takes_the_sku_off_sale_and_a_fall_puts_it_back(shop, sim):
    sku = await _guarded_sku(shop, sim, policy="off_sale", margin_floor_cents=300)
    await _cost(shop, sim, 9800)
    assert not (await _sku(shop, sku))["on_sale"]
    refused = await _checkout(shop, sku)
    assert refused.status_code == 409 and refused.json()["code"] == "sku_not_purchasable"
    listing = next(p for p in (await shop.client.get("/api/catalog/products")).json() if p["id"] == sku.product_id)
    assert not listing["in_stock"] and listing["stock_status"] == "off_sale"
    policy = (await shop.client.get(f"/api/admin/skus/{sku.id}/price-policy", headers=shop.admin)).json()
    assert policy["off_sale_by_policy"] and "margin floor" in policy["off_sale_reason"]

    await _cost(shop, sim, 9700)  # exactly the floor: fine again
    assert (await _sku(shop, sku))["on_sale"]
    assert (await _checkout(shop, sku)).status_code == 201
    assert await _log(shop, sku) == [("taken_off_sale", 10000, 10000, 9800), ("back_on_sale", 10000, 10000, 9700)]


async def test_a_sku_an_operator_took_off_sale_is_never_put_back(shop, sim):
    sku = await _guarded_sku(shop, sim, policy="off_sale", margin_floor_cents=300)
    assert (await shop.client.patch(f"/api/admin/skus/{sku.id}", headers=shop.admin,
                                    json={"on_sale": False})).status_code == 200
    await _cost(shop, sim, 9800)
    await _cost(shop, sim, 9000)
    assert not (await _sku(shop, sku))["on_sale"]
    assert await _log(shop, sku) == []

    # Back on sale by the operator: now the policy guards it, and undoes only its own step.
    assert (await shop.client.patch(f"/api/admin/skus/{sku.id}", headers=shop.admin,
                                    json={"on_sale": True})).status_code == 200
    await _cost(shop, sim, 9800)
    assert not (await _sku(shop, sku))["on_sale"]
    await _cost(shop, sim, 9000)
    assert (await _sku(shop, sku))["on_sale"]
    assert [entry[0] for entry in await _log(shop, sku)] == ["taken_off_sale", "back_on_sale"]


async def test_an_operator_price_change_is_never_undone(shop, sim):
    sku = await _guarded_sku(shop, sim, policy="reprice", margin_floor_cents=300)
    await _cost(shop, sim, 9900)
    assert (await _sku(shop, sku))["price_cents"] == 10200
    assert (await shop.client.patch(f"/api/admin/skus/{sku.id}", headers=shop.admin,
                                    json={"price_cents": 12000})).status_code == 200
    await _cost(shop, sim, 9000)
    assert (await _sku(shop, sku))["price_cents"] == 12000


async def test_a_push_cost_rise_applies_the_policy_too(shop, sim):
    sku = await _guarded_sku(shop, sim, policy="off_sale", margin_floor_cents=300)
    sim.set_cost(CARD_PRODUCT, 9900)
    [message] = sim.stock_push([sim.products[CARD_PRODUCT]])
    response = await shop.client.post("/api/suppliers/ACME/stock-callback", content=message.content,
                                      headers=message.headers)
    assert response.status_code == 200
    assert not (await _sku(shop, sku))["on_sale"]
    assert [entry[0] for entry in await _log(shop, sku)] == ["taken_off_sale"]


async def test_price_policy_input_is_checked(shop, sim):
    sku = await shop.make_sku(code="PLAIN")
    for body in ({"policy": "discount"}, {"policy": "reprice", "margin_floor_bps": 10000},
                 {"policy": "reprice", "margin_floor_cents": -1}, {"policy": "off_sale", "extra": 1}, {}):
        response = await shop.client.put(f"/api/admin/skus/{sku.id}/price-policy", headers=shop.admin, json=body)
        assert response.status_code == 422, (body, response.text)
    assert await shop.count(SkuPricePolicy) == 0
    missing = await shop.client.put("/api/admin/skus/999999/price-policy", headers=shop.admin,
                                    json={"policy": "off_sale"})
    assert missing.status_code == 404
    unset = await shop.client.get(f"/api/admin/skus/{sku.id}/price-policy", headers=shop.admin)
    assert unset.status_code == 404 and unset.json()["code"] == "price_policy_not_set"
    assert (await shop.client.delete(f"/api/admin/skus/{sku.id}/price-policy", headers=shop.admin)).status_code == 404
    bad_filter = await shop.client.get("/api/admin/supplier-price-changes?sku_id=abc", headers=shop.admin)
    assert bad_filter.status_code == 422


def _policy(**values) -> SkuPricePolicy:
    defaults = {"policy": PricePolicy.REPRICE, "margin_floor_cents": 0, "margin_floor_bps": 0, "markup_cents": 0,
                "markup_bps": 0}
    return SkuPricePolicy(**{**defaults, **values})


@given(cost=st.integers(0, 10**9), floor_cents=st.integers(0, 10**6), floor_bps=st.integers(0, 9999))
def test_minimum_price_is_the_lowest_price_that_keeps_the_floor(cost, floor_cents, floor_bps):
    policy = _policy(margin_floor_cents=floor_cents, margin_floor_bps=floor_bps)
    lowest = minimum_price(cost, policy)
    assert meets_floor(lowest, cost, policy)
    assert lowest == 0 or not meets_floor(lowest - 1, cost, policy)


async def test_deleting_a_guarded_sku_names_its_mapping_and_policy_and_then_its_price_log(shop, sim):
    sku = await _guarded_sku(shop, sim, policy="reprice", margin_floor_cents=300)
    answer = await shop.refused_delete(sku, {"supplier_mappings": 1, "price_policy": 1})
    assert f"DELETE /api/admin/skus/{sku.id}/price-policy" in answer["detail"]
    assert "DELETE /api/admin/supplier-mappings/{id}" in answer["detail"]

    await _cost(shop, sim, 9900)  # the policy reprices: a price-change record the shop keeps
    for path in (f"/api/admin/skus/{sku.id}/price-policy",
                 f"/api/admin/supplier-mappings/{(await _mapping_ids(shop, sku))[0]}"):
        assert (await shop.client.delete(path, headers=shop.admin)).status_code == 204, path
    answer = await shop.refused_delete(sku, {"supplier_price_changes": 1})
    assert "supplier price changes are records the shop keeps, so take the SKU off sale" in answer["detail"]


async def test_an_unguarded_sku_with_its_mapping_removed_can_be_deleted(shop, sim):
    sku = await _guarded_sku(shop, sim, policy="reprice", margin_floor_cents=300)
    assert (await shop.client.delete(f"/api/admin/skus/{sku.id}/price-policy", headers=shop.admin)).status_code == 204
    [mapping] = await _mapping_ids(shop, sku)
    assert (await shop.client.delete(f"/api/admin/supplier-mappings/{mapping}", headers=shop.admin)).status_code == 204
    assert (await shop.client.delete(f"/api/admin/skus/{sku.id}", headers=shop.admin)).status_code == 204


async def _mapping_ids(shop, sku):
    response = await shop.client.get(f"/api/admin/skus/{sku.id}/supplier-mappings", headers=shop.admin)
    assert response.status_code == 200
    return [m["id"] for m in response.json()]
