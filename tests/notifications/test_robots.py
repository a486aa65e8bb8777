"""Merchant alerts to the WeCom and DingTalk group robots (documented JSON, DingTalk's HMAC signature):
new paid order, delivery failure, low stock (once per crossing), risk hold."""

from __future__ import annotations

import base64
import hashlib
import hmac
from urllib.parse import parse_qs, urlsplit

from notifications.support import outbox
from quanyi.notifications import service as notifications_service
from quanyi.notifications.models import OutboxMessage
from quanyi.notifications.senders import DingTalkRobotSender, dingtalk_sign
from quanyi.notifications.worker import OutboxWorker
from quanyi.orders import service as orders_service


def test_dingtalk_sign_follows_the_documented_recipe():
    secret, timestamp = "SEC0123456789abcdef", 1_700_000_000_000
    expected = base64.b64encode(hmac.new(secret.encode(), f"{timestamp}\n{secret}".encode(),
                                         hashlib.sha256).digest()).decode()
    assert dingtalk_sign(secret, timestamp) == expected
    sender = DingTalkRobotSender(http=None, webhook_url="https://oapi.dingtalk.com/robot/send?access_token=abc",
                                 secret=secret)
    query = parse_qs(urlsplit(sender.signed_url(timestamp_ms=timestamp)).query)
    # parse_qs undoes the URL-encoding: '+', '/' and '=' of the base64 survive the trip.
    assert query == {"access_token": ["abc"], "timestamp": [str(timestamp)], "sign": [expected]}


async def test_new_paid_order_alert_reaches_both_robots(shop, robots, worker, stocked_sku):
    order = await shop.create_order(stocked_sku.id, quantity=2, contact="alice@example.com")
    await shop.pay(order)
    await worker.drain()
    assert robots.rejected == []
    [wecom] = robots.of("wecom")
    [dingtalk] = robots.of("dingtalk")
    assert dingtalk.title == "新订单已支付"
    for text in (wecom.text, dingtalk.text):
        assert text.startswith("### 新订单已支付")
        assert order["order_no"] in text and "× 2" in text and "**¥39.60**" in text
        assert "a***@example.com" in text and "alice@example.com" not in text  # the buyer stays masked


async def test_merchant_alerts_follow_the_merchant_locale(shop, robots, worker, stocked_sku):
    shop.ctx.settings.default_locale = "en"
    notifications_service.install_policy(shop.ctx.db, shop.ctx.settings)
    order = await shop.create_order(stocked_sku.id, locale="zh-CN")
    await shop.pay(order)
    await worker.drain()
    [dingtalk] = robots.of("dingtalk")
    assert dingtalk.title == "New paid order" and "Amount: **¥19.80**" in dingtalk.text


async def test_paid_but_out_of_stock_alerts_delivery_failure(shop, robots, worker):
    sku = await shop.make_sku()
    await shop.stock(sku, 1)
    first = await shop.create_order(sku.id)
    payment = await shop.start_payment(first)
    cancelled = await shop.client.post(f"/api/orders/{first['order_no']}/cancel", headers=shop.auth(first))
    assert cancelled.status_code == 200
    await shop.create_order(sku.id)  # takes the only key
    late = await shop.notify(shop.notification(payment))  # the cancelled order is paid after all: no stock left
    assert late.status_code == 200
    assert (await shop.get_order(first))["status"] == "refund_pending"
    await worker.drain()
    failures = [m for m in robots.messages if "发货失败" in m.text]
    assert {m.channel for m in failures} == {"wecom", "dingtalk"} and len(failures) == 2
    assert all(first["order_no"] in m.text and "out of stock" in m.text for m in failures)
    assert not any("新订单已支付" in m.text for m in robots.messages)


async def test_low_stock_alerts_once_when_stock_crosses_the_threshold(shop, robots, worker):
    shop.ctx.settings.low_stock_threshold = 3
    notifications_service.install_policy(shop.ctx.db, shop.ctx.settings)
    sku = await shop.make_sku(code="LOW-1M")
    await shop.stock(sku, 5)
    for _ in range(4):  # 5 -> 4 -> 3 -> 2 (crosses below 3) -> 1
        await shop.create_order(sku.id)
    await worker.drain()
    low = [m for m in robots.messages if "库存不足" in m.text]
    assert len(low) == 2 and {m.channel for m in low} == {"wecom", "dingtalk"}
    assert "LOW-1M" in low[0].text and "**2**" in low[0].text and "低于 3" in low[0].text


async def test_risk_hold_alert(shop, robots, worker, order):
    async with shop.ctx.db.transaction() as session:
        loaded = await orders_service.get_order(session=session, order_no=order["order_no"])
        await notifications_service.on_risk_hold(session=session, order=loaded, reason="5 orders from one IP in 1 min")
    await worker.drain()
    assert len(robots.messages) == 2
    assert all("风控" in m.text and "5 orders from one IP" in m.text for m in robots.messages)


async def test_dingtalk_with_a_wrong_secret_is_refused_and_retried(shop, robots, stocked_sku):
    forger = DingTalkRobotSender(http=shop.ctx.http, webhook_url=shop.ctx.settings.dingtalk_webhook_url,
                                 secret="SEC-wrong")
    shop.ctx.settings.notification_max_attempts = 2
    worker = OutboxWorker(shop.ctx, senders={**OutboxWorker(shop.ctx).senders, forger.channel: forger})
    order = await shop.create_order(stocked_sku.id)
    await shop.pay(order)
    await worker.drain()
    assert robots.of("dingtalk") == [] and robots.rejected == [("dingtalk", 310000)] * 2
    [row] = await outbox(shop, OutboxMessage.channel == "dingtalk")
    assert row.status == "dead" and row.attempts == 2 and "errcode=310000" in row.last_error
    assert len(robots.of("wecom")) == 1
