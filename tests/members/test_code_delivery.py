"""Sign-in codes go out through the notification channels: by SMS with the shop's one code template (the
Aliyun-protocol simulator), by e-mail with their own wording (sign in / add a contact, zh-CN and en)."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from zoneinfo import ZoneInfo

import pytest

from helpers import make_settings
from quanyi.notifications.rendering import render_email, sms_template_text
from quanyi.notifications.worker import OutboxWorker
from quanyi.testpeers.runner import serve_in_thread
from quanyi.testpeers.sms import SmsSimulator

PHONE = "13800138000"
CODE_TEMPLATE = "SMS_920002"


@pytest.fixture(scope="module")
def sms_server() -> Iterator[tuple[SmsSimulator, str]]:
    simulator = SmsSimulator(
        access_key_id="LTAI" + secrets.token_hex(6), access_key_secret=secrets.token_urlsafe(20), sign_name="权益商城",
        templates={CODE_TEMPLATE: sms_template_text("verification_code", "zh-CN")})
    with serve_in_thread(simulator.app) as url:
        yield simulator, url + "/"


@pytest.fixture
def settings(database_url: str, sms_server):
    simulator, url = sms_server
    simulator.reset()
    return make_settings(database_url, sms_api_url=url, sms_access_key_id=simulator.access_key_id,
                         sms_access_key_secret=simulator.access_key_secret, sms_sign_name=simulator.sign_name,
                         sms_template_verification_code=CODE_TEMPLATE, notification_backoff_seconds=0.0)


async def test_a_phone_buyer_signs_up_with_the_code_sent_by_sms(shop, client, sms_server):
    simulator, _ = sms_server
    sent = await client.post("/api/members/codes", json={"contact": "+86 138-0013-8000"})
    assert sent.status_code == 202 and sent.json()["channel"] == "sms"
    await OutboxWorker(shop.ctx, owner="test-worker").drain()
    assert simulator.rejected == []
    [record] = simulator.messages
    assert record.phone == PHONE and record.template_code == CODE_TEMPLATE
    code = record.params["code"]
    assert record.text == f"【权益商城】您的验证码为{code}，10分钟内有效，请勿泄露。"  # no word of an order
    signed = await client.post("/api/members/sessions", json={"code_id": sent.json()["code_id"], "code": code})
    assert signed.status_code == 201 and signed.json()["member"]["phone"] == PHONE
    # This shop sends no e-mail: asking for an e-mail code says so (the same for every e-mail address).
    refused = await client.post("/api/members/codes", json={"contact": "someone@example.com"})
    assert refused.status_code == 403 and refused.json()["code"] == "verification_unavailable"


@pytest.mark.parametrize("locale, purpose, subject, phrase", [
    ("zh-CN", "sign_in", "权益商城 登录验证码 123456", "您正在登录（或注册）权益商城 会员账号"),
    ("en", "sign_in", "Your 权益商城 sign-in code: 123456", "signing in to (or creating) your 权益商城 account"),
    ("zh-CN", "add_contact", "权益商城 绑定验证码 123456", "绑定到 权益商城 的会员账号"),
    ("en", "add_contact", "Your 权益商城 confirmation code: 123456", "adding this address to your 权益商城 account"),
])
def test_code_emails_say_what_the_code_is_for(locale, purpose, subject, phrase):
    mail = render_email("member_code", locale, {"code": "123456", "minutes": 10, "purpose": purpose},
                        shop_name="权益商城", order_url="", keys=None, zone=ZoneInfo("Asia/Shanghai"))
    assert mail.subject == subject
    assert phrase in mail.text and "123456" in mail.text and "123456" in mail.html
    assert "订单" not in mail.text and "order" not in mail.text.lower()
