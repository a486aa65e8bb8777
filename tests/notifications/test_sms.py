"""Buyer delivery SMS through the Aliyun-style signed API, received and verified by the SMS simulator."""

from __future__ import annotations

import re

from notifications.support import outbox
from quanyi.notifications import outbox as outbox_service
from quanyi.notifications.aliyun import rpc_signature
from quanyi.notifications.models import OutboxMessage
from quanyi.notifications.senders import AliyunSmsSender
from quanyi.notifications.worker import OutboxWorker


def test_signature_matches_the_example_in_aliyuns_documentation():
    # The worked example of Aliyun SMS "HTTP 协议及签名" (GET, AccessKeySecret "testSecret").
    params = {
        "AccessKeyId": "testId", "Action": "SendSms", "Format": "XML", "OutId": "123",
        "PhoneNumbers": "15300000001", "RegionId": "cn-hangzhou", "SignName": "阿里云短信测试专用",
        "SignatureMethod": "HMAC-SHA1", "SignatureNonce": "45e25e9b-0a6f-4070-8c85-2956eda1b466",
        "SignatureVersion": "1.0", "TemplateCode": "SMS_71390007", "TemplateParam": '{"customer":"test"}',
        "Timestamp": "2017-07-12T02:42:19Z", "Version": "2017-05-25",
    }
    assert rpc_signature("GET", params, "testSecret") == "zJDF+Lrzhj/ThnlvIToysFRq6t4="


async def test_phone_buyer_gets_a_signed_sms_with_the_order_link(shop, sms, smtp, worker, stocked_sku):
    order = await shop.create_order(stocked_sku.id, contact="+86 138-0013-8000")
    await shop.pay(order)
    await worker.drain()
    assert smtp.messages == []  # a phone contact gets no e-mail
    assert sms.rejected == []
    [record] = sms.messages
    [row] = await outbox(shop, OutboxMessage.channel == "sms")
    assert record.phone == "13800138000" and record.sign_name == "权益商城"
    assert record.template_code == "SMS_900001"
    assert record.out_id == outbox_service.idempotency_key(row)  # the idempotency key travels as OutId
    link = record.params["link"]
    assert re.fullmatch(rf"http://test/orders/{order['order_no']}/open#t=[0-9a-z]+\.[A-Za-z0-9_-]{{24}}", link)
    assert record.params == {"order_no": order["order_no"], "product": "Video VIP 1", "link": link}
    assert record.text == f"【权益商城】您的订单{order['order_no']}（Video VIP 1）已发货，请打开 {link} 查看卡密。"
    assert row.status == "sent" and row.provider_message_id == record.biz_id


async def test_english_orders_use_the_english_template(shop, sms, worker, stocked_sku):
    order = await shop.create_order(stocked_sku.id, contact="+4915112345678", locale="en")
    await shop.pay(order)
    await worker.drain()
    [record] = sms.messages
    assert record.template_code == "SMS_900002" and record.phone == "+4915112345678"
    assert record.text.startswith(f"【权益商城】Your order {order['order_no']} (Video VIP 1) is delivered.")


async def test_a_wrongly_signed_request_is_refused_and_the_message_is_dead(shop, sms, stocked_sku):
    order = await shop.create_order(stocked_sku.id, contact="13800138000")
    await shop.pay(order)
    forger = AliyunSmsSender(http=shop.ctx.http, api_url=shop.ctx.settings.sms_api_url,
                             access_key_id=sms.access_key_id, access_key_secret="not-the-secret",
                             sign_name=sms.sign_name)
    worker = OutboxWorker(shop.ctx, senders={**OutboxWorker(shop.ctx).senders, forger.channel: forger})
    await worker.drain()
    assert sms.messages == [] and sms.rejected == ["SignatureDoesNotMatch"]
    [row] = await outbox(shop, OutboxMessage.channel == "sms")
    assert row.status == "dead" and row.attempts == 1 and "SignatureDoesNotMatch" in row.last_error


async def test_provider_outage_is_retried(shop, sms, worker, stocked_sku):
    sms.fail_next = 2
    order = await shop.create_order(stocked_sku.id, contact="13800138000")
    await shop.pay(order)
    await worker.drain()
    [record] = sms.messages
    [row] = await outbox(shop, OutboxMessage.channel == "sms")
    assert row.status == "sent" and row.attempts == 3 and record.out_id == outbox_service.idempotency_key(row)
