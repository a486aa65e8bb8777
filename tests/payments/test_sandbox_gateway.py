"""The sandbox gateway behaves like a real one: signed cashier links, one trade per payment,
notifications re-sent with backoff until the shop acknowledges, then given up on loudly."""

from __future__ import annotations

import datetime as dt
import logging
import re
from urllib.parse import urlparse

import httpx
import pytest
from sqlalchemy import select

from helpers import with_csrf
from quanyi.inventory.models import CardKey
from quanyi.ledger.models import DeferredPosting, LedgerPosting
from quanyi.orders.models import Order
from quanyi.payments.models import Payment
from quanyi.payments.sandbox import server as sandbox_server
from quanyi.payments.sandbox.models import SandboxTrade


class FlakyMerchant(httpx.AsyncBaseTransport):
    """Routes to the shop in-process, but the first `failures` requests find it unreachable."""

    def __init__(self, app, failures: int) -> None:
        self.inner = httpx.ASGITransport(app=app)
        self.failures = failures
        self.calls = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.calls += 1
        if self.calls <= self.failures:
            raise httpx.ConnectError("merchant unreachable", request=request)
        return await self.inner.handle_async_request(request)


async def _cashier_token(shop, order) -> str:
    payment = await shop.start_payment(order)
    url = urlparse(payment["cashier_url"])
    page = await shop.client.get(f"{url.path}?{url.query}")
    assert "¥19.80" in page.text
    return re.search(r'name="t" value="([^"]+)"', page.text).group(1)


async def test_lost_notifications_are_retried_until_acknowledged(shop, app, order):
    flaky = FlakyMerchant(app, failures=2)
    shop.ctx.http = httpx.AsyncClient(transport=flaky)
    token = await _cashier_token(shop, order)
    response = await shop.client.post("/sandbox/cashier/pay", data=await with_csrf(shop.client, {"t": token}))
    assert response.status_code == 303  # the buyer is sent back even though the shop missed the call
    assert (await shop.get_order(order))["status"] == "pending_payment"

    secret = shop.sandbox_secret
    soon = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=31)
    assert await sandbox_server.retry_due_notifications(db=shop.ctx.db, client=shop.ctx.http, secret=secret,
                                                        now=soon) == 0  # second failure
    trade = await shop.scalar(select(SandboxTrade))
    assert trade.notify_attempts == 2 and trade.notify_status == "pending" and "unreachable" in trade.last_error
    # Not due again until the backoff has passed.
    assert await sandbox_server.retry_due_notifications(db=shop.ctx.db, client=shop.ctx.http, secret=secret,
                                                        now=soon) == 0
    assert flaky.calls == 2
    later = soon + dt.timedelta(seconds=10)
    assert await sandbox_server.retry_due_notifications(db=shop.ctx.db, client=shop.ctx.http, secret=secret,
                                                        now=later) == 1
    assert (await shop.get_order(order))["status"] == "delivered"
    assert (await shop.scalar(select(SandboxTrade))).notify_status == "acknowledged"


async def test_sandbox_gives_up_after_max_attempts(shop, app, order, caplog):
    shop.ctx.http = httpx.AsyncClient(transport=FlakyMerchant(app, failures=10**6))
    token = await _cashier_token(shop, order)
    await shop.client.post("/sandbox/cashier/pay", data=await with_csrf(shop.client, {"t": token}))
    when = dt.datetime.now(dt.UTC)
    with caplog.at_level(logging.ERROR):
        for _ in range(sandbox_server.MAX_ATTEMPTS):
            when += dt.timedelta(hours=2)
            await sandbox_server.retry_due_notifications(db=shop.ctx.db, client=shop.ctx.http,
                                                         secret=shop.sandbox_secret, now=when)
    trade = await shop.scalar(select(SandboxTrade))
    assert trade.notify_status == "failed" and trade.notify_attempts == sandbox_server.MAX_ATTEMPTS
    assert any("gave up" in r.message for r in caplog.records)


async def test_pressing_pay_twice_makes_one_trade_and_one_delivery(shop, order):
    token = await _cashier_token(shop, order)
    for _ in range(2):
        response = await shop.client.post("/sandbox/cashier/pay", data=await with_csrf(shop.client, {"t": token}))
        assert response.status_code == 303
    assert await shop.count(SandboxTrade) == 1
    assert (await shop.get_order(order))["delivered_keys"] == 1


@pytest.mark.parametrize("token", ["", "garbage", "a.b", "eyJ9.0000", "x" * 5000])
async def test_forged_or_broken_cashier_links_are_refused(shop, token):
    page = await shop.client.get("/sandbox/cashier", params={"t": token})
    assert page.status_code == 400
    pay = await shop.client.post("/sandbox/cashier/pay", data=await with_csrf(shop.client, {"t": token}))
    assert pay.status_code == 400
    assert await shop.count(SandboxTrade) == 0


async def test_tampered_cashier_amount_is_refused(shop, order):
    token = await _cashier_token(shop, order)
    body, mac = token.split(".")
    import base64
    import json

    payload = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    payload["a"] = 1
    forged = base64.urlsafe_b64encode(json.dumps(payload, separators=(",", ":")).encode()).decode().rstrip("=")
    forged_form = await with_csrf(shop.client, {"t": f"{forged}.{mac}"})
    assert (await shop.client.post("/sandbox/cashier/pay", data=forged_form)).status_code == 400
    assert await shop.count(SandboxTrade) == 0


async def test_notification_is_not_acknowledged_when_the_transaction_fails(shop, app, order, monkeypatch):
    from quanyi.ledger import service as ledger_service
    from quanyi.orders import service as orders_service

    payment = await shop.start_payment(order)

    def broken(*_args, **_kwargs):
        raise RuntimeError("disk full")

    async def broken_async(**_kwargs):
        broken()

    # Both ways of applying a payment fail: the general one at its start, the express lane (payments.express)
    # after its writes (the deferred row is its last step).
    monkeypatch.setattr(orders_service, "apply_payment", broken_async)
    monkeypatch.setattr(ledger_service, "deferred_row_written", broken)
    # Like a real server: the exception becomes a 500 answer instead of propagating into the test.
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as gateway:
        response = await gateway.post("/payments/sandbox/notify", data=shop.notification(payment))
    assert response.status_code == 500 and response.text != "success"  # the gateway will retry
    monkeypatch.undo()
    stored = await shop.scalar(select(Payment).where(Payment.payment_no == payment["payment_no"]))
    if shop.ctx.db.is_sqlite:
        assert stored.status == "created" and stored.gateway_trade_no is None  # rolled back
        assert (await shop.scalar(select(Order.status))) == "pending_payment"
        assert await shop.count(CardKey, CardKey.status == "sold") == 0
    else:
        # PostgreSQL: the express lane is one statement in autocommit (payments.service.receive_notification),
        # whole on its own: its writes, the deferred ledger row among them, stood before the failure after it.
        assert stored.status == "succeeded" and stored.gateway_trade_no
        assert (await shop.scalar(select(Order.status))) == "delivered"
    assert (await shop.notify(shop.notification(payment))).text == "success"  # the retry delivers, or finds it done
    assert await shop.count(CardKey, CardKey.status == "sold") == 1
    # Its postings written, or waiting for the ledger worker: the books will have it.
    assert await shop.count(DeferredPosting, DeferredPosting.payment_id == stored.id) \
        + await shop.count(LedgerPosting, LedgerPosting.payment_no == payment["payment_no"]) > 0
