"""手动发货 products: orderable without stock, paid orders wait in the console's queue, staff deliver them by hand
through the manual delivery service, the buyer is told; the same order state machine as every other order."""

from __future__ import annotations

from console.support import logged_in, post_form
from quanyi.notifications import service as notifications_service
from quanyi.orders.access import COOKIE_NAME, cookie_with_token


async def test_a_manual_product_is_sold_queued_delivered_by_hand_and_the_buyer_told(shop, app, monkeypatch):
    told: list[str] = []
    real = notifications_service.on_order_delivered

    async def spy(**kwargs):  # type: ignore[no-untyped-def]
        told.append(kwargs["order"].order_no)
        return await real(**kwargs)

    monkeypatch.setattr(notifications_service, "on_order_delivered", spy)
    alerted: list[str] = []
    real_alert = notifications_service.on_awaiting_manual_delivery

    async def alert_spy(**kwargs):  # type: ignore[no-untyped-def]
        alerted.append(kwargs["order"].order_no)
        return await real_alert(**kwargs)

    monkeypatch.setattr(notifications_service, "on_awaiting_manual_delivery", alert_spy)
    sku = await shop.make_sku(code="BY-HAND-1", delivery_type="manual", price_cents=500)
    product = (await shop.client.get(f"/api/catalog/products/product-{sku.product_id}")).json()
    assert product["skus"][0]["stock"]["purchasable"] and product["skus"][0]["delivery_type"] == "manual"
    page = await shop.client.get(f"/p/product-{sku.product_id}")
    assert 'data-testid="manual-hint"' in page.text

    unpaid = await shop.create_order(sku.id, quantity=1, contact="other@example.com")
    cancelled = await shop.client.post(f"/api/orders/{unpaid['order_no']}/cancel", headers=shop.auth(unpaid))
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"

    order = await shop.create_order(sku.id, quantity=2)
    assert order["total_cents"] == 1000
    await shop.pay(order)
    view = await shop.get_order(order)
    assert view["status"] == "paid" and view["delivery_type"] == "manual"
    assert alerted == [order["order_no"]]  # the shop's group hears of it at payment, to deliver it
    # The buyer's order page (the order's access token in the buyer's cookie) says it is delivered by hand.
    shop.client.cookies.set(COOKIE_NAME, cookie_with_token(None, order["order_no"], order["access_token"]))
    try:
        buyer_page = await shop.client.get(f"/orders/{order['order_no']}")
    finally:
        shop.client.cookies.delete(COOKIE_NAME)
    assert buyer_page.status_code == 200 and "此商品由店家人工发货" in buyer_page.text

    client = await logged_in(shop, "hand", roles=("operator",))
    queue = await client.get("/console/fulfilment")
    assert queue.status_code == 200 and f'data-order="{order["order_no"]}"' in queue.text
    assert unpaid["order_no"] not in queue.text  # only paid orders wait
    url = f"/console/orders/{order['order_no']}"
    done = await post_form(client, f"{url}/deliver", {"codes": "GAME-ACCT-1 pw-1\nGAME-ACCT-2 pw-2"}, page_url=url)
    assert done.status_code == 303
    view = await shop.get_order(order)
    assert view["status"] == "delivered" and view["delivered_keys"] == 2
    assert sorted(k["card_no"] for k in await shop.reveal(order)) == ["GAME-ACCT-1", "GAME-ACCT-2"]
    queue = await client.get("/console/fulfilment")
    assert 'data-testid="fulfilment-empty"' in queue.text
    assert told == [order["order_no"]]  # the buyer's delivery message (e-mail/SMS when configured), once


async def test_a_merchants_queue_shows_only_its_own_manual_orders(shop, app):
    from merchants.support import admit

    sku = await shop.make_sku(code="BY-HAND-2", delivery_type="manual")
    order = await shop.create_order(sku.id)
    await shop.pay(order)
    tenant = await admit(shop, "acme2", permissions=("orders.fulfil", "orders.read"))
    from merchants.console_sweep import console_client

    client = await console_client(shop, tenant)
    try:
        queue = await client.get("/console/fulfilment")
        assert queue.status_code == 200 and order["order_no"] not in queue.text
    finally:
        await client.aclose()
