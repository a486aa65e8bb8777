"""Operators told about enterprises' top-ups, through the outbox to the group robots and by e-mail to
QUANYI_OPERATOR_ALERT_EMAIL (a real SMTP server), on SQLite and PostgreSQL: a bank-transfer request filed in the
portal (once, however often its form is sent; an online one needs nobody), and a second payment of an online request
already credited: never credited, kept once per gateway trade however often the gateway re-sends, flagged in the
console (list and enterprise page) until an operator records its refund there."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from console.support import logged_in as console_logged_in
from console.support import post_form as console_post
from enterprises.portal_support import csrf_token, logged_in
from enterprises.support import balance_of, books_balanced
from helpers import Shop, make_settings, signed_notification
from notifications.conftest import notification_settings
from quanyi.config import Settings
from quanyi.enterprises.models import TopUpExtraPayment, TopUpRequest
from quanyi.notifications.models import OutboxMessage
from quanyi.staff.models import StaffAuditEntry

PAGE = "/portal/top-ups"
OPS = "ops@quanyi.example"


@pytest.fixture
def settings(database_url: str, smtp, robots_server, sms_server) -> Settings:  # type: ignore[no-untyped-def]
    return make_settings(database_url, operator_alert_email=OPS,
                         **notification_settings(smtp, robots_server, sms_server))


async def _ask(client, method: str = "bank_transfer", key: str | None = None):  # type: ignore[no-untyped-def]
    page = await client.get(PAGE)
    key = key or re.search(r'name="request_key" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
    return await client.post(PAGE, headers={"Origin": "http://test"}, data={
        "amount": "5,000.00", "payment_method": method, "payer_reference": "ICBC-20261205-01" if method ==
        "bank_transfer" else "", "note": "十二月福利", "request_key": key, "csrf_token": csrf_token(page.text)})


async def _kinds(shop: Shop) -> list[tuple[str, str, str]]:
    async with shop.ctx.db.read_session() as session:
        return sorted((m.kind, m.channel, m.recipient) for m in await session.scalars(select(OutboxMessage)))


async def test_a_bank_transfer_request_alerts_operators_once_by_robot_and_email(shop: Shop, smtp, robots, worker):
    client = await logged_in(shop, "ACME", "amy", "admin")
    asked = await _ask(client, key="form-key-000001")
    assert asked.status_code == 303, asked.text
    assert (await _ask(client, key="form-key-000001")).status_code == 303  # the same form again: one request
    kind = "enterprise_top_up_requested"
    assert await _kinds(shop) == [(kind, "dingtalk", "group"), (kind, "email", OPS), (kind, "wecom", "group")]
    assert await worker.drain() == 3
    request_no = await shop.scalar(select(TopUpRequest.request_no))
    [mail] = smtp.messages
    assert mail["To"] == OPS and request_no in mail["Subject"] and "待确认" in mail["Subject"]
    text = mail.get_body(preferencelist=("plain",)).get_content()
    assert "¥5,000.00" in text and "ICBC-20261205-01" in text and "ACME" in text and "十二月福利" in text
    [wecom] = robots.of("wecom")
    assert wecom.text.startswith("### 企业充值申请待确认") and request_no in wecom.text
    assert "**¥5,000.00**" in wecom.text

    paying = await _ask(client, "online:sandbox")  # paid online: the gateway's word credits it, nobody must act
    assert paying.status_code == 303 and "/sandbox/cashier" in paying.headers["location"]
    assert len(await _kinds(shop)) == 3


async def test_a_second_payment_is_kept_flagged_and_alerted_until_marked_refunded(shop: Shop, smtp, robots, worker):
    client = await logged_in(shop, "ACME", "amy", "admin")
    assert (await _ask(client, "online:sandbox")).status_code == 303
    async with shop.ctx.db.read_session() as session:
        request = (await session.scalars(select(TopUpRequest))).one()
    for trade in ("SB-PAID-1", "SB-PAID-2", "SB-PAID-2", "SB-PAID-1"):  # the gateway re-sends until answered
        notice = signed_notification(shop.sandbox_secret, payment_no=request.request_no,
                                     amount_cents=request.amount_cents, trade_no=trade)
        answer = await shop.client.post("/enterprise-top-ups/sandbox/notify", data=notice)
        assert answer.status_code == 200 and answer.text == "success", answer.text
    assert await balance_of(shop, "ACME") == 500_000  # credited once; the second payment is not
    async with shop.ctx.db.read_session() as session:
        [extra] = (await session.scalars(select(TopUpExtraPayment))).all()
    assert (extra.gateway, extra.gateway_trade_no, extra.amount_cents, extra.refunded_at) == (
        "sandbox", "SB-PAID-2", 500_000, None)
    kind = "enterprise_top_up_paid_twice"
    assert await _kinds(shop) == [(kind, "dingtalk", "group"), (kind, "email", OPS), (kind, "wecom", "group")]
    await worker.drain()
    [mail] = smtp.messages
    assert "重复付款" in mail["Subject"] and request.request_no in mail["Subject"]
    text = mail.get_body(preferencelist=("plain",)).get_content()
    assert "SB-PAID-2" in text and "SB-PAID-1" in text and "退款" in text
    assert "SB-PAID-2" in robots.of("dingtalk")[0].text

    console = await console_logged_in(shop, "ella", roles=("owner",))
    listed = await console.get("/console/enterprises")
    assert 'data-testid="extra-payments"' in listed.text and "重复付款待退款 1" in listed.text
    page = await console.get("/console/enterprises/ACME")
    flag = re.search(r'data-testid="top-up-extra" data-trade="SB-PAID-2" data-refunded="no">(.*?)</div>', page.text,
                     re.S)
    assert flag is not None and "需在支付渠道退款" in flag.group(1) and "¥5,000.00" in flag.group(1), page.text
    other = await console_post(console, "/console/enterprises/ACME/top-up-extra/SB-NOPE/refunded",
                               page_url="/console/enterprises/ACME")
    assert other.status_code == 404 and "没有找到这笔重复付款" in other.text
    for _ in range(2):  # a repeat changes nothing more
        done = await console_post(console, "/console/enterprises/ACME/top-up-extra/SB-PAID-2/refunded",
                                  page_url="/console/enterprises/ACME")
        assert done.status_code == 303, done.text
    page = await console.get("/console/enterprises/ACME")
    assert 'data-trade="SB-PAID-2" data-refunded="yes"' in page.text and "已退款" in page.text
    assert 'data-testid="extra-payments"' not in (await console.get("/console/enterprises")).text
    assert await shop.count(StaffAuditEntry, StaffAuditEntry.action == "enterprise_top_up_extra_refunded") == 1
    await books_balanced(shop)
