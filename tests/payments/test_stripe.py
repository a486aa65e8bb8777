"""The Stripe gateway against the Stripe simulator on a real port, through the real app (both backends):
checkout, signed webhooks (duplicates, concurrency, order, forgery, tampering, replay), active query,
refunds, and Stripe being down."""

from __future__ import annotations

import asyncio
import concurrent.futures
import datetime as dt
import json
import logging
import queue
import time

import httpx
import pytest
from sqlalchemy import select

from quanyi.inventory.models import CardKey
from quanyi.orders import service as orders_service
from quanyi.orders.models import Order
from quanyi.payments import service as payments_service
from quanyi.payments.gateway import GatewayUnavailable, RefundRequest
from quanyi.payments.models import GatewayEvent, Payment, PaymentStatus
from quanyi.payments.stripe.gateway import StripeConfig, StripeGateway
from quanyi.testpeers.runner import free_port, serve_in_thread
from quanyi.testpeers.stripe import Delivery, StripeSimulator

NOTIFY = "/payments/stripe/notify"


@pytest.fixture
def sim():
    simulator = StripeSimulator(mode="manual")
    with serve_in_thread(simulator.app) as base:
        simulator.public_url = base
        simulator.base_url = base  # type: ignore[attr-defined]
        yield simulator


def _config(sim: StripeSimulator, **overrides) -> StripeConfig:
    values = {"secret_key": sim.secret_key, "webhook_secret": sim.webhook_secret, "api_base_url": sim.base_url}
    return StripeConfig(**{**values, **overrides})


@pytest.fixture
def gateway(ctx, app, sim) -> StripeGateway:
    stripe = StripeGateway(_config(sim), http=ctx.http)
    ctx.gateways.register(stripe)
    return stripe


async def _start(shop, order) -> dict:
    response = await shop.client.post(f"/api/orders/{order['order_no']}/payments", headers=shop.auth(order),
                                      json={"gateway": "stripe"})
    assert response.status_code == 201, response.text
    return response.json()


async def _deliver(shop, delivery: Delivery) -> httpx.Response:
    return await shop.client.post(NOTIFY, content=delivery.body, headers=delivery.headers)


def _acknowledged(response: httpx.Response) -> bool:
    return response.status_code == 200 and response.json() == {"received": True}


async def _paid_delivery(shop, sim, order) -> tuple[dict, Delivery]:
    payment = await _start(shop, order)
    sim.pay(payment["payment_no"])
    [delivery] = sim.take_notifications()
    assert delivery.type == "checkout.session.completed"
    return payment, delivery


async def _snapshot(shop) -> tuple:
    async with shop.ctx.db.read_session() as session:
        orders = (await session.execute(select(Order.order_no, Order.status, Order.paid_at))).all()
        keys = (await session.execute(select(CardKey.id, CardKey.status, CardKey.order_id).order_by(CardKey.id))).all()
        payments = (await session.execute(select(Payment.payment_no, Payment.status, Payment.gateway_trade_no))).all()
        events = (await session.execute(select(GatewayEvent.event_id))).all()
    return sorted(orders), keys, sorted(payments), sorted(events)


async def _delivered_keys(shop, order) -> int:
    return await shop.count(CardKey, CardKey.order_id == (await _order_id(shop, order)))


async def _order_id(shop, order) -> int:
    return await shop.scalar(select(Order.id).where(Order.order_no == order["order_no"]))


# ------------------------------------------------------------------ checkout and the happy path


async def test_paying_on_the_stripe_page_delivers_the_order_once(shop, gateway, sim, order):
    payment = await _start(shop, order)
    assert payment["cashier_url"].startswith(f"{sim.base_url}/c/pay/cs_test_")
    method, path, headers = sim.requests[-1]
    assert (method, path) == ("POST", "/v1/checkout/sessions")
    assert headers["authorization"] == f"Bearer {sim.secret_key}"
    assert headers["idempotency-key"].startswith(payment["payment_no"] + "-")
    session = sim.session_for(payment["payment_no"])
    assert (session["amount_total"], session["currency"], session["client_reference_id"]) == (
        1980, "cny", payment["payment_no"])
    assert session["metadata"] == {"payment_no": payment["payment_no"]}
    assert 1800 <= session["expires_at"] - session["created"] <= 86400
    stored = await shop.scalar(select(Payment).where(Payment.payment_no == payment["payment_no"]))
    assert stored.gateway_session_id == session["id"]

    async with httpx.AsyncClient() as buyer:  # the buyer's browser on the hosted page
        page = await buyer.get(payment["cashier_url"])
        assert page.status_code == 200 and "<button>Pay</button>" in page.text
        paid = await buyer.post(payment["cashier_url"])
        assert paid.status_code == 303
        assert paid.headers["location"].endswith(f"/orders/{order['order_no']}?from=cashier")

    [delivery] = sim.take_notifications()
    response = await _deliver(shop, delivery)
    assert _acknowledged(response), response.text
    status = await shop.get_order(order)
    assert status["status"] == "delivered" and status["delivered_keys"] == 1
    stored = await shop.scalar(select(Payment).where(Payment.payment_no == payment["payment_no"]))
    assert stored.status == PaymentStatus.SUCCEEDED
    assert stored.gateway_trade_no == sim.session_for(payment["payment_no"])["payment_intent"]
    assert len(await shop.reveal(order)) == 1


async def test_starting_again_reuses_the_same_stripe_session(shop, gateway, sim, order):
    first = await _start(shop, order)
    again = await _start(shop, order)
    assert again["payment_no"] == first["payment_no"] and again["cashier_url"] == first["cashier_url"]
    assert len([r for r in sim.requests if r[1] == "/v1/checkout/sessions"]) == 2  # asked twice, one session


async def test_zero_decimal_yen_is_sent_and_accepted_as_whole_yen(shop, gateway, sim):
    sku = await shop.make_sku(code="JPY-1", price_cents=500, currency="JPY")
    await shop.stock(sku, 2)
    order = await shop.create_order(sku.id)
    payment, delivery = await _paid_delivery(shop, sim, order)
    assert (payment["amount_cents"], payment["currency"]) == (500, "JPY")
    assert sim.session_for(payment["payment_no"])["amount_total"] == 500
    assert _acknowledged(await _deliver(shop, delivery))
    assert (await shop.get_order(order))["status"] == "delivered"


async def test_stripe_refusing_the_checkout_is_a_clear_error_and_records_nothing(shop, gateway, sim):
    sku = await shop.make_sku(code="USD-CHEAP", price_cents=30, currency="USD")  # below Stripe's $0.50
    await shop.stock(sku, 1)
    order = await shop.create_order(sku.id)
    response = await shop.client.post(f"/api/orders/{order['order_no']}/payments", headers=shop.auth(order),
                                      json={"gateway": "stripe"})
    assert response.status_code == 409 and response.json()["code"] == "gateway_refused"
    assert "amount_too_small" in response.json()["detail"] and response.json()["stripe_code"] == "amount_too_small"
    # The payment was recorded before the call (no lock is held during it); it has no session and no money.
    payment = await shop.scalar(select(Payment))
    assert payment.status == "created" and payment.gateway_session_id is None and payment.gateway_trade_no is None


# ------------------------------------------------------------------ webhooks


async def test_duplicate_and_retried_events_deliver_nothing_new(shop, gateway, sim, order):
    _, delivery = await _paid_delivery(shop, sim, order)
    assert _acknowledged(await _deliver(shop, delivery))
    before = await _snapshot(shop)
    assert _acknowledged(await _deliver(shop, delivery))  # the very same request again
    assert _acknowledged(await _deliver(shop, sim.resign(delivery)))  # Stripe's retry: same event, fresh t
    assert await _snapshot(shop) == before
    assert await shop.count(GatewayEvent) == 1
    assert await _delivered_keys(shop, order) == 1


async def test_concurrent_copies_of_an_event_deliver_once_without_errors(shop, gateway, sim, order):
    _, delivery = await _paid_delivery(shop, sim, order)
    copies = [delivery, delivery, sim.resign(delivery)]
    responses = await asyncio.gather(*(_deliver(shop, copy) for copy in copies))
    statuses = [r.status_code for r in responses]
    # Each copy is acknowledged, or refused in Stripe's protocol (400 "processed concurrently; retry": it lost
    # the race on the event id and rolled back whole; Stripe retries it and the retry changes nothing).
    assert all(s == 200 or (s == 400 and "retry" in r.text) for s, r in zip(statuses, responses, strict=True)), [
        r.text for r in responses]
    assert statuses.count(200) >= 1
    assert await _delivered_keys(shop, order) == 1
    assert (await shop.get_order(order))["status"] == "delivered"
    # A loser's retry is acknowledged and changes nothing.
    assert _acknowledged(await _deliver(shop, sim.resign(delivery)))
    assert await _delivered_keys(shop, order) == 1


async def test_delayed_payment_events_out_of_order_pay_once(shop, gateway, sim, order):
    payment = await _start(shop, order)
    sim.pay(payment["payment_no"], delayed=True)
    sim.settle(payment["payment_no"])
    completed_unpaid, succeeded = sim.take_notifications()
    assert completed_unpaid.type == "checkout.session.completed"
    assert succeeded.type == "checkout.session.async_payment_succeeded"
    assert _acknowledged(await _deliver(shop, succeeded))  # the later event arrives first
    assert (await shop.get_order(order))["status"] == "delivered"
    before = await _snapshot(shop)
    assert _acknowledged(await _deliver(shop, completed_unpaid))  # the earlier "not paid yet" one changes nothing
    assert (await _snapshot(shop))[:3] == before[:3]
    assert await _delivered_keys(shop, order) == 1


async def test_a_completed_but_unpaid_session_does_not_pay(shop, gateway, sim, order):
    payment = await _start(shop, order)
    sim.pay(payment["payment_no"], delayed=True)
    [completed_unpaid] = sim.take_notifications()
    assert _acknowledged(await _deliver(shop, completed_unpaid))
    assert (await shop.get_order(order))["status"] == "pending_payment"
    sim.fail_delayed(payment["payment_no"])
    [failed] = sim.take_notifications()
    assert failed.type == "checkout.session.async_payment_failed"
    assert _acknowledged(await _deliver(shop, failed))
    assert (await shop.get_order(order))["status"] == "pending_payment"


async def test_expired_session_and_unrelated_events_are_acknowledged_and_ignored(shop, gateway, sim, order):
    payment = await _start(shop, order)
    sim.expire(payment["payment_no"])
    sim.send_event("payment_intent.succeeded", {"id": "pi_test_other", "object": "payment_intent", "amount": 1980,
                                                "metadata": {}})
    sim.send_event("checkout.session.completed", {"id": "cs_test_notours", "object": "checkout.session",
                                                  "payment_status": "paid", "amount_total": 5, "metadata": {}})
    before = await _snapshot(shop)
    for delivery in sim.take_notifications():
        assert _acknowledged(await _deliver(shop, delivery)), delivery.type
    assert (await _snapshot(shop))[:3] == before[:3]
    assert (await shop.get_order(order))["status"] == "pending_payment"


async def test_forged_signature_is_refused_with_a_clear_log_line(shop, gateway, sim, order, caplog):
    _, delivery = await _paid_delivery(shop, sim, order)
    before = await _snapshot(shop)
    forged = sim.resign(delivery, secret="whsec_" + "attacker" * 4)
    with caplog.at_level(logging.WARNING, logger="quanyi.payments.notify"):
        response = await _deliver(shop, forged)
    assert response.status_code == 400 and "no signature" in response.json()["error"]
    assert await _snapshot(shop) == before
    assert any("rejected" in r.getMessage() and "gateway=stripe" in r.getMessage() and "signature" in r.getMessage()
               for r in caplog.records)
    unsigned = Delivery(delivery.event_id, delivery.type, delivery.body, {"Content-Type": "application/json"})
    assert (await _deliver(shop, unsigned)).status_code == 400
    assert await _snapshot(shop) == before
    assert _acknowledged(await _deliver(shop, delivery))  # the genuine event still works afterwards


async def test_tampered_amounts_are_refused_both_ways(shop, gateway, sim, order):
    payment, delivery = await _paid_delivery(shop, sim, order)
    before = await _snapshot(shop)
    # 1. The body changed after Stripe signed it.
    tampered = sim.tamper(delivery, b'"amount_total": 1980', b'"amount_total": 1')
    response = await _deliver(shop, tampered)
    assert response.status_code == 400 and "signature" in response.json()["error"]
    # 2. A correctly signed event whose amount differs from what we asked for.
    session = sim.session_for(payment["payment_no"])
    for amount, currency in ((1, "cny"), (198000, "cny"), (1980, "usd")):
        sim.send_event("checkout.session.completed", {**session, "amount_total": amount, "currency": currency})
        [signed] = sim.take_notifications()
        response = await _deliver(shop, signed)
        assert response.status_code == 400 and "expects 1980 CNY" in response.json()["error"], response.text
    # 3. Correctly signed but the amount is not an integer of minor units.
    for junk in ("19.80", '"1980"', "-1980", "true", "1e3"):
        body = delivery.body.replace(b'"amount_total": 1980', b'"amount_total": ' + junk.encode())
        response = await _deliver(shop, sim.resign(delivery, body=body))
        assert response.status_code == 400 and "amount_total" in response.json()["error"], junk
    assert await _snapshot(shop) == before
    assert _acknowledged(await _deliver(shop, delivery))
    assert (await shop.get_order(order))["status"] == "delivered"


async def test_event_for_an_unknown_payment_is_refused(shop, gateway, sim, order):
    payment, _ = await _paid_delivery(shop, sim, order)
    session = sim.session_for(payment["payment_no"])
    unknown = "PY" + "0" * 18
    sim.send_event("checkout.session.completed", {**session, "metadata": {"payment_no": unknown},
                                                  "client_reference_id": unknown})
    [delivery] = sim.take_notifications()
    before = await _snapshot(shop)
    response = await _deliver(shop, delivery)
    assert response.status_code == 400 and unknown in response.json()["error"]
    assert await _snapshot(shop) == before


async def test_stale_and_future_timestamps_are_refused(shop, gateway, sim, order):
    _, delivery = await _paid_delivery(shop, sim, order)
    before = await _snapshot(shop)
    now = int(dt.datetime.now(dt.UTC).timestamp())
    for timestamp in (now - 400, now + 400):
        response = await _deliver(shop, sim.resign(delivery, timestamp=timestamp))
        assert response.status_code == 400 and "tolerance" in response.json()["error"]
    assert await _snapshot(shop) == before


async def test_a_payment_after_the_order_expired_is_still_honoured(shop, gateway, sim, order):
    _, delivery = await _paid_delivery(shop, sim, order)
    async with shop.ctx.db.transaction() as session:
        later = dt.datetime.now(dt.UTC) + dt.timedelta(hours=2)
        assert await orders_service.expire_due_orders(session=session, now=later) == 1
    assert (await shop.get_order(order))["status"] == "cancelled"
    assert _acknowledged(await _deliver(shop, delivery))
    status = await shop.get_order(order)
    assert status["status"] == "delivered" and status["delivered_keys"] == 1


# ------------------------------------------------------------------ active query


async def test_a_lost_event_is_recovered_by_querying_stripe(shop, gateway, sim, order):
    payment = await _start(shop, order)
    stored = await shop.scalar(select(Payment).where(Payment.payment_no == payment["payment_no"]))
    pending = await gateway.query_trade(payment["payment_no"], gateway_session_id=stored.gateway_session_id)
    assert pending.state == "pending"
    assert (await gateway.query_trade(payment["payment_no"])).state == "not_found"  # no payment intent yet

    sim.lose_next(1)
    sim.pay(payment["payment_no"])
    assert sim.take_notifications() == []
    by_session = await gateway.query_trade(payment["payment_no"], gateway_session_id=stored.gateway_session_id)
    by_search = await gateway.query_trade(payment["payment_no"])
    pi = sim.session_for(payment["payment_no"])["payment_intent"]
    for answer in (by_session, by_search):
        assert (answer.state, answer.gateway_trade_no, answer.amount_cents, answer.currency) == (
            "paid", pi, 1980, "CNY")
    for expected in ("delivered", "already_paid"):
        async with shop.ctx.db.transaction() as session:
            effect = await payments_service.confirm_payment(session=session, gateway_name="stripe",
                                                            notification=by_session.as_notification())
        assert effect == expected
    assert await _delivered_keys(shop, order) == 1


async def test_query_knows_expired_and_missing_sessions(shop, gateway, sim, order):
    payment = await _start(shop, order)
    session_id = sim.session_for(payment["payment_no"])["id"]
    sim.expire(payment["payment_no"])
    closed = await gateway.query_trade(payment["payment_no"], gateway_session_id=session_id)
    assert closed.state == "closed"
    missing = await gateway.query_trade(payment["payment_no"], gateway_session_id="cs_test_doesnotexist")
    assert missing.state == "not_found"


# ------------------------------------------------------------------ refunds


def _refund(payment: dict, pi: str, refund_no: str, amount: int) -> RefundRequest:
    return RefundRequest(refund_no=refund_no, payment_no=payment["payment_no"], gateway_trade_no=pi,
                         amount_cents=amount, payment_amount_cents=payment["amount_cents"], currency="CNY",
                         reason="buyer asked")


async def _paid(shop, sim, order) -> tuple[dict, str]:
    payment, delivery = await _paid_delivery(shop, sim, order)
    assert _acknowledged(await _deliver(shop, delivery))
    return payment, sim.session_for(payment["payment_no"])["payment_intent"]


async def test_partial_refunds_are_idempotent_and_never_exceed_the_payment(shop, gateway, sim, order):
    payment, pi = await _paid(shop, sim, order)
    first = await gateway.refund(_refund(payment, pi, "RF1", 500))
    assert first.state == "succeeded" and first.amount_cents == 500 and first.gateway_refund_no.startswith("re_")
    assert sim.requests[-1][2]["idempotency-key"] == "RF1"
    assert await gateway.refund(_refund(payment, pi, "RF1", 500)) == first  # asked again: the same refund
    changed = await gateway.refund(_refund(payment, pi, "RF1", 600))
    assert changed.state == "failed" and "idempotency_error" in changed.detail
    too_much = await gateway.refund(_refund(payment, pi, "RF2", 1481))
    assert too_much.state == "failed" and "amount_too_large" in too_much.detail
    rest = await gateway.refund(_refund(payment, pi, "RF3", 1480))
    assert rest.state == "succeeded"
    nothing_left = await gateway.refund(_refund(payment, pi, "RF4", 1))
    assert nothing_left.state == "failed" and "charge_already_refunded" in nothing_left.detail
    assert sorted(r["amount"] for r in sim.refunds()) == [500, 1480]

    queried = await gateway.query_refund(refund_no="RF3", payment_no=payment["payment_no"])
    assert (queried.state, queried.amount_cents, queried.gateway_refund_no) == ("succeeded", 1480,
                                                                               rest.gateway_refund_no)
    missing = await gateway.query_refund(refund_no="RF-none", payment_no=payment["payment_no"])
    assert missing.state == "failed" and "not found" in missing.detail


async def test_full_refund_and_a_pending_one_settling_later(shop, gateway, sim, order):
    payment, pi = await _paid(shop, sim, order)
    sim.next_refund_status = "pending"
    pending = await gateway.refund(_refund(payment, pi, "RFALL", 1980))
    assert pending.state == "processing" and pending.amount_cents == 1980
    sim.settle_refund(pending.gateway_refund_no)
    settled = await gateway.query_refund(refund_no="RFALL", payment_no=payment["payment_no"])
    assert settled.state == "succeeded" and settled.amount_cents == 1980


async def test_refund_of_an_unknown_or_unpaid_payment_is_refused(shop, gateway, sim, order):
    payment = await _start(shop, order)
    unknown = await gateway.refund(_refund(payment, "pi_test_nosuch", "RF9", 100))
    assert unknown.state == "failed" and "resource_missing" in unknown.detail
    junk = await gateway.refund(_refund(payment, "PY-not-a-pi", "RF9", 100))
    assert junk.state == "failed" and "pi_" in junk.detail
    assert sim.refunds() == []


# ------------------------------------------------------------------ Stripe unavailable


async def test_stripe_errors_and_timeouts_raise_gateway_unavailable(shop, ctx, gateway, sim, order):
    payment, pi = await _paid(shop, sim, order)
    sim.fail_next(1, 500)
    with pytest.raises(GatewayUnavailable, match="HTTP 500"):
        await gateway.query_trade(payment["payment_no"])
    sim.fail_next(1, 503)
    with pytest.raises(GatewayUnavailable, match="HTTP 503"):
        await gateway.refund(_refund(payment, pi, "RF1", 100))
    assert sim.refunds() == []
    assert (await gateway.refund(_refund(payment, pi, "RF1", 100))).state == "succeeded"  # the retry refunds once
    sim.fail_next(1, 429)
    with pytest.raises(GatewayUnavailable, match="HTTP 429"):
        await gateway.query_refund(refund_no="RF1", payment_no=payment["payment_no"])

    wrong_key = StripeGateway(_config(sim, secret_key="sk_test_wrong"), http=ctx.http)
    with pytest.raises(GatewayUnavailable, match="HTTP 401"):
        await wrong_key.query_trade(payment["payment_no"])
    down = StripeGateway(_config(sim, api_base_url=f"http://127.0.0.1:{free_port()}"), http=ctx.http)
    with pytest.raises(GatewayUnavailable, match="ConnectError"):
        await down.query_trade(payment["payment_no"])
    sim.latency = 1.0
    slow = StripeGateway(_config(sim, timeout_seconds=0.2), http=ctx.http)
    with pytest.raises(GatewayUnavailable, match="Timeout"):
        await slow.query_trade(payment["payment_no"])


async def test_starting_a_payment_while_stripe_is_down_records_nothing(shop, gateway, sim, order):
    sim.fail_next(1, 502)
    response = await shop.client.post(f"/api/orders/{order['order_no']}/payments", headers=shop.auth(order),
                                      json={"gateway": "stripe"})
    assert response.json()["code"] == "gateway_unavailable"
    payment = await shop.scalar(select(Payment))
    assert payment.status == "created" and payment.gateway_session_id is None
    assert (await _start(shop, order))["cashier_url"]  # and works once Stripe is back


async def test_auto_mode_delivers_with_retries_until_acknowledged(shop, ctx, app):
    """The demo mode: the simulator POSTs each event to a real URL itself and retries until a 2xx.

    The URL is a relay on a real port; the test's own loop hands each request to the app under test
    (whose database connections belong to this loop) and gives the answer back. The first attempt
    finds the "shop" down (503)."""
    inbox: queue.Queue = queue.Queue()

    async def relay(scope, receive, send):
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode(): v.decode() for k, v in scope["headers"]
                   if k.decode().lower() in ("content-type", "stripe-signature", "user-agent")}
        answer: concurrent.futures.Future = concurrent.futures.Future()
        inbox.put((headers, body, answer))
        status = await asyncio.wrap_future(answer)
        await send({"type": "http.response.start", "status": status, "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": b""})

    received: list[int] = []
    with serve_in_thread(relay) as shop_url:
        simulator = StripeSimulator(mode="auto", webhook_url=f"{shop_url}{NOTIFY}", retry_delays=(0.2, 0.2, 0.2))
        with serve_in_thread(simulator.app) as base:
            ctx.gateways.register(StripeGateway(StripeConfig(secret_key=simulator.secret_key,
                                                             webhook_secret=simulator.webhook_secret,
                                                             api_base_url=base), http=ctx.http))
            order = await shop.create_order((await _stocked(shop)).id)
            payment = await _start(shop, order)
            simulator.pay(payment["payment_no"])
            deadline = time.monotonic() + 60  # a generous bound: a loaded machine may stall
            while time.monotonic() < deadline:
                if 200 in received:
                    break
                try:
                    headers, body, answer = inbox.get_nowait()
                except queue.Empty:
                    await asyncio.sleep(0.05)
                    continue
                status = 503
                if received:
                    status = (await shop.client.post(NOTIFY, content=body, headers=headers)).status_code
                received.append(status)
                answer.set_result(status)
    assert received == [503, 200], received
    assert (await shop.get_order(order))["status"] == "delivered"


async def _stocked(shop):
    sku = await shop.make_sku(code="AUTO-1")
    await shop.stock(sku, 1)
    return sku


def test_the_command_line_prints_a_usable_config(tmp_path):
    import subprocess
    import sys

    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "quanyi.testpeers.stripe", "--port", str(port)],
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        lines = []
        while not lines or lines[-1].strip() != "}":
            lines.append(process.stdout.readline())
        config = StripeConfig(**json.loads("".join(lines)))
        assert config.api_base_url == f"http://127.0.0.1:{port}"
        assert config.webhook_secret.get_secret_value().startswith("whsec_")
    finally:
        process.terminate()
        process.wait(10)


async def test_the_paying_customer_reaches_the_shop_for_risk_control(shop, gateway, sim, order):
    payment = await _start(shop, order)
    sim.pay(payment["payment_no"], customer="cus_PAYER0001")
    [delivery] = sim.take_notifications()
    verified = gateway.verify_notification(headers=delivery.headers, body=delivery.body,
                                           now=dt.datetime.now(dt.UTC))
    assert verified.succeeded and verified.payer_account == "cus_PAYER0001"
