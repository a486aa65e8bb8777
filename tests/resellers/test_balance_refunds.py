"""Refunds of balance payments go through the ordinary refund path and credit the reseller's balance back:
an operator's refund of delivered card keys, never more than was paid; the reseller is told by a signed
callback through the outbox; the day's reconciliation finds the balance payments and refunds in order."""

from __future__ import annotations

import datetime as dt

import httpx
import pytest

from helpers import Shop, make_settings
from quanyi.notifications.models import Channel, OutboxMessage
from quanyi.notifications.worker import OutboxWorker
from quanyi.openapi_client import verify_callback
from quanyi.payments.reconciliation import reconcile_day
from quanyi.shoptime import shop_zone
from quanyi.testpeers.runner import serve_in_thread
from quanyi.testpeers.suppliers import CallbackSink
from resellers.support import add_reseller, balance_of, books_balanced


@pytest.fixture
def settings(database_url: str):
    return make_settings(database_url, refund_revealed_keys=True)


async def test_a_refund_of_delivered_keys_credits_the_balance_and_calls_back(shop: Shop):
    sink = CallbackSink()
    with serve_in_thread(sink.app) as url:
        sink.url = url
        sku = await shop.make_sku(code="GIFT-9", price_cents=900)
        await shop.stock(sku, 3)
        reseller = await add_reseller(shop, top_up_cents=5000, callback_url=sink.url + "/hook")
        order = await reseller.client.buy_card_keys("RF-1", "GIFT-9", quantity=3, max_unit_cost_cents=900)
        assert await balance_of(shop, "R001") == 5000 - 2700

        refund = await shop.client.post(f"/api/admin/orders/{order['order_no']}/refunds", headers=shop.admin,
                                        json={"quantity": 2, "reason": "two codes did not work"})
        assert refund.status_code == 201, refund.text
        assert refund.json()["status"] == "succeeded" and refund.json()["gateway"] == "balance"
        assert await balance_of(shop, "R001") == 5000 - 900
        too_much = await shop.client.post(f"/api/admin/orders/{order['order_no']}/refunds", headers=shop.admin,
                                          json={"quantity": 2, "reason": "again"})
        assert too_much.status_code in (409, 422), too_much.text
        looked = await reseller.client.order("RF-1")
        assert looked["refunded_cents"] == 1800 and len(looked["codes"]) == 1

        # The outbox sends the delivered and refunded callbacks, signed with the reseller's secret.
        assert await shop.count(OutboxMessage, OutboxMessage.channel == Channel.WEBHOOK.value) == 2
        assert await OutboxWorker(shop.ctx).run_once() == 2
        received = [verify_callback(reseller.secret, app_id=reseller.app_id, headers=c.headers, body=c.body)
                    for c in sink.received]
        assert {(e["type"], e["data"]["state"], e["data"]["refunded_cents"]) for e in received} >= {
            ("order.updated", "succeeded", 1800), ("order.refunded", "succeeded", 1800)}

        today = dt.datetime.now(shop_zone(shop.ctx.settings.shop_timezone)).date()
        report = await reconcile_day(db=shop.ctx.db, gateways=shop.ctx.gateways, day=today,
                                     timezone=shop.ctx.settings.shop_timezone)
        assert report.payments_checked == 1 and report.refunds_checked == 1 and report.mismatches == []
        await books_balanced(shop)


async def test_the_balance_gateway_is_never_offered_to_buyers(shop: Shop, stocked_sku):
    order = await shop.create_order(stocked_sku.id)
    response = await shop.client.post(f"/api/orders/{order['order_no']}/payments", headers=shop.auth(order),
                                      json={"gateway": "balance"})
    assert response.status_code == 404 and response.json()["code"] == "unknown_gateway"
    notify = await shop.client.post("/payments/balance/notify", content=b"x")
    assert notify.status_code == 404
    assert isinstance(shop.client, httpx.AsyncClient)
