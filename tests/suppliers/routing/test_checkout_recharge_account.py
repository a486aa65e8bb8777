"""Checkout of direct-recharge SKUs: the account to credit is required there, validated, and refused for card keys."""

from __future__ import annotations

from helpers import with_csrf
from quanyi.suppliers.adapter import ProductKind
from quanyi.testpeers.suppliers import RECHARGE_PRODUCT
from suppliers.routing.support import add_supplier


async def _mapped_recharge_sku(shop, sims):  # type: ignore[no-untyped-def]
    sku = await shop.make_sku(delivery_type="direct_recharge", price_cents=5000)
    await add_supplier(shop, sims(seed=1), code="mobile", sku=sku, product_code=RECHARGE_PRODUCT,
                       kind=ProductKind.DIRECT_RECHARGE)
    return sku


async def _post(shop, sku_id, **extra):  # type: ignore[no-untyped-def]
    return await shop.client.post("/api/orders", json={"sku_id": sku_id, "contact": "a@example.com", **extra})


async def test_recharge_account_is_required_validated_and_normalized(shop, sims):
    sku = await _mapped_recharge_sku(shop, sims)
    missing = await _post(shop, sku.id)
    assert missing.status_code == 422 and missing.json()["code"] == "recharge_account_invalid"
    for bad in ("hello world", "12380013800", "x" * 129, "a\x00b", ""):
        answer = await _post(shop, sku.id, recharge_account=bad)
        assert answer.status_code == 422, (bad, answer.text)
    created = await _post(shop, sku.id, recharge_account="+86 138-0013-8000")
    assert created.status_code == 201, created.text
    assert created.json()["recharge_account_masked"] == "138****8000"
    assert created.json()["delivery_type"] == "direct_recharge"
    game = await _post(shop, sku.id, recharge_account="player_01")
    assert game.status_code == 201 and game.json()["recharge_account_masked"] == "pl***01"


async def test_card_key_skus_refuse_a_recharge_account_and_unmapped_recharge_skus_are_not_for_sale(shop, sims):
    card = await shop.make_sku()
    await shop.stock(card, 2)
    refused = await _post(shop, card.id, recharge_account="13800138000")
    assert refused.status_code == 422 and refused.json()["code"] == "recharge_account_invalid"
    assert await shop.available(card.id) == 2  # nothing reserved
    unmapped = await shop.make_sku(delivery_type="direct_recharge")
    answer = await _post(shop, unmapped.id, recharge_account="13800138000")
    assert answer.status_code == 409 and answer.json()["code"] == "sku_not_purchasable"


async def test_storefront_checkout_asks_for_the_account_of_a_recharge(shop, sims):
    sku = await _mapped_recharge_sku(shop, sims)
    page = await shop.client.get("/p/product-1")  # the first product made in this test
    assert page.status_code == 200 and 'name="recharge_account"' in page.text
    form = await with_csrf(shop.client, {"sku_id": str(sku.id), "quantity": "1", "contact": "a@example.com"})
    missing = await shop.client.post("/p/product-1/checkout", data=form)
    assert missing.status_code == 422 and 'data-testid="recharge-account-error"' in missing.text
    ok = await shop.client.post("/p/product-1/checkout", data={**form, "recharge_account": "13800138000"})
    assert ok.status_code == 303 and ok.headers["location"].startswith("/orders/")
