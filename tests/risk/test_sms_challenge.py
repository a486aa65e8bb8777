"""The one-time code by SMS: a phone buyer on a shop with SMS configured gets the code through the outbox
and the SMS provider (the Aliyun-protocol simulator), and completes checkout with it."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Iterator

import pytest
from sqlalchemy import select

from helpers import make_settings
from quanyi.notifications.models import OutboxMessage
from quanyi.notifications.rendering import sms_template_text
from quanyi.notifications.worker import OutboxWorker
from quanyi.orders.models import Order
from quanyi.risk.models import RiskChallenge
from quanyi.testpeers.runner import serve_in_thread
from quanyi.testpeers.sms import SmsSimulator
from risk.support import add_rule, checkout, decisions, reason_codes, sent_codes

PHONE = "13800138000"
DELIVERED, CODE = "SMS_910001", "SMS_910002"


@pytest.fixture(scope="module")
def sms_server() -> Iterator[tuple[SmsSimulator, str]]:
    simulator = SmsSimulator(
        access_key_id="LTAI" + secrets.token_hex(6), access_key_secret=secrets.token_urlsafe(20), sign_name="权益商城",
        templates={DELIVERED: sms_template_text("order_delivered", "zh-CN"),
                   CODE: sms_template_text("verification_code", "zh-CN")})
    with serve_in_thread(simulator.app) as url:
        yield simulator, url + "/"


@pytest.fixture
def sms(sms_server) -> SmsSimulator:
    sms_server[0].reset()
    return sms_server[0]


def sms_settings(sms_server: tuple[SmsSimulator, str], **overrides: object) -> dict[str, object]:
    simulator, url = sms_server
    return {"sms_api_url": url, "sms_access_key_id": simulator.access_key_id,
            "sms_access_key_secret": simulator.access_key_secret, "sms_sign_name": simulator.sign_name,
            "sms_template_order_delivered": DELIVERED, "sms_template_verification_code": CODE,
            "smtp_host": "127.0.0.1", "smtp_from": "shop@example.com", "notification_backoff_seconds": 0.0,
            **overrides}


@pytest.fixture
def settings(database_url: str, sms_server):
    return make_settings(database_url, **sms_settings(sms_server))


@pytest.fixture
async def goods(shop):
    sku = await shop.make_sku(code="CH-SMS")
    await shop.stock(sku, 10)
    await add_rule(shop, "new_account", {"min_amount_cents": 0}, action="challenge")
    return sku


async def test_phone_buyer_gets_the_code_by_sms_and_completes_checkout(shop, goods, sms):
    response = await checkout(shop, goods.id, contact="+86 138-0013-8000")
    assert response.status_code == 403, response.text
    body = response.json()
    assert body["code"] == "verification_required" and body["channel"] == "sms" and body["challenge_id"]
    [message] = await sent_codes(shop)
    assert message.channel == "sms" and message.recipient == PHONE
    [entry] = await decisions(shop)
    assert entry["decision"] == "challenge" and entry["outcome"] == "challenged"
    assert reason_codes(entry) == ["test_new_account"]

    await OutboxWorker(shop.ctx, owner="test-worker").drain()
    assert sms.rejected == []
    [record] = sms.messages
    assert record.phone == PHONE and record.template_code == CODE
    code = record.params["code"]
    assert record.text == f"【权益商城】您的验证码为{code}，10分钟内有效，请勿泄露。"
    async with shop.ctx.db.read_session() as session:
        assert (await session.get(OutboxMessage, message.id)).status == "sent"

    done = await checkout(shop, goods.id, contact=PHONE, challenge_id=body["challenge_id"], verification_code=code)
    assert done.status_code == 201, done.text
    assert await shop.count(Order) == 1
    assert [e["outcome"] for e in await decisions(shop)] == ["verified", "challenged"]
    async with shop.ctx.db.read_session() as session:
        challenge = await session.scalar(select(RiskChallenge))
        assert challenge.channel == "sms" and challenge.verified_at is not None


async def test_phone_buyer_who_paid_before_is_not_challenged_and_gets_no_code(shop, goods, sms):
    first = await checkout(shop, goods.id, contact=PHONE)
    code = (await sent_codes(shop))[0].payload["code"]
    order = await checkout(shop, goods.id, contact=PHONE, challenge_id=first.json()["challenge_id"],
                           verification_code=code)
    await shop.pay(order.json())
    again = await checkout(shop, goods.id, contact=PHONE)
    assert again.status_code == 201, again.text
    assert len(await sent_codes(shop)) == 1
    assert [e["outcome"] for e in await decisions(shop)] == ["verified", "challenged"]


class TestSmsWithoutACodeTemplate:
    """SMS is configured for delivery messages but no code template is registered: a code could not be
    sent (the provider only sends registered templates), so the buyer must not be asked for one."""

    @pytest.fixture
    def settings(self, database_url: str, sms_server):
        return make_settings(database_url, **sms_settings(sms_server, sms_template_verification_code=""))

    async def test_buyer_is_told_to_use_email_instead_of_waiting_for_a_code(self, shop, goods, sms):
        response = await checkout(shop, goods.id, contact=PHONE)
        assert response.status_code == 403, response.text
        body = response.json()
        assert body["code"] == "verification_unavailable" and body["use_contact_kind"] == "email"
        assert await shop.count(RiskChallenge) == 0 and await sent_codes(shop) == []
        assert [e["outcome"] for e in await decisions(shop)] == ["verification_unavailable"]


class TestSmsWithOnlyTheCodeTemplate:
    """The shop registered only the one-time code template at the provider: codes go by SMS, delivery
    messages to phone buyers are simply not sent (no message the provider would refuse)."""

    @pytest.fixture
    def settings(self, database_url: str, sms_server):
        return make_settings(database_url, **sms_settings(sms_server, sms_template_order_delivered=""))

    async def test_the_code_goes_by_sms_and_delivery_sends_no_sms(self, shop, goods, sms, caplog):
        response = await checkout(shop, goods.id, contact=PHONE)
        assert response.status_code == 403, response.text
        body = response.json()
        assert body["code"] == "verification_required" and body["channel"] == "sms", body
        worker = OutboxWorker(shop.ctx, owner="test-worker")
        await worker.drain()
        [record] = sms.messages
        assert record.phone == PHONE and record.template_code == CODE

        order = await checkout(shop, goods.id, contact=PHONE, challenge_id=body["challenge_id"],
                               verification_code=record.params["code"])
        assert order.status_code == 201, order.text
        await shop.pay(order.json())
        assert (await shop.get_order(order.json()))["status"] == "delivered"
        with caplog.at_level(logging.WARNING, logger="quanyi"):
            await worker.drain()
        assert len(sms.messages) == 1 and sms.rejected == []
        async with shop.ctx.db.read_session() as session:
            rows = (await session.scalars(select(OutboxMessage))).all()
        assert [(m.channel, m.kind, m.status) for m in rows] == [("sms", "verification_code", "sent")]
        assert not [r for r in caplog.records if r.levelno >= logging.WARNING], caplog.text
