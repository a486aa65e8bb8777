"""A shop taking real orders has the sandbox switched off: no sandbox payment, cashier, API or notification."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from helpers import make_settings, signed_notification, with_csrf
from quanyi.catalog.models import Product
from quanyi.orders.models import Order
from quanyi.payments.sandbox.gateway import SandboxGateway


@pytest.fixture
def settings(database_url):  # type: ignore[no-untyped-def]
    return make_settings(database_url, sandbox_enabled=False)


async def test_without_any_gateway_no_order_is_placed(shop, client, stocked_sku):
    response = await client.post("/api/orders", json={"sku_id": stocked_sku.id, "quantity": 1,
                                                      "contact": "a@example.com"})
    assert response.status_code == 503 and response.json()["code"] == "no_payment_method"
    slug = await shop.scalar(select(Product.slug).where(Product.id == stocked_sku.product_id))
    page = await client.post(f"/p/{slug}/checkout", headers={"Accept": "text/html"},
                             data=await with_csrf(client, {"sku_id": str(stocked_sku.id), "quantity": "1",
                                                          "contact": "a@example.com"}))
    assert page.status_code == 503 and "店铺暂未开通支付方式" in page.text
    assert await shop.count(Order) == 0
    assert await shop.available(stocked_sku.id) == 10  # nothing reserved


async def test_without_the_sandbox_nothing_can_be_paid_for_free(shop, client, stocked_sku):
    assert shop.ctx.gateways.names() == []
    shop.ctx.gateways.register(SandboxGateway(secret="another-secret-" + "9" * 20))  # only to place the order
    order = await shop.create_order(stocked_sku.id)
    shop.ctx.gateways.unregister("sandbox")
    start = await client.post(f"/api/orders/{order['order_no']}/payments", headers=shop.auth(order),
                              json={"gateway": "sandbox"})
    assert start.status_code == 404 and start.json()["code"] == "unknown_gateway"

    forged = signed_notification(shop.sandbox_secret, payment_no="PY" + "0" * 18, amount_cents=1980, currency="CNY")
    notify = await client.post("/payments/sandbox/notify", data=forged)
    assert notify.status_code == 404
    for path in ("/sandbox/cashier?t=x", "/sandbox/api/trade/query"):
        response = await (client.get(path) if "cashier" in path else client.post(path, data={}))
        assert response.status_code == 404, path
    assert (await shop.get_order(order))["status"] == "pending_payment"
    assert await shop.count(Order) == 1
    # The buyer who finds the order sees why it cannot be paid instead of an empty choice of gateways.
    found = await client.post("/lookup", headers={"Accept": "text/html"},
                              data=await with_csrf(client, {"order_no": order["order_no"],
                                                            "contact": "buyer@example.com"}))
    assert found.status_code == 303
    page = await client.get(f"/orders/{order['order_no']}", headers={"Accept": "text/html"})
    assert "店铺暂未开通支付方式" in page.text and 'data-testid="pay"' not in page.text
