"""支付宝 through the real app and the Alipay test peer on a real port: checkouts, notifications believed
only when authentic and matching and applied exactly once, active query, refunds, outages."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from sqlalchemy import select
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from quanyi.inventory.models import CardKey, CardKeyStatus
from quanyi.orders.models import Order, OrderEvent
from quanyi.payments import service as payments_service
from quanyi.payments.alipay import AlipayConfig, AlipayGateway
from quanyi.payments.alipay.gateway import UnsupportedCurrency
from quanyi.payments.alipay.signing import verify_params
from quanyi.payments.gateway import CheckoutRequest, GatewayUnavailable, RefundRequest
from quanyi.payments.models import Payment, PaymentStatus
from quanyi.tasks import sweep_once
from quanyi.testpeers.alipay import AlipayKeys, AlipaySimulator, SimNotification
from quanyi.testpeers.runner import serve_in_thread


@pytest.fixture(scope="module")
def keys() -> AlipayKeys:
    return AlipayKeys.generate()


@pytest.fixture
def peer(keys: AlipayKeys) -> Iterator[tuple[AlipaySimulator, str]]:
    simulator = AlipaySimulator(keys=keys)
    with serve_in_thread(simulator.app) as base_url:
        yield simulator, base_url
    simulator.stop()


@pytest.fixture
def sim(peer) -> AlipaySimulator:
    return peer[0]


@pytest.fixture
async def alipay(shop, app, peer) -> AlipayGateway:
    simulator, base_url = peer
    gateway = AlipayGateway(AlipayConfig(**simulator.merchant_config(base_url)), http=shop.ctx.http)
    shop.ctx.gateways.register(gateway)
    return gateway


async def _start(shop, order) -> dict:
    response = await shop.client.post(f"/api/orders/{order['order_no']}/payments", headers=shop.auth(order),
                                      json={"gateway": "alipay"})
    assert response.status_code == 201, response.text
    return response.json()


async def _open_cashier(payment: dict) -> str:
    """The buyer's browser follows the signed cashier URL to the gateway (real network)."""
    async with httpx.AsyncClient(follow_redirects=True) as browser:
        page = await browser.get(payment["cashier_url"])
    assert page.status_code == 200, page.text
    return page.text


async def _paid(shop, sim, order) -> tuple[dict, SimNotification]:
    payment = await _start(shop, order)
    await _open_cashier(payment)
    sim.pay(payment["payment_no"])
    (notification,) = sim.take_notifications()
    return payment, notification


async def _deliver(shop, notification: SimNotification) -> httpx.Response:
    return await shop.client.post("/payments/alipay/notify", content=notification.body, headers=notification.headers)


async def _snapshot(shop) -> tuple:
    async with shop.ctx.db.read_session() as session:
        orders = (await session.execute(select(Order.order_no, Order.status, Order.paid_at))).all()
        keys = (await session.execute(select(CardKey.id, CardKey.status, CardKey.order_id).order_by(CardKey.id))).all()
        payments = (await session.execute(select(Payment.payment_no, Payment.status, Payment.gateway_trade_no))).all()
        events = await session.scalar(select(OrderEvent.id).order_by(OrderEvent.id.desc()).limit(1))
    return sorted(orders), keys, sorted(payments), events


def _refund(payment: dict, refund_no: str, amount: int) -> RefundRequest:
    return RefundRequest(refund_no=refund_no, payment_no=payment["payment_no"], gateway_trade_no="",
                         amount_cents=amount, payment_amount_cents=payment["amount_cents"], currency="CNY",
                         reason="buyer asked")


# ---------------------------------------------------------------- checkout and payment


async def test_page_checkout_is_a_signed_url_and_the_notification_delivers_once(shop, alipay, sim, order):
    payment = await _start(shop, order)
    url = urlsplit(payment["cashier_url"])
    params = {k: v[0] for k, v in parse_qs(url.query).items()}
    biz = json.loads(params["biz_content"])
    assert payment["cashier_url"].startswith(alipay._config.gateway_url + "?")
    assert (params["method"], params["sign_type"], params["charset"], params["version"]) == (
        "alipay.trade.page.pay", "RSA2", "utf-8", "1.0")
    assert params["notify_url"].endswith("/payments/alipay/notify")
    assert biz["out_trade_no"] == payment["payment_no"] and biz["total_amount"] == "19.80"
    assert biz["product_code"] == "FAST_INSTANT_TRADE_PAY"
    assert "¥19.80" in await _open_cashier(payment)

    trade = sim.pay(payment["payment_no"])
    (notification,) = sim.take_notifications()
    response = await _deliver(shop, notification)
    assert (response.status_code, response.text) == (200, "success")
    status = await shop.get_order(order)
    assert status["status"] == "delivered" and status["delivered_keys"] == 1
    stored = await shop.scalar(select(Payment).where(Payment.payment_no == payment["payment_no"]))
    assert stored.status == PaymentStatus.SUCCEEDED and stored.gateway_trade_no == trade.trade_no
    assert stored.paid_at.replace(microsecond=0, tzinfo=dt.UTC) == trade.paid_at.replace(microsecond=0)


async def test_buyer_pays_on_the_hosted_cashier_and_returns_with_a_signed_redirect(shop, alipay, sim, order):
    payment = await _start(shop, order)
    await _open_cashier(payment)
    async with httpx.AsyncClient(base_url=alipay._config.gateway_url.rsplit("/", 1)[0]) as browser:
        answer = await browser.post("/cashier/pay", data={"out_trade_no": payment["payment_no"]})
    assert answer.status_code == 303
    back = urlsplit(answer.headers["location"])
    assert back.path == f"/orders/{order['order_no']}" and "sign=" in back.query
    assert (await _deliver(shop, sim.take_notifications()[0])).text == "success"
    assert (await shop.get_order(order))["status"] == "delivered"


async def test_a_genuine_notice_with_an_empty_parameter_is_accepted(shop, alipay, sim, order):
    """Alipay sends parameters with empty values (`body=`) and signs them; the SDKs verify them that way."""
    payment, _ = await _paid(shop, sim, order)
    notification = sim.notification(payment["payment_no"], body="", passback_params="")
    assert "body=&" in notification.body.decode() or notification.body.decode().endswith("body=")
    response = await _deliver(shop, notification)
    assert (response.status_code, response.text) == (200, "success")
    assert (await shop.get_order(order))["status"] == "delivered"
    # The empty parameter is part of what was signed: dropping it on the way breaks the signature.
    stripped = {k: v for k, v in notification.params.items() if k != "body"}
    assert verify_params(notification.params, alipay._alipay_key)
    assert not verify_params(stripped, alipay._alipay_key)


async def test_wap_and_qr_checkouts(shop, alipay, sim, order):
    payment = await _start(shop, order)
    expires = dt.datetime(2030, 1, 1, 4, 0, tzinfo=dt.UTC)
    request = CheckoutRequest(payment_no=payment["payment_no"], amount_cents=1980, currency="CNY",
                              subject="Video VIP / monthly", notify_url="http://test/payments/alipay/notify",
                              return_url="http://test/back", expires_at=expires)
    wap = await alipay.create_checkout(CheckoutRequest(**{**_fields(request), "mode": "wap"}))
    wap_params = {k: v[0] for k, v in parse_qs(urlsplit(wap.cashier_url).query).items()}
    wap_biz = json.loads(wap_params["biz_content"])
    assert wap_params["method"] == "alipay.trade.wap.pay" and wap_biz["product_code"] == "QUICK_WAP_WAY"
    assert wap_biz["quit_url"] == "http://test/back" and wap_biz["time_expire"] == "2030-01-01 12:00:00"

    qr = await alipay.create_checkout(CheckoutRequest(**{**_fields(request), "mode": "qr"}))
    assert qr.qr_code and qr.cashier_url is None and sim.calls == ["alipay.trade.precreate"]
    assert sim.trade(payment["payment_no"]).time_expire == "2030-01-01 12:00:00"
    assert (await alipay.query_trade(payment["payment_no"])).state == "pending"
    sim.pay(payment["payment_no"])
    assert (await _deliver(shop, sim.take_notifications()[0])).text == "success"
    assert (await shop.get_order(order))["status"] == "delivered"


def _fields(request: CheckoutRequest) -> dict:
    return {name: getattr(request, name) for name in request.__slots__}


async def test_only_cny_is_accepted(shop, alipay, stocked_sku):
    sku = await shop.make_sku(currency="USD")
    await shop.stock(sku, 1)
    order = await shop.create_order(sku.id)
    response = await shop.client.post(f"/api/orders/{order['order_no']}/payments", headers=shop.auth(order),
                                      json={"gateway": "alipay"})
    assert response.status_code == 422 and response.json()["code"] == "gateway_unsupported"
    with pytest.raises(UnsupportedCurrency):
        await alipay.create_checkout(CheckoutRequest(payment_no="PYX", amount_cents=100, currency="USD", subject="x",
                                                     notify_url="http://test/n", return_url="http://test/r"))


# ---------------------------------------------------------------- notifications: repeated, concurrent, out of order


async def test_duplicate_notification_delivers_nothing_new(shop, alipay, sim, order):
    _, notification = await _paid(shop, sim, order)
    assert (await _deliver(shop, notification)).text == "success"
    before = await _snapshot(shop)
    again = await _deliver(shop, notification)
    assert (again.status_code, again.text) == (200, "success")  # acknowledged, so Alipay stops re-sending
    assert await _snapshot(shop) == before


async def test_concurrent_duplicates_deliver_exactly_once(shop, alipay, sim, stocked_sku):
    order = await shop.create_order(stocked_sku.id, quantity=2)
    _, notification = await _paid(shop, sim, order)
    responses = await asyncio.gather(*[_deliver(shop, notification) for _ in range(6)])
    assert all((r.status_code, r.text) in ((200, "success"), (400, "fail")) for r in responses), responses
    assert any(r.text == "success" for r in responses)
    assert (await shop.get_order(order))["delivered_keys"] == 2
    assert await shop.count(CardKey, CardKey.status == CardKeyStatus.SOLD) == 2
    assert await shop.count(OrderEvent, OrderEvent.to_status == "delivered") == 1


async def test_out_of_order_notifications_never_undo_or_repeat_a_payment(shop, alipay, sim, order):
    payment, paid = await _paid(shop, sim, order)
    waiting = sim.notification(payment["payment_no"], trade_status="WAIT_BUYER_PAY")
    finished = sim.notification(payment["payment_no"], trade_status="TRADE_FINISHED")
    # The earlier status arrives first: acknowledged, nothing happens.
    before = await _snapshot(shop)
    assert (await _deliver(shop, waiting)).text == "success"
    assert await _snapshot(shop) == before
    # Then the later ones in reverse: FINISHED pays, SUCCESS after it changes nothing, nor does a stale WAIT.
    assert (await _deliver(shop, finished)).text == "success"
    after_payment = await _snapshot(shop)
    assert (await shop.get_order(order))["status"] == "delivered"
    for late in (paid, waiting):
        assert (await _deliver(shop, late)).text == "success"
    assert await _snapshot(shop) == after_payment

    # Refund notifications (partial: still TRADE_SUCCESS with refund_fee; full: TRADE_CLOSED) change nothing.
    assert (await alipay.refund(_refund(payment, "RF1", 980))).state == "succeeded"
    assert (await alipay.refund(_refund(payment, "RF2", 1000))).state == "succeeded"
    partial, closed = sim.take_notifications()
    assert partial.params["refund_fee"] == "9.80" and closed.params["trade_status"] == "TRADE_CLOSED"
    for notice in (closed, partial):
        assert (await _deliver(shop, notice)).text == "success"
    assert await _snapshot(shop) == after_payment


async def test_late_notification_after_expiry_still_delivers(shop, alipay, sim, order):
    payment, notification = await _paid(shop, sim, order)
    async with shop.ctx.db.transaction() as session:
        row = await session.scalar(select(Order).where(Order.order_no == order["order_no"]))
        row.expires_at = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=20)
    assert await sweep_once(shop.ctx) == 1
    assert (await shop.get_order(order))["status"] == "cancelled"
    assert (await _deliver(shop, notification)).text == "success"
    status = await shop.get_order(order)
    assert status["status"] == "delivered" and status["delivered_keys"] == 1


# ---------------------------------------------------------------- notifications that are refused


async def _refused(shop, notification: SimNotification, caplog, reason: str) -> None:
    before = await _snapshot(shop)
    with caplog.at_level(logging.WARNING, logger="quanyi.payments.notify"):
        response = await _deliver(shop, notification)
    assert (response.status_code, response.text) == (400, "fail")
    assert await _snapshot(shop) == before
    assert any("gateway=alipay" in r.getMessage() and reason in r.getMessage() for r in caplog.records), (
        reason, [r.getMessage() for r in caplog.records])
    caplog.clear()


async def test_forged_signature_is_refused_and_changes_nothing(shop, alipay, sim, order, caplog):
    _, notification = await _paid(shop, sim, order)
    await _refused(shop, sim.forged(notification), caplog, "bad signature")
    await _refused(shop, SimNotification(notification.url, {**notification.params, "sign_type": "RSA"}), caplog,
                   "unsupported sign_type")
    assert (await shop.get_order(order))["status"] == "pending_payment"


async def test_tampered_amounts_are_refused_both_ways(shop, alipay, sim, order, caplog):
    payment, notification = await _paid(shop, sim, order)
    for amount in ("0.01", "198.00"):
        # Changed after Alipay signed it: the signature no longer matches.
        await _refused(shop, sim.tampered(notification, total_amount=amount), caplog, "bad signature")
        # Correctly signed, but not what this payment asked for.
        await _refused(shop, sim.notification(payment["payment_no"], total_amount=amount), caplog,
                       "payment_amount_mismatch")
    assert (await _deliver(shop, notification)).text == "success"  # the genuine one still pays


async def test_notification_for_an_unknown_order_is_refused(shop, alipay, sim, order, caplog):
    await alipay.create_checkout(CheckoutRequest(payment_no="PYNOTOURS", amount_cents=1980, currency="CNY",
                                                 subject="x", notify_url="http://test/payments/alipay/notify",
                                                 return_url="http://test/r", mode="qr"))
    sim.pay("PYNOTOURS")
    await _refused(shop, sim.take_notifications()[0], caplog, "unknown_payment")


async def test_stale_replayed_and_future_notify_times_are_refused(shop, alipay, sim, order, caplog):
    payment, _ = await _paid(shop, sim, order)
    now = dt.datetime.now(dt.UTC)
    for moment in (now - dt.timedelta(days=3), now + dt.timedelta(hours=1)):
        await _refused(shop, sim.notification(payment["payment_no"], notify_time=moment), caplog, "notify_time")
    # Alipay's last retry comes ~25 hours after the first attempt, with the original notify_time.
    retried = sim.notification(payment["payment_no"], notify_time=now - dt.timedelta(hours=25))
    assert (await _deliver(shop, retried)).text == "success"


async def test_notifications_for_another_app_or_seller_or_malformed_are_refused(shop, alipay, sim, order, caplog):
    payment, _ = await _paid(shop, sim, order)
    no = payment["payment_no"]
    await _refused(shop, sim.notification(no, app_id="2021999999999999"), caplog, "app_id")
    await _refused(shop, sim.notification(no, seller_id="2088999999999999"), caplog, "seller_id")
    await _refused(shop, sim.notification(no, trade_status="TRADE_PENDING_X"), caplog, "unknown trade_status")
    await _refused(shop, sim.notification(no, total_amount="-19.80"), caplog, "not a yuan amount")
    await _refused(shop, sim.notification(no, gmt_payment="yesterday"), caplog, "not an Alipay timestamp")
    good = sim.notification(no)
    await _refused(shop, SimNotification(good.url, {k: v for k, v in good.params.items() if k != "notify_id"}),
                   caplog, "lacks notify_id")
    for body in (b"\xff\xfe", b"a=1&a=2", b"%%%", b""):
        response = await shop.client.post("/payments/alipay/notify", content=body,
                                          headers={"Content-Type": "application/x-www-form-urlencoded"})
        assert (response.status_code, response.text) == (400, "fail")
    assert (await shop.get_order(order))["status"] == "pending_payment"


# ---------------------------------------------------------------- active query (主动查单)


async def test_a_lost_notification_is_recovered_by_querying(shop, alipay, sim, order):
    payment = await _start(shop, order)
    assert (await alipay.query_trade(payment["payment_no"])).state == "not_found"  # cashier never opened
    await _open_cashier(payment)
    assert (await alipay.query_trade(payment["payment_no"])).state == "pending"
    sim.lose_next_notifications(1)
    trade = sim.pay(payment["payment_no"])
    assert sim.take_notifications() == []

    answer = await alipay.query_trade(payment["payment_no"])
    assert (answer.state, answer.gateway_trade_no, answer.amount_cents, answer.currency) == (
        "paid", trade.trade_no, 1980, "CNY")
    async with shop.ctx.db.transaction() as session:
        effect = await payments_service.confirm_payment(session=session, gateway_name="alipay",
                                                        notification=answer.as_notification())
    assert effect == "delivered"
    status = await shop.get_order(order)
    assert status["status"] == "delivered" and status["delivered_keys"] == 1
    # Had the notification arrived after all, it would change nothing.
    before = await _snapshot(shop)
    assert (await _deliver(shop, sim.notification(payment["payment_no"]))).text == "success"
    assert await _snapshot(shop) == before


async def test_a_closed_trade_queries_as_closed(shop, alipay, sim, order):
    payment = await _start(shop, order)
    await _open_cashier(payment)
    sim.close(payment["payment_no"])
    answer = await alipay.query_trade(payment["payment_no"])
    assert answer.state == "closed" and answer.amount_cents is None


# ---------------------------------------------------------------- refunds


async def test_full_and_partial_refunds_are_idempotent_and_bounded(shop, alipay, sim, order):
    payment, notification = await _paid(shop, sim, order)
    assert (await _deliver(shop, notification)).text == "success"

    first = await alipay.refund(_refund(payment, "RF1", 500))
    assert (first.state, first.amount_cents) == ("succeeded", 500)
    again = await alipay.refund(_refund(payment, "RF1", 500))
    assert again == first  # the same refund number never refunds twice
    assert sim.trade(payment["payment_no"]).refunded_cents == 500
    changed = await alipay.refund(_refund(payment, "RF1", 600))
    assert changed.state == "failed" and "ACQ.DISCORDANT_REPEAT_REQUEST" in changed.detail

    too_much = await alipay.refund(_refund(payment, "RF2", 1481))
    assert too_much.state == "failed" and "ACQ.REFUND_AMT_NOT_EQUAL_TOTAL" in too_much.detail
    rest = await alipay.refund(_refund(payment, "RF3", 1480))
    assert rest.state == "succeeded"
    assert sim.trade(payment["payment_no"]).refunded_cents == 1980
    assert (await alipay.query_trade(payment["payment_no"])).state == "closed"  # fully refunded

    queried = await alipay.query_refund(refund_no="RF3", payment_no=payment["payment_no"])
    assert (queried.state, queried.amount_cents) == ("succeeded", 1480)
    missing = await alipay.query_refund(refund_no="RF-none", payment_no=payment["payment_no"])
    # Alipay's rule: a success answer without refund data is "not refunded (yet)", never a refusal.
    assert (missing.state, missing.amount_cents) == ("processing", 0) and "same out_request_no" in missing.detail
    assert (await alipay.refund(_refund(payment, "RF4", 1))).state == "failed"


async def test_a_refund_without_fund_change_is_processing_until_the_query_shows_it(shop, alipay, sim, order):
    payment, _ = await _paid(shop, sim, order)
    sim.hold_refunds = True
    pending = await alipay.refund(_refund(payment, "RF1", 700))
    assert (pending.state, pending.amount_cents) == ("processing", 700)
    assert (await alipay.refund(_refund(payment, "RF1", 700))).state == "processing"  # asking again is safe
    assert (await alipay.query_refund(refund_no="RF1", payment_no=payment["payment_no"])).state == "processing"
    sim.settle_refunds()
    settled = await alipay.query_refund(refund_no="RF1", payment_no=payment["payment_no"])
    assert (settled.state, settled.amount_cents) == ("succeeded", 700)
    assert await alipay.refund(_refund(payment, "RF1", 700)) == settled
    assert sim.trade(payment["payment_no"]).refunded_cents == 700


async def test_refunds_of_unpaid_or_unknown_trades_are_refused(shop, alipay, sim, order):
    payment = await _start(shop, order)
    unknown = await alipay.refund(_refund(payment, "RF1", 100))
    assert unknown.state == "failed" and "ACQ.TRADE_NOT_EXIST" in unknown.detail
    await _open_cashier(payment)
    unpaid = await alipay.refund(_refund(payment, "RF1", 100))
    assert unpaid.state == "failed" and "ACQ.TRADE_STATUS_ERROR" in unpaid.detail
    other = await alipay.refund(RefundRequest(**{**_fields(_refund(payment, "RF2", 100)), "currency": "USD"}))
    assert other.state == "failed" and "CNY" in other.detail


# ---------------------------------------------------------------- outages and answers we must not believe


async def test_gateway_5xx_timeouts_and_unreachable_raise_unavailable(shop, alipay, sim, order, peer):
    payment = await _start(shop, order)
    sim.fail_next(2, status=502)
    for call in (alipay.query_trade(payment["payment_no"]), alipay.refund(_refund(payment, "RF1", 100))):
        with pytest.raises(GatewayUnavailable, match="HTTP 502"):
            await call
    assert (await alipay.query_trade(payment["payment_no"])).state == "not_found"  # recovered

    slow = AlipayGateway(AlipayConfig(**{**sim.merchant_config(peer[1]), "timeout_seconds": 0.2}), http=shop.ctx.http)
    sim.latency = 1.0
    with pytest.raises(GatewayUnavailable, match="Timeout"):
        await slow.query_trade(payment["payment_no"])
    sim.latency = 0

    down = AlipayGateway(AlipayConfig(**sim.merchant_config("http://127.0.0.1:9")), http=shop.ctx.http)
    with pytest.raises(GatewayUnavailable, match="ConnectError"):
        await down.query_trade(payment["payment_no"])


async def test_answers_and_requests_with_the_wrong_keys(shop, alipay, sim, order, peer):
    payment = await _start(shop, order)
    other = AlipayKeys.generate()
    config = sim.merchant_config(peer[1])
    # Alipay's answer checked with a key that is not Alipay's: not believed, whatever it says.
    wrong_platform = AlipayGateway(AlipayConfig(**{**config, "alipay_public_key": other.alipay_public_pem}),
                                   http=shop.ctx.http)
    with pytest.raises(GatewayUnavailable, match="signature does not verify"):
        await wrong_platform.query_trade(payment["payment_no"])
    # Our request signed with a key Alipay does not know: Alipay refuses it (isv.invalid-signature).
    wrong_merchant = AlipayGateway(AlipayConfig(**{**config, "merchant_private_key": other.merchant_private_pem}),
                                   http=shop.ctx.http)
    with pytest.raises(GatewayUnavailable, match="isv.invalid-signature"):
        await wrong_merchant.query_trade(payment["payment_no"])
    refused = await wrong_merchant.refund(_refund(payment, "RF1", 100))
    assert refused.state == "failed" and "isv.invalid-signature" in refused.detail
    assert sim.calls == ["alipay.trade.query"]  # only the correctly signed request reached a business method


def test_config_refuses_bad_keys_and_urls(keys):
    base = {"app_id": "2021000000000001", "merchant_private_key": keys.merchant_private_pem,
            "alipay_public_key": keys.alipay_public_pem}
    assert AlipayConfig(**base).gateway_url == "https://openapi.alipay.com/gateway.do"
    assert "BEGIN" not in repr(AlipayConfig(**base).merchant_private_key)
    for bad in ({"merchant_private_key": "junk"}, {"alipay_public_key": keys.merchant_private_pem},
                {"gateway_url": "ftp://x/gateway.do"}, {"app_id": "abc"}, {"seller_id": "123"}):
        with pytest.raises(ValueError):
            AlipayConfig(**{**base, **bad})


# ---------------------------------------------------------------- the peer's own delivery (auto mode)


async def test_auto_mode_resends_until_the_merchant_acknowledges(keys):
    received: list[bytes] = []

    async def merchant(request: Request) -> PlainTextResponse:  # says "fail" twice, then "success"
        received.append(await request.body())
        return PlainTextResponse("success" if len(received) >= 3 else "fail")

    receiver = Starlette(routes=[Route("/notify", merchant, methods=["POST"])])
    simulator = AlipaySimulator(keys=keys, mode="auto", retry_delays=(0, 0.05, 0.05, 0.05))
    with serve_in_thread(receiver) as merchant_url, serve_in_thread(simulator.app) as peer_url:
        async with httpx.AsyncClient() as http:
            gateway = AlipayGateway(AlipayConfig(**simulator.merchant_config(peer_url)), http=http)
            checkout = await gateway.create_checkout(CheckoutRequest(
                payment_no="PYAUTO", amount_cents=100, currency="CNY", subject="x", mode="qr",
                notify_url=f"{merchant_url}/notify", return_url=f"{merchant_url}/back"))
        assert checkout.qr_code
        simulator.pay("PYAUTO")
        assert await asyncio.to_thread(simulator.wait_until_idle)
    simulator.stop()
    assert len(received) == 3 and len(set(received)) == 1  # the same signed notification each time
    assert len(simulator.delivered) == 1 and simulator.given_up == []
