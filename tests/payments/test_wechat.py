"""WeChat Pay v3 through the real app and the WeChat Pay simulator on a real port: Native checkout,
signed + encrypted notifications (duplicate, concurrent, out of order, forged, tampered, stale, unknown),
recovery of a lost notification by active query, refunds, and a gateway that fails or lies."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import time

import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import Response
from sqlalchemy import select, update

from quanyi.orders.models import Order
from quanyi.payments import service as payments_service
from quanyi.payments.gateway import CheckoutRequest, GatewayUnavailable, NotificationRejected, RefundRequest
from quanyi.payments.models import GatewayEvent, Payment, PaymentStatus
from quanyi.payments.wechat import WechatConfig, WechatGateway
from quanyi.payments.wechat.gateway import WechatCheckoutRefused, WechatUnsupported
from quanyi.tasks import sweep_once
from quanyi.testpeers.runner import serve_in_thread
from quanyi.testpeers.wechat import SimNotification, WechatPaySimulator, new_rsa_key, pem_private, pem_public

NOTIFY = "/payments/wechat/notify"


@pytest.fixture
def sim():
    simulator = WechatPaySimulator(mode="manual")
    with simulator.serve():
        yield simulator


@pytest.fixture
async def wechat(ctx, app, sim) -> WechatGateway:
    gateway = WechatGateway(WechatConfig(**sim.merchant_config()), http=ctx.http)
    ctx.gateways.register(gateway)
    return gateway


async def _start(shop, order: dict, gateway: WechatGateway) -> str:
    """Open a WeChat payment for the order through the shop's API; returns our payment_no."""
    response = await shop.client.post(f"/api/orders/{order['order_no']}/payments", headers=shop.auth(order),
                                      json={"gateway": gateway.name, "mode": "page"})
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["cashier_url"] is None and body["qr_code"].startswith("weixin://")  # Native pay: a code to scan
    return body["payment_no"]


async def _post(shop, notification: SimNotification) -> httpx.Response:
    return await shop.client.post(NOTIFY, content=notification.body, headers=notification.headers)


async def _pay_and_take(sim, payment_no: str) -> SimNotification:
    sim.pay(payment_no)
    [notification] = sim.take_notifications()
    return notification


def _acked(response: httpx.Response) -> bool:
    return response.status_code == 200 and response.json() == {"code": "SUCCESS", "message": "成功"}


def _refused(response: httpx.Response) -> str:
    assert response.status_code == 400, response.text
    answer = response.json()
    assert answer["code"] == "FAIL"
    return str(answer["message"])


async def _state(shop, order: dict) -> tuple[str, int]:
    status = await shop.get_order(order)
    return status["status"], status["delivered_keys"]


# ------------------------------------------------------------ checkout


async def test_native_checkout_gives_a_qr_code_and_repeats_idempotently(shop, wechat, sim, order):
    assert sim.trade_state(await _start(shop, order, wechat)) == "NOTPAY"  # through the payments service
    payment_no = "PYQRCODE0000000001"
    request = CheckoutRequest(payment_no=payment_no, amount_cents=1980, currency="CNY", subject="Video VIP x1",
                              notify_url="http://test/payments/wechat/notify", return_url="http://test/", mode="page")
    first = await wechat.create_checkout(request)
    again = await wechat.create_checkout(request)
    assert first.cashier_url is None and first.qr_code and first.qr_code.startswith("weixin://wxpay/bizpayurl?pr=")
    assert again.qr_code == first.qr_code

    with pytest.raises(WechatCheckoutRefused, match="INVALID_REQUEST"):  # same out_trade_no, other amount
        await wechat.create_checkout(CheckoutRequest(**{**_fields(request), "amount_cents": 1}))
    with pytest.raises(WechatUnsupported, match="CNY only"):
        await wechat.create_checkout(CheckoutRequest(**{**_fields(request), "currency": "USD"}))
    sim.pay(payment_no)
    with pytest.raises(WechatCheckoutRefused, match="ORDERPAID"):
        await wechat.create_checkout(request)


def _fields(request: CheckoutRequest) -> dict:
    return {name: getattr(request, name) for name in request.__slots__}


async def test_a_checkout_past_its_expiry_is_closed_at_the_gateway(wechat, sim):
    expires_at = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(minutes=15)
    request = CheckoutRequest(payment_no="PYEXPIRE0000000001", amount_cents=100, currency="CNY", subject="x",
                              notify_url="http://test/payments/wechat/notify", return_url="http://test/",
                              expires_at=expires_at)
    await wechat.create_checkout(request)
    assert (await wechat.query_trade(request.payment_no)).state == "pending"
    # The gateway's clock, not ours, says when: a second before the time_expire we sent, then at it.
    sim.clock = lambda: expires_at - dt.timedelta(seconds=1)
    assert (await wechat.query_trade(request.payment_no)).state == "pending"
    sim.clock = lambda: expires_at
    assert (await wechat.query_trade(request.payment_no)).state == "closed"
    with pytest.raises(ValueError, match="CLOSED"):
        sim.pay(request.payment_no)


# ------------------------------------------------------------ notifications


async def test_paid_notification_delivers_once_and_a_duplicate_delivers_nothing_new(
        shop, wechat, sim, stocked_sku, order):
    payment_no = await _start(shop, order, wechat)
    notification = await _pay_and_take(sim, payment_no)
    assert _acked(await _post(shop, notification))
    assert await _state(shop, order) == ("delivered", 1)
    assert await shop.available(stocked_sku.id) == 9

    assert _acked(await _post(shop, notification))  # WeChat re-sends the same notification id
    assert await _state(shop, order) == ("delivered", 1)
    assert await shop.available(stocked_sku.id) == 9
    assert await shop.count(GatewayEvent) == 1
    payment = await shop.scalar(select(Payment).where(Payment.payment_no == payment_no))
    assert payment.status == PaymentStatus.SUCCEEDED and payment.gateway_trade_no.startswith("4200")


async def test_concurrent_duplicate_notifications_deliver_exactly_once(shop, wechat, sim, stocked_sku):
    order = await shop.create_order(stocked_sku.id, quantity=3)
    payment_no = await _start(shop, order, wechat)
    notification = await _pay_and_take(sim, payment_no)
    responses = await asyncio.gather(*[_post(shop, notification) for _ in range(6)])
    assert any(_acked(r) for r in responses)
    # A copy that loses the race for the event id on PostgreSQL is refused in WeChat's format (it retries).
    losers = [r for r in responses if not _acked(r)]
    assert all(_refused(r) == "processed concurrently; retry" for r in losers), [r.text for r in losers]
    assert await _state(shop, order) == ("delivered", 3)
    assert await shop.available(stocked_sku.id) == 7
    assert await shop.count(GatewayEvent) == 1
    assert _acked(await _post(shop, notification))  # whichever copy lost the race, a re-send is acknowledged


async def test_notifications_out_of_order_change_nothing_backwards(shop, wechat, sim, order):
    payment_no = await _start(shop, order, wechat)
    early = sim.notification(payment_no)  # built while NOTPAY: an older state arriving at any time
    assert _acked(await _post(shop, early))
    assert await _state(shop, order) == ("pending_payment", 0)

    success = await _pay_and_take(sim, payment_no)
    stale_state = sim.notification(payment_no, trade_state="USERPAYING")
    assert _acked(await _post(shop, success))
    assert _acked(await _post(shop, stale_state))  # a late "still paying" after the success
    assert _acked(await _post(shop, early))
    assert await _state(shop, order) == ("delivered", 1)


async def test_forged_notification_is_refused_with_a_clear_log_line(shop, wechat, sim, order, caplog):
    payment_no = await _start(shop, order, wechat)
    sim.pay(payment_no)
    sim.take_notifications()
    with caplog.at_level(logging.WARNING, logger="quanyi.payments.notify"):
        reason = _refused(await _post(shop, sim.notification(payment_no, forged=True)))
    assert reason == "bad signature"
    assert any("gateway=wechat" in r.message and "bad signature" in r.message for r in caplog.records)
    assert await _state(shop, order) == ("pending_payment", 0)
    assert await shop.count(GatewayEvent) == 0


async def test_tampered_amounts_are_refused_both_ways(shop, wechat, sim, order):
    payment_no = await _start(shop, order, wechat)
    sim.pay(payment_no)
    sim.take_notifications()
    for amount in (1, 1979, 1981, 198000):
        # Changed after signing: the signature no longer covers the body.
        assert _refused(await _post(shop, sim.notification(payment_no, tamper_total=amount))) == "bad signature"
        # Correctly signed, but not what we asked for: the payments service refuses it.
        reason = _refused(await _post(shop, sim.notification(payment_no, total=amount)))
        assert f"notification says {amount} CNY" in reason and "expects 1980 CNY" in reason
    assert await _state(shop, order) == ("pending_payment", 0)
    assert await shop.count(GatewayEvent) == 0
    assert _acked(await _post(shop, sim.notification(payment_no)))
    assert await _state(shop, order) == ("delivered", 1)


@pytest.mark.parametrize("total", [19.8, "1980", -1980, True, 10**12])
async def test_junk_amounts_in_a_signed_notification_are_refused(shop, wechat, sim, order, total):
    payment_no = await _start(shop, order, wechat)
    sim.pay(payment_no)
    reason = _refused(await _post(shop, sim.notification(payment_no, total=total)))
    assert "malformed notification" in reason and "amount.total" in reason
    assert await _state(shop, order) == ("pending_payment", 0)


async def test_notification_for_an_unknown_order_is_refused(shop, wechat, sim):
    stranger = CheckoutRequest(payment_no="PYNOTOURS000000001", amount_cents=1980, currency="CNY", subject="x",
                               notify_url="http://test/payments/wechat/notify", return_url="http://test/")
    await wechat.create_checkout(stranger)
    notification = await _pay_and_take(sim, stranger.payment_no)
    assert "no wechat payment 'PYNOTOURS000000001'" in _refused(await _post(shop, notification))
    assert await shop.count(GatewayEvent) == 0


# A future stamp comes closer to "now" while the request travels: 301 s ahead was accepted once when a loaded
# CI machine took over a second to deliver it, so the future case keeps a margin past the 300 s window.
@pytest.mark.parametrize("skew", [-301, 330, -3600])
async def test_stale_or_future_timestamp_is_refused(shop, wechat, sim, order, skew):
    payment_no = await _start(shop, order, wechat)
    sim.pay(payment_no)
    stamp = int(dt.datetime.now(dt.UTC).timestamp()) + skew
    stale = sim.notification(payment_no, timestamp=stamp)
    assert "outside the accepted window" in _refused(await _post(shop, stale))
    assert await _state(shop, order) == ("pending_payment", 0)
    # WeChat signs each retry afresh: the same notification re-sent later is accepted.
    assert _acked(await _post(shop, sim.resigned(stale)))
    assert await _state(shop, order) == ("delivered", 1)


async def test_notification_for_another_merchant_or_key_is_refused(shop, wechat, sim, order):
    payment_no = await _start(shop, order, wechat)
    sim.pay(payment_no)
    notification = sim.take_notifications()[0]
    now = dt.datetime.now(dt.UTC)
    other_app = WechatGateway(WechatConfig(**{**sim.merchant_config(), "appid": "wxotherapp0000001"}),
                              http=shop.ctx.http)
    with pytest.raises(NotificationRejected, match="not us"):
        other_app.verify_notification(headers=notification.headers, body=notification.body, now=now)
    wrong_key = WechatGateway(WechatConfig(**{**sim.merchant_config(), "apiv3_key": "k" * 32}), http=shop.ctx.http)
    with pytest.raises(NotificationRejected, match="does not decrypt"):
        wrong_key.verify_notification(headers=notification.headers, body=notification.body, now=now)
    headers = {**notification.headers, "Wechatpay-Serial": "PUB_KEY_ID_0000000000000000000000000000"}
    assert "not our WeChat Pay public key" in _refused(
        await shop.client.post(NOTIFY, content=notification.body, headers=headers))
    probe = {**notification.headers, "Wechatpay-Signature": "WECHATPAY/SIGNTEST/" + "A" * 40}
    assert _refused(await shop.client.post(NOTIFY, content=notification.body, headers=probe)) == "bad signature"
    assert _refused(await shop.client.post(NOTIFY, content=b"{}", headers=notification.headers)) == "bad signature"
    assert await _state(shop, order) == ("pending_payment", 0)


async def test_payment_after_the_order_expired_still_delivers(shop, wechat, sim, order):
    payment_no = await _start(shop, order, wechat)
    async with shop.ctx.db.transaction() as session:
        await session.execute(update(Order).where(Order.order_no == order["order_no"]).values(
            expires_at=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)))
    assert await sweep_once(shop.ctx) == 1
    assert (await _state(shop, order))[0] == "cancelled"
    notification = await _pay_and_take(sim, payment_no)
    assert _acked(await _post(shop, notification))
    assert await _state(shop, order) == ("delivered", 1)


async def test_a_lost_notification_is_recovered_by_active_query(shop, wechat, sim, order):
    payment_no = await _start(shop, order, wechat)
    assert (await wechat.query_trade(payment_no)).state == "pending"
    assert (await wechat.query_trade("PYNEVERCREATED0001")).state == "not_found"
    sim.lose_next(1)
    transaction_id = sim.pay(payment_no)
    assert sim.take_notifications() == [] and len(sim.lost) == 1

    trade = await wechat.query_trade(payment_no)
    assert (trade.state, trade.gateway_trade_no, trade.amount_cents, trade.currency) == (
        "paid", transaction_id, 1980, "CNY")
    assert trade.paid_at is not None and trade.paid_at.utcoffset() == dt.timedelta(hours=8)
    async with shop.ctx.db.transaction() as session:
        effect = await payments_service.confirm_payment(
            session=session, gateway_name="wechat", notification=trade.as_notification())
    assert effect == "delivered"
    assert await _state(shop, order) == ("delivered", 1)
    # The notification WeChat finally sends after all is acknowledged and delivers nothing new.
    assert _acked(await _post(shop, sim.lost[0]))
    assert await _state(shop, order) == ("delivered", 1)


# ------------------------------------------------------------ refunds


def _refund(payment_no: str, refund_no: str, amount: int, transaction_id: str = "") -> RefundRequest:
    return RefundRequest(refund_no=refund_no, payment_no=payment_no, gateway_trade_no=transaction_id,
                         amount_cents=amount, payment_amount_cents=1980, currency="CNY", reason="测试退款")


async def test_partial_refunds_are_idempotent_bounded_and_queryable(shop, wechat, sim, order):
    payment_no = await _start(shop, order, wechat)
    transaction_id = sim.pay(payment_no)

    first = await wechat.refund(_refund(payment_no, "RF1", 500, transaction_id))
    assert (first.state, first.amount_cents) == ("processing", 500) and first.gateway_refund_no
    assert await wechat.refund(_refund(payment_no, "RF1", 500, transaction_id)) == first
    changed = await wechat.refund(_refund(payment_no, "RF1", 600, transaction_id))
    assert changed.state == "failed" and "INVALID_REQUEST" in changed.detail

    too_much = await wechat.refund(_refund(payment_no, "RF2", 1481, transaction_id))
    assert too_much.state == "failed" and "可退金额" in too_much.detail
    rest = await wechat.refund(_refund(payment_no, "RF3", 1480, transaction_id))
    assert rest.state == "processing"

    assert (await wechat.query_refund(refund_no="RF3", payment_no=payment_no)).state == "processing"
    sim.settle_refunds()
    done = await wechat.query_refund(refund_no="RF3", payment_no=payment_no)
    assert (done.state, done.amount_cents, done.gateway_refund_no) == ("succeeded", 1480, rest.gateway_refund_no)
    missing = await wechat.query_refund(refund_no="RF-none", payment_no=payment_no)
    assert missing.state == "failed" and "RESOURCE_NOT_EXISTS" in missing.detail
    assert (await wechat.query_trade(payment_no)).state == "paid"  # REFUND: the money did arrive
    nothing_left = await wechat.refund(_refund(payment_no, "RF4", 1, transaction_id))
    assert nothing_left.state == "failed"


async def test_full_refund_and_refusals(shop, wechat, sim, order):
    payment_no = await _start(shop, order, wechat)
    unpaid = await wechat.refund(_refund(payment_no, "RF0", 1980))
    assert unpaid.state == "failed" and "RESOURCE_NOT_EXISTS" in unpaid.detail
    sim.pay(payment_no)
    sim.refund_status = "SUCCESS"
    full = await wechat.refund(_refund(payment_no, "RF1", 1980))
    assert (full.state, full.amount_cents) == ("succeeded", 1980)
    for bad in (0, -5, 1981):  # refused before asking
        result = await wechat.refund(_refund(payment_no, f"RFBAD{bad}", bad))
        assert result.state == "failed" and "positive" in result.detail


# ------------------------------------------------------------ a gateway that fails or lies


async def test_gateway_5xx_timeouts_and_outages_raise_unavailable(ctx, wechat, sim):
    await wechat.create_checkout(CheckoutRequest(
        payment_no="PYOUTAGE0000000001", amount_cents=100, currency="CNY", subject="x",
        notify_url="http://test/payments/wechat/notify", return_url="http://test/"))
    for status in (500, 503):
        sim.fail_next(1, status=status)
        with pytest.raises(GatewayUnavailable, match=f"HTTP {status}"):
            await wechat.query_trade("PYOUTAGE0000000001")
    sim.fail_next(1)
    with pytest.raises(GatewayUnavailable):
        await wechat.refund(_refund("PYOUTAGE0000000001", "RF1", 100))
    assert (await wechat.query_trade("PYOUTAGE0000000001")).state == "pending"

    slow = WechatGateway(WechatConfig(**{**sim.merchant_config(), "timeout_seconds": 0.2}), http=ctx.http)
    sim.latency = 0.6
    with pytest.raises(GatewayUnavailable, match="Timeout"):
        await slow.query_trade("PYOUTAGE0000000001")
    sim.latency = 0.0
    down = WechatGateway(WechatConfig(**{**sim.merchant_config(), "base_url": "http://127.0.0.1:9"}), http=ctx.http)
    with pytest.raises(GatewayUnavailable, match="ConnectError"):
        await down.query_trade("PYOUTAGE0000000001")


async def test_answers_that_do_not_verify_are_not_believed(ctx, wechat, sim):
    request = CheckoutRequest(payment_no="PYFORGED0000000001", amount_cents=100, currency="CNY", subject="x",
                              notify_url="http://test/payments/wechat/notify", return_url="http://test/")
    await wechat.create_checkout(request)
    sim.pay(request.payment_no)
    sim.forge_answers = True
    with pytest.raises(GatewayUnavailable, match="bad signature"):
        await wechat.query_trade(request.payment_no)
    with pytest.raises(GatewayUnavailable, match="bad signature"):
        await wechat.query_refund(refund_no="RF1", payment_no=request.payment_no)  # even a signed 404
    sim.forge_answers = False
    assert (await wechat.query_trade(request.payment_no)).state == "paid"


async def test_the_simulator_refuses_requests_not_signed_by_the_merchant(ctx, wechat, sim):
    impostor = WechatGateway(WechatConfig(**{**sim.merchant_config(), "merchant_private_key": pem_private(
        new_rsa_key())}), http=ctx.http)
    with pytest.raises(GatewayUnavailable, match="HTTP 401.*SIGN_ERROR"):
        await impostor.query_trade("PYANY0000000000001")


# ------------------------------------------------------------ the simulator's own delivery (auto mode)


def test_auto_mode_resends_the_same_notification_until_acknowledged():
    sim = WechatPaySimulator(mode="auto", retry_delays=(0.05, 0.05, 0.05))
    received: list[tuple[str, str]] = []
    gateways: list[WechatGateway] = []
    receiver = FastAPI()

    @receiver.post("/payments/wechat/notify")
    async def notify(request: Request) -> Response:
        body = await request.body()
        try:
            parsed = gateways[0].verify_notification(headers=request.headers, body=body, now=dt.datetime.now(dt.UTC))
        except NotificationRejected as exc:
            return Response(json.dumps({"code": "FAIL", "message": exc.message}), 400)
        received.append((parsed.event_id or "", parsed.gateway_trade_no))
        return Response(status_code=204 if len(received) >= 3 else 500)

    async def scenario(sim_url: str, notify_url: str) -> None:
        async with httpx.AsyncClient() as http:
            gateways.append(WechatGateway(WechatConfig(**sim.merchant_config(sim_url)), http=http))
            await gateways[0].create_checkout(CheckoutRequest(
                payment_no="PYAUTO000000000001", amount_cents=990, currency="CNY", subject="auto",
                notify_url=notify_url, return_url="http://test/"))

    with sim.serve() as sim_url, serve_in_thread(receiver) as receiver_url:
        asyncio.run(scenario(sim_url, f"{receiver_url}/payments/wechat/notify"))
        transaction_id = sim.pay("PYAUTO000000000001")
        deadline = time.monotonic() + 60  # a generous bound: a loaded machine may stall
        while len(sim.deliveries) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
    assert [status for _, status in sim.deliveries] == [500, 500, 204]
    assert len({event for event, _ in sim.deliveries}) == 1
    assert [trade for _, trade in received] == [transaction_id] * 3 and len({e for e, _ in received}) == 1



async def test_the_payer_openid_reaches_the_shop_for_risk_control(shop, wechat, sim, order):
    payment_no = await _start(shop, order, wechat)
    sim.pay(payment_no, payer_openid="oPAYERopenid0000000000000001")
    [notification] = sim.take_notifications()
    verified = wechat.verify_notification(headers=notification.headers, body=notification.body,
                                          now=dt.datetime.now(dt.UTC))
    assert verified.payer_account == "oPAYERopenid0000000000000001"
    assert (await wechat.query_trade(payment_no)).payer_account == "oPAYERopenid0000000000000001"


async def test_a_merchant_on_platform_certificates_is_verified_by_the_certificate(shop, ctx, stocked_sku, order):
    """The older scheme: WeChat Pay signs with the platform certificate's key and names the certificate's serial;
    the shop configured with the certificate alone verifies, delivers, refuses other serials, and refuses a
    certificate that has expired since it was saved."""
    sim = WechatPaySimulator(mode="manual", verify_with="certificate")
    with sim.serve():
        config = WechatConfig(**sim.merchant_config())
        assert config.platform_public_key is None and config.platform_certificate
        gateway = WechatGateway(config, http=ctx.http)
        ctx.gateways.register(gateway)
        payment_no = await _start(shop, order, gateway)
        notification = await _pay_and_take(sim, payment_no)
        assert notification.headers["Wechatpay-Serial"] == sim.platform_serial
        assert _acked(await _post(shop, notification))
        assert await _state(shop, order) == ("delivered", 1)

        other = {**notification.headers, "Wechatpay-Serial": "1" + sim.platform_serial[1:]}
        assert "not our WeChat Pay public key or platform certificate" in _refused(
            await shop.client.post(NOTIFY, content=notification.body, headers=other))
        six_years_on = dt.datetime.now(dt.UTC) + dt.timedelta(days=6 * 365)
        with pytest.raises(NotificationRejected, match="expired on"):
            gateway.verify_notification(headers=notification.headers, body=notification.body, now=six_years_on)
        # While switching to the WeChat Pay public key both may be configured: either serial verifies.
        switching = WechatGateway(WechatConfig(**{**sim.merchant_config(), **{
            "platform_public_key": pem_public(new_rsa_key()), "platform_public_key_id": "PUB_KEY_ID_0000000001"}}),
            http=ctx.http)
        assert switching.verify_notification(headers=notification.headers, body=notification.body,
                                             now=dt.datetime.now(dt.UTC)).succeeded
