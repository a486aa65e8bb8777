"""Buyer delivery e-mail: received by a real SMTP server with the right content, in zh-CN and English;
card keys only when the shop says so (and then audited as an e-mail reveal); the link opens the order."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from sqlalchemy import func, select

from helpers import open_order_link
from notifications.support import outbox
from quanyi.inventory.models import KeyReveal
from quanyi.notifications import outbox as outbox_service
from quanyi.notifications.models import OutboxMessage
from quanyi.notifications.senders import email_message_id
from quanyi.orders import service as orders_service
from quanyi.orders.access import COOKIE_NAME, order_link_token

GUIDE = "1. Open the app\n2. Paste the **code** under *Redeem*\n\n<script>alert(1)</script>"

EXPECTED = {
    "zh-CN": {"subject": "已发货", "text": ["订单号：", "数量：2", "金额：¥39.60", "兑换说明："],
              "link_text": "打开订单页查看卡密"},
    "en": {"subject": "delivered", "text": ["Order: ", "Quantity: 2", "Total: ¥39.60", "How to redeem:"],
           "link_text": "Open your order to see the card keys"},
}


def _parts(message):
    text = message.get_body(preferencelist=("plain",)).get_content()
    html = message.get_body(preferencelist=("html",)).get_content()
    return text, html


@pytest.mark.parametrize("locale", ["zh-CN", "en"])
async def test_delivery_email_is_received_with_order_link_and_guide(shop, smtp, worker, locale):
    sku = await shop.make_sku(guide=GUIDE)
    codes = await shop.stock(sku, 5)
    order = await shop.create_order(sku.id, quantity=2, contact="Buyer@Example.com", locale=locale)
    await shop.pay(order)
    assert smtp.messages == []  # nothing leaves inside the payment transaction

    assert await worker.drain() == 5  # the e-mail + (new paid order, low stock) to each of the two robots
    assert len(smtp.messages) == 1
    mail = smtp.messages[0]
    expected = EXPECTED[locale]
    assert mail["To"] == "buyer@example.com"
    assert smtp.envelopes[0] == ("shop@quanyi.example", ["buyer@example.com"])
    assert order["order_no"] in mail["Subject"] and expected["subject"] in mail["Subject"]
    assert "Video VIP" in mail["Subject"]
    text, html = _parts(mail)
    for fragment in expected["text"]:
        assert fragment in text
    assert order["order_no"] in text and order["order_no"] in html
    # The order link: absolute, signed, the same in both parts.
    links = re.findall(r"http://test/orders/[A-Z0-9]+/open#t=[0-9a-z]+\.[A-Za-z0-9_-]{24}", text)
    assert len(links) == 1 and links[0] in html
    assert f"/orders/{order['order_no']}/open#t=" in links[0]
    assert order["access_token"] not in text and order["access_token"] not in html  # a link token, not the key
    assert expected["link_text"] in html
    # The guide: raw Markdown in the text part, sanitized HTML in the HTML part.
    assert "Paste the **code**" in text
    assert "<strong>code</strong>" in html and "<em>Redeem</em>" in html
    assert "<script>" not in html
    # No card keys unless the shop mails them.
    assert not any(code in text or code in html for code in codes)
    [row] = await outbox(shop, OutboxMessage.channel == "email")
    assert row.status == "sent" and row.attempts == 1 and row.sent_at is not None
    assert mail["Message-ID"] == email_message_id(outbox_service.idempotency_key(row), "shop@quanyi.example")
    assert row.provider_message_id == mail["Message-ID"]
    assert not any(code in str(row.payload) for code in codes)

    # The link opens the order without re-entering anything: cookie set, then the order page.
    opened = await open_order_link(shop.client, links[0])
    assert opened.status_code == 303 and opened.headers["location"] == f"/orders/{order['order_no']}"
    assert COOKIE_NAME in opened.headers["set-cookie"] and "HttpOnly" in opened.headers["set-cookie"]
    page = await shop.client.get(f"/orders/{order['order_no']}")
    assert page.status_code == 200 and order["order_no"] in page.text


async def test_links_use_the_public_base_url(shop, smtp, worker, stocked_sku):
    shop.ctx.settings.public_base_url = "https://shop.example.cn/"
    order = await shop.create_order(stocked_sku.id)
    await shop.pay(order)
    await worker.drain()
    text, _ = _parts(smtp.messages[0])
    assert f"https://shop.example.cn/orders/{order['order_no']}/open#t=" in text


async def test_open_link_with_a_wrong_token_grants_nothing(shop, stocked_sku, paid_order):
    no = paid_order["order_no"]
    secret = shop.ctx.settings.app_secret.get_secret_value()
    good = order_link_token(secret, no, dt.datetime.now(dt.UTC) + dt.timedelta(days=1))
    for token in ("forged", "", good[:-1] + ("A" if good[-1] != "A" else "B"), "zz.AAAAAAAAAAAAAAAAAAAAAAAA"):
        response = await open_order_link(shop.client, f"http://test/orders/{no}/open#t={token}")
        assert response.status_code == 303 and response.headers["location"] == f"/lookup?order_no={no}"
        assert COOKIE_NAME not in response.headers.get("set-cookie", "")
    other = await shop.create_order(stocked_sku.id)
    # A valid link of one order does not open another.
    other_link = order_link_token(secret, other["order_no"], dt.datetime.now(dt.UTC) + dt.timedelta(days=1))
    response = await open_order_link(shop.client, f"http://test/orders/{no}/open#t={other_link}")
    assert response.headers["location"].startswith("/lookup")
    junk = await shop.client.get("/orders/not-an-order/open")
    assert junk.status_code == 303 and junk.headers["location"] == "/lookup?order_no="


async def test_email_with_keys_carries_them_and_records_an_email_reveal(shop, smtp, worker, stocked_sku):
    shop.ctx.settings.email_include_keys = True
    order = await shop.create_order(stocked_sku.id, quantity=2)
    await shop.pay(order)
    [row] = await outbox(shop, OutboxMessage.channel == "email")
    assert await shop.count(KeyReveal) == 0  # enqueued without decrypting anything

    await worker.drain()
    text, html = _parts(smtp.messages[0])
    async with shop.ctx.db.read_session() as session:
        channels = (await session.scalars(select(KeyReveal.channel))).all()
    assert channels == ["email", "email"]
    keys = await shop.reveal(order)  # the buyer's own reveal, for comparison (audited as "api")
    assert len(keys) == 2
    for key in keys:
        assert key["code"] in text and key["code"] in html
    assert "卡密如同现金" in text
    assert not any(key["code"] in str(row.payload) for key in keys)
    assert await shop.count(KeyReveal, KeyReveal.channel == "email") == 2


async def test_outbox_row_is_written_in_the_delivery_transaction(shop, smtp, worker, order):
    class Abort(Exception):
        pass

    async with shop.ctx.db.read_session() as session:
        order_id = (await orders_service.get_order(session=session, order_no=order["order_no"])).id
    with pytest.raises(Abort):
        async with shop.ctx.db.transaction() as session:
            locked = await orders_service.lock_order(session=session, order_id=order_id)
            effect = await orders_service.apply_payment(session=session, order=locked)
            assert effect.value == "delivered"
            assert await session.scalar(select(func.count()).select_from(OutboxMessage)) >= 1  # written...
            raise Abort  # ...and rolled back with the delivery
    assert await shop.count(OutboxMessage) == 0
    assert await worker.drain() == 0 and smtp.messages == []

    async with shop.ctx.db.transaction() as session:
        locked = await orders_service.lock_order(session=session, order_id=order_id)
        await orders_service.apply_payment(session=session, order=locked)
    assert await shop.count(OutboxMessage, OutboxMessage.channel == "email") == 1
    await worker.drain()
    assert len(smtp.messages) == 1
