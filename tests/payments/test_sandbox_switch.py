"""A shop taking real orders has the sandbox switched off: no sandbox payment, cashier, API or notification."""

from __future__ import annotations

import pytest

from helpers import make_settings, signed_notification
from quanyi.orders.models import Order


@pytest.fixture
def settings(database_url):  # type: ignore[no-untyped-def]
    return make_settings(database_url, sandbox_enabled=False)


async def test_without_the_sandbox_nothing_can_be_paid_for_free(shop, client, stocked_sku):
    assert shop.ctx.gateways.names() == []
    order = await shop.create_order(stocked_sku.id)
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
