"""Coupon kinds, thresholds, caps, scopes, windows and stacking, through the quote API and real checkouts."""

from __future__ import annotations

from sqlalchemy import select

from coupons.support import coupon, make_coupon, try_order, window
from merchants.support import admit
from quanyi.catalog.models import Product


async def _quote(shop, sku_id, quantity=1, **extra):
    return await shop.client.post("/api/pricing/quote", json={"sku_id": sku_id, "quantity": quantity, **extra})


async def test_a_public_code_takes_its_amount_off_and_is_counted_until_used_up(shop, stocked_sku):
    made = await make_coupon(shop, name="满10减3", threshold_cents=1000, amount_off_cents=300, total_quantity=2,
                             code="save-3")
    assert made["code"] == "SAVE3" and made["taken_count"] == 0
    quote = (await _quote(shop, stocked_sku.id, 2, coupon_codes=["save 3"])).json()
    assert (quote["subtotal_cents"], quote["coupon_discount_cents"], quote["payable_cents"]) == (3960, 300, 3660)
    assert quote["coupons"][0]["name"] == "满10减3"
    first = await try_order(shop, stocked_sku.id, 2, coupon_codes=["Save-3"])
    assert first.status_code == 201, first.text
    assert (first.json()["total_cents"], first.json()["coupon_discount_cents"]) == (3660, 300)
    assert (await try_order(shop, stocked_sku.id, coupon_codes=["SAVE3"])).status_code == 201
    refused = await try_order(shop, stocked_sku.id, coupon_codes=["SAVE3"])
    assert refused.status_code == 409 and refused.json()["code"] == "coupon_sold_out"
    assert (await coupon(shop, made["id"]))["taken_count"] == 2
    assert await shop.available(stocked_sku.id) == 7  # the refused checkout holds no stock
    # The buyer cancels: the use goes back and someone else may have it.
    cancel = await shop.client.post(f"/api/orders/{first.json()['order_no']}/cancel", headers=shop.auth(first.json()))
    assert cancel.status_code == 200
    after = await coupon(shop, made["id"])
    assert after["taken_count"] == 1 and after["usage"] == {"released": 1, "reserved": 1}
    assert (await try_order(shop, stocked_sku.id, coupon_codes=["SAVE3"])).status_code == 201


async def test_threshold_unknown_code_and_bad_input_are_clear_4xx_that_change_nothing(shop, stocked_sku):
    await make_coupon(shop, threshold_cents=5000, code="BIG")
    below = await try_order(shop, stocked_sku.id, 2, coupon_codes=["BIG"])
    assert below.status_code == 409 and below.json()["reason"] == "threshold_not_met"
    unknown = await try_order(shop, stocked_sku.id, coupon_codes=["NOPE"])
    assert unknown.status_code == 404 and unknown.json()["code"] == "coupon_not_found"
    for bad in (["<script>"], ["A" * 41], ["A", "B", "C", "D"], "BIG"):
        response = await try_order(shop, stocked_sku.id, coupon_codes=bad)
        assert response.status_code == 422, (bad, response.text)
    assert await shop.available(stocked_sku.id) == 10
    assert (await _quote(shop, stocked_sku.id, 3, coupon_codes=["BIG"])).json()["payable_cents"] == 5640


async def test_percent_off_rounds_half_up_and_stops_at_its_cap(shop):
    sku = await shop.make_sku(price_cents=333, max_quantity=100)
    await make_coupon(shop, kind="percent_off", amount_off_cents=None, percent_off_bps=1500, max_discount_cents=500,
                      code="PCT15")
    one = (await _quote(shop, sku.id, 1, coupon_codes=["PCT15"])).json()
    assert one["coupon_discount_cents"] == 50  # 15 % of 3.33 = 0.4995... no: 49.95 cents -> 50 (half-up)
    capped = (await _quote(shop, sku.id, 20, coupon_codes=["PCT15"])).json()
    assert capped["coupon_discount_cents"] == 500 and capped["payable_cents"] == 6660 - 500


async def test_a_fixed_price_coupon_prices_the_skus_in_its_scope_only(shop, stocked_sku):
    other = await shop.make_sku()
    await make_coupon(shop, kind="fixed_price", amount_off_cents=None, fixed_price_cents=990, code="ONE99",
                      targets=[{"kind": "sku", "id": stocked_sku.id}])
    fixed = (await _quote(shop, stocked_sku.id, 3, coupon_codes=["ONE99"])).json()
    assert (fixed["coupon_discount_cents"], fixed["payable_cents"]) == (2970, 2970)
    elsewhere = await _quote(shop, other.id, 1, coupon_codes=["ONE99"])
    assert elsewhere.status_code == 409 and elsewhere.json()["reason"] == "out_of_scope"
    category_id = await shop.scalar(select(Product.category_id).where(Product.id == other.product_id))
    by_category = await make_coupon(shop, code="CAT1", targets=[{"kind": "category", "id": category_id}])
    assert by_category["targets"] == [{"kind": "category", "id": category_id}]
    assert (await _quote(shop, other.id, 1, coupon_codes=["CAT1"])).status_code == 200
    assert (await _quote(shop, stocked_sku.id, 1, coupon_codes=["CAT1"])).json()["reason"] == "out_of_scope"


async def test_window_pause_and_stacking_rules(shop, stocked_sku):
    await make_coupon(shop, code="LATER", **window(days_before=-1, days_after=2))
    assert (await _quote(shop, stocked_sku.id, coupon_codes=["LATER"])).json()["reason"] == "not_started"
    paused = await make_coupon(shop, code="PAUSED")
    await shop.client.patch(f"/api/admin/coupons/{paused['id']}", json={"active": False}, headers=shop.admin)
    assert (await _quote(shop, stocked_sku.id, coupon_codes=["PAUSED"])).json()["reason"] == "inactive"
    await make_coupon(shop, code="SOLO")
    await make_coupon(shop, code="STACKA", amount_off_cents=100, stackable=True)
    await make_coupon(shop, code="STACKP", kind="percent_off", amount_off_cents=None, percent_off_bps=1000,
                      stackable=True)
    alone = await _quote(shop, stocked_sku.id, coupon_codes=["SOLO", "STACKA"])
    assert alone.status_code == 409 and alone.json()["reason"] == "not_stackable"
    twice = await _quote(shop, stocked_sku.id, coupon_codes=["STACKA", "stack-a"])
    assert twice.json()["reason"] == "duplicate"
    both = (await _quote(shop, stocked_sku.id, coupon_codes=["STACKP", "STACKA"])).json()
    # Amounts off first, then the percentage of what is left: 1980 - 100 = 1880, 10 % = 188.
    assert [c["amount_cents"] for c in both["coupons"]] == [100, 188] and both["payable_cents"] == 1692
    order = await try_order(shop, stocked_sku.id, coupon_codes=["STACKP", "STACKA"])
    assert order.status_code == 201 and order.json()["total_cents"] == 1692


async def test_a_coupon_never_makes_an_order_free(shop, stocked_sku):
    await make_coupon(shop, code="HUGE", amount_off_cents=1_000_000)
    order = await try_order(shop, stocked_sku.id, coupon_codes=["HUGE"])
    assert order.status_code == 201 and order.json()["total_cents"] == 1
    assert order.json()["coupon_discount_cents"] == 1979


async def test_bad_coupon_definitions_are_refused(shop, stocked_sku):
    base = {"name": "x", "distribution": "code", "code": "X1", **window()}
    for body in ({**base, "kind": "amount_off"},  # no amount
                 {**base, "kind": "percent_off", "percent_off_bps": 10000},
                 {**base, "kind": "amount_off", "amount_off_cents": 1, "percent_off_bps": 5},
                 {**base, "kind": "amount_off", "amount_off_cents": 1, "code": None},
                 {**base, "kind": "amount_off", "amount_off_cents": 1, "ends_at": base["starts_at"]},
                 {**base, "kind": "amount_off", "amount_off_cents": 1, "targets": [{"kind": "sku", "id": 999999}]},
                 {**base, "kind": "amount_off", "amount_off_cents": 1, "merchant_code": "nobody"}):
        response = await shop.client.post("/api/admin/coupons", json=body, headers=shop.admin)
        assert response.status_code in (404, 422), (body, response.text)
    await make_coupon(shop, code="TAKEN")
    clash = await shop.client.post("/api/admin/coupons", json={**base, "kind": "amount_off", "amount_off_cents": 1,
                                                               "code": "taken"}, headers=shop.admin)
    assert clash.status_code == 422 and clash.json()["code"] == "invalid_coupon"
    assert (await shop.client.get("/api/admin/coupons")).status_code == 401


async def test_a_merchants_coupon_pays_for_that_merchants_goods_only(shop, stocked_sku):
    tenant = await admit(shop, "coupon-shop")
    theirs = await shop.client.post("/api/admin/products", headers=tenant.headers, json={
        "category_id": await shop.scalar(select(Product.category_id).where(Product.id == stocked_sku.product_id)),
        "slug": "their-card", "name": "Their card",
        "skus": [{"code": "THEIRS-1", "name": "Monthly", "price_cents": 5000}]})
    assert theirs.status_code == 201, theirs.text
    their_sku = theirs.json()["skus"][0]["id"]
    made = await shop.client.post("/api/admin/coupons", headers=tenant.headers, json={
        "name": "Their coupon", "kind": "amount_off", "amount_off_cents": 700, "distribution": "code",
        "code": "THEIRS7", **window()})
    assert made.status_code == 201 and made.json()["merchant_id"] == tenant.merchant_id
    await make_coupon(shop, code="PLATFORM1")
    assert (await _quote(shop, their_sku, coupon_codes=["THEIRS7"])).json()["payable_cents"] == 4300
    mine = await _quote(shop, stocked_sku.id, coupon_codes=["THEIRS7"])
    assert mine.status_code == 409 and mine.json()["reason"] == "other_merchant"
    assert (await _quote(shop, their_sku, coupon_codes=["PLATFORM1"])).json()["reason"] == "other_merchant"
    # A merchant's staff see their own coupons only, and cannot scope a coupon to another merchant's goods.
    listed = (await shop.client.get("/api/admin/coupons", headers=tenant.headers)).json()
    assert [c["code"] for c in listed] == ["THEIRS7"]
    foreign = await shop.client.post("/api/admin/coupons", headers=tenant.headers, json={
        "name": "x", "kind": "amount_off", "amount_off_cents": 1, "distribution": "claim", **window(),
        "targets": [{"kind": "sku", "id": stocked_sku.id}]})
    assert foreign.status_code == 422
