"""Placing orders: price snapshot, stock reservation, limits, access control, cancellation."""

from __future__ import annotations

from sqlalchemy import select

from quanyi.inventory.models import CardKey, CardKeyStatus, KeyReveal
from quanyi.orders.models import Order


async def test_order_reserves_stock_and_snapshots_the_price(shop, stocked_sku):
    order = await shop.create_order(stocked_sku.id, quantity=3, contact="Buyer@Example.com")
    assert order["status"] == "pending_payment"
    assert (order["unit_price_cents"], order["quantity"], order["total_cents"]) == (1980, 3, 5940)
    assert order["total_display"] == "¥59.40"
    assert order["contact_masked"] == "b***@example.com"
    assert await shop.available(stocked_sku.id) == 7
    assert await shop.count(CardKey, CardKey.status == CardKeyStatus.RESERVED) == 3

    # A later price change does not touch the order already placed.
    response = await shop.client.patch(f"/api/admin/skus/{stocked_sku.id}", json={"price_cents": 2500},
                                       headers=shop.admin)
    assert response.status_code == 200
    assert (await shop.get_order(order))["total_cents"] == 5940


async def test_sold_out_order_is_refused_and_leaves_nothing_behind(shop, sku):
    await shop.stock(sku, 2)
    response = await shop.client.post("/api/orders", json={"sku_id": sku.id, "quantity": 3,
                                                           "contact": "a@example.com"})
    assert response.status_code == 409
    body = response.json()
    assert body["code"] == "sold_out" and body["available"] == 2 and body["requested"] == 3
    assert await shop.count(Order) == 0
    assert await shop.available(sku.id) == 2


async def test_a_sku_with_no_stock_reads_as_sold_out(shop, sku):
    response = await shop.client.get("/api/catalog/products/product-1")
    state = response.json()["skus"][0]["stock"]
    assert state == {"available": 0, "purchasable": False, "status": "sold_out"}
    refused = await shop.client.post("/api/orders", json={"sku_id": sku.id, "contact": "a@example.com"})
    assert refused.status_code == 409 and refused.json()["code"] == "sold_out"


async def test_quantity_outside_the_sku_limits_is_refused(shop):
    sku = await shop.make_sku(min_quantity=2, max_quantity=4)
    await shop.stock(sku, 10)
    for quantity in (1, 5):
        response = await shop.client.post("/api/orders", json={"sku_id": sku.id, "quantity": quantity,
                                                               "contact": "a@example.com"})
        assert response.status_code == 422
        assert response.json()["code"] == "quantity_out_of_range"
    assert await shop.count(Order) == 0


async def test_off_sale_and_direct_recharge_skus_cannot_be_ordered(shop):
    off = await shop.make_sku(on_sale=False)
    await shop.stock(off, 3)
    direct = await shop.make_sku(delivery_type="direct_recharge")
    for sku_id in (off.id, direct.id):
        response = await shop.client.post("/api/orders", json={"sku_id": sku_id, "contact": "a@example.com"})
        assert response.status_code == 409
        assert response.json()["code"] == "sku_not_purchasable"
    assert await shop.count(Order) == 0


async def test_unknown_sku_is_404(shop):
    response = await shop.client.post("/api/orders", json={"sku_id": 999, "contact": "a@example.com"})
    assert response.status_code == 404 and response.json()["code"] == "sku_not_found"


async def test_contact_must_be_an_email_or_mobile(shop, stocked_sku):
    for contact in ("", "not-an-email", "12345", "a@b", "x" * 300 + "@example.com"):
        response = await shop.client.post("/api/orders", json={"sku_id": stocked_sku.id, "contact": contact})
        assert response.status_code == 422, contact
        assert response.json()["errors"][0]["field"] == "body.contact"
    for contact in ("+86 138-0013-8000", "13800138000", "+4915112345678"):
        await shop.create_order(stocked_sku.id, contact=contact)


async def test_order_numbers_are_not_sequential(shop, stocked_sku):
    numbers = [(await shop.create_order(stocked_sku.id))["order_no"] for _ in range(5)]
    assert len(set(numbers)) == 5
    suffixes = sorted(n[6:] for n in numbers)
    assert suffixes != [f"{i:08d}" for i in range(1, 6)]


async def test_order_is_only_readable_with_its_token(shop, order, stocked_sku):
    other = await shop.create_order(stocked_sku.id)
    wrong = await shop.client.get(f"/api/orders/{order['order_no']}", headers=shop.auth(other))
    missing = await shop.client.get(f"/api/orders/{order['order_no']}")
    unknown = await shop.client.get("/api/orders/261125AAAAAAAA", headers=shop.auth(order))
    assert wrong.status_code == missing.status_code == unknown.status_code == 401
    assert wrong.json()["detail"] == unknown.json()["detail"]  # no hint whether the order exists
    reveal = await shop.client.post(f"/api/orders/{order['order_no']}/reveal", headers=shop.auth(other))
    assert reveal.status_code == 401


async def test_buyer_cancels_and_the_stock_returns(shop, stocked_sku):
    order = await shop.create_order(stocked_sku.id, quantity=4)
    assert await shop.available(stocked_sku.id) == 6
    response = await shop.client.post(f"/api/orders/{order['order_no']}/cancel", headers=shop.auth(order))
    assert response.status_code == 200 and response.json()["status"] == "cancelled"
    assert await shop.available(stocked_sku.id) == 10
    again = await shop.client.post(f"/api/orders/{order['order_no']}/cancel", headers=shop.auth(order))
    assert again.status_code == 409 and again.json()["code"] == "illegal_transition"


async def test_delivered_order_cannot_be_cancelled(shop, paid_order):
    response = await shop.client.post(f"/api/orders/{paid_order['order_no']}/cancel", headers=shop.auth(paid_order))
    assert response.status_code == 409
    assert (await shop.get_order(paid_order))["status"] == "delivered"


async def test_reveal_before_delivery_is_refused(shop, order):
    response = await shop.client.post(f"/api/orders/{order['order_no']}/reveal", headers=shop.auth(order))
    assert response.status_code == 409 and response.json()["code"] == "order_not_delivered"
    assert response.json()["order_status"] == "pending_payment"
    assert await shop.count(KeyReveal) == 0  # nothing shown, nothing audited


async def test_reveal_returns_the_codes_and_the_guide_and_is_audited(shop, sku):
    codes = set(await shop.stock(sku, 3))
    order = await shop.create_order(sku.id, quantity=2)
    await shop.pay(order)
    response = await shop.client.post(f"/api/orders/{order['order_no']}/reveal", headers={
        **shop.auth(order), "User-Agent": "pytest-browser/1.0"})
    body = response.json()
    assert {k["code"] for k in body["keys"]} <= codes and len(body["keys"]) == 2
    assert "<li>Open the app</li>" in body["redemption_guide_html"]
    await shop.reveal(order)
    assert await shop.count(KeyReveal) == 4  # two keys, revealed twice
    assert await shop.scalar(select(KeyReveal.user_agent).limit(1)) == "pytest-browser/1.0"
    async with shop.ctx.db.read_session() as session:
        order_id = await session.scalar(select(Order.id).where(Order.order_no == order["order_no"]))
        sold = set((await session.scalars(select(CardKey.id).where(CardKey.order_id == order_id))).all())
        audited = (await session.execute(select(KeyReveal.card_key_id, KeyReveal.order_id, KeyReveal.channel))).all()
    assert sorted(audited) == sorted([(key_id, order_id, "api") for key_id in sold] * 2)  # one row per key shown
