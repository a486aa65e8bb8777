"""Checkout and pay in one request (orders.pay_at_checkout): `POST /api/orders` with `pay` answers the order and its
payment started; a payment that cannot start leaves the order placed and says why (never a 5xx); bad `pay` input is
a 422 before anything is written; without `pay` the answer is exactly what it was."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import pytest
from sqlalchemy import event, select, update

from quanyi.app import create_app
from quanyi.orders.models import Order
from quanyi.payments import routes as payments_routes
from quanyi.payments.gateway import Checkout, CheckoutRequest, GatewayUnavailable
from quanyi.payments.models import Payment
from quanyi.payments.sandbox.gateway import SandboxGateway


class DownGateway(SandboxGateway):
    """The sandbox protocol, but the gateway cannot be reached."""

    name = "down"
    title = "Down"

    async def create_checkout(self, request: CheckoutRequest) -> Checkout:
        raise GatewayUnavailable("down: connection reset")


async def _checkout(shop: Any, sku_id: int, **extra: Any) -> Any:
    return await shop.client.post("/api/orders", json={"sku_id": sku_id, "quantity": 1,
                                                        "contact": "fan@example.com", **extra})


async def test_checkout_with_pay_answers_the_order_and_its_payment_and_the_purchase_goes_on(shop, stocked_sku):
    response = await _checkout(shop, stocked_sku.id, pay={"gateway": "sandbox", "mode": "wap"})
    assert response.status_code == 201, response.text
    order = response.json()
    assert order["status"] == "pending_payment" and order["access_token"] and "payment_error" not in order
    payment = order["payment"]
    assert set(payment) == {"payment_no", "gateway", "cashier_url", "qr_code", "amount_cents", "currency"}
    assert payment["gateway"] == "sandbox" and payment["amount_cents"] == order["total_cents"] == 1980
    assert payment["cashier_url"].startswith("http") and "/sandbox/cashier?" in payment["cashier_url"]
    row = await shop.scalar(select(Payment))
    assert (row.payment_no, row.status, row.amount_cents) == (payment["payment_no"], "created", 1980)

    # The start-payment route, asked again, finds the same open payment: one payment per order and gateway.
    again = await shop.start_payment(order)
    assert again["payment_no"] == payment["payment_no"] and await shop.count(Payment) == 1
    # The third request of the purchase: the gateway's notification, then the reveal.
    notified = await shop.notify(shop.notification(payment))
    assert notified.status_code == 200 and notified.text == "success"
    assert (await shop.get_order(order))["status"] == "delivered"
    assert len(await shop.reveal(order)) == 1


async def test_checkout_without_pay_answers_exactly_as_before(shop, stocked_sku):
    response = await _checkout(shop, stocked_sku.id)
    assert response.status_code == 201
    assert "payment" not in response.json() and "payment_error" not in response.json()
    assert await shop.count(Payment) == 0


async def test_a_payment_refused_at_start_leaves_the_order_placed_with_no_payment(shop, stocked_sku, monkeypatch):
    # The order's reservation runs out between the order's commit and its payment's start (a slow request): the
    # start-payment function refuses, in its own transaction, which rolls back.
    started = payments_routes.payment_started

    async def late(ctx: Any, order_no: str, *args: Any) -> Any:
        async with ctx.db.transaction() as session:
            await session.execute(update(Order).where(Order.order_no == order_no)
                                  .values(expires_at=dt.datetime(2000, 1, 1, tzinfo=dt.UTC)))
        return await started(ctx, order_no, *args)

    monkeypatch.setattr(payments_routes, "payment_started", late)
    response = await _checkout(shop, stocked_sku.id, pay={"gateway": "sandbox"})
    assert response.status_code == 201, response.text
    order = response.json()
    assert "payment" not in order and order["status"] == "pending_payment" and order["access_token"]
    assert order["payment_error"] == {
        "status": 409, "code": "order_not_payable",
        "detail": "the reservation for this order has expired; place a new order"}
    assert await shop.count(Payment) == 0
    assert await shop.scalar(select(Order.status).where(Order.order_no == order["order_no"])) == "pending_payment"


async def test_an_unreachable_gateway_leaves_the_order_placed_and_what_start_payment_leaves(shop, stocked_sku):
    shop.ctx.gateways.register(DownGateway(secret=shop.sandbox_secret))
    response = await _checkout(shop, stocked_sku.id, pay={"gateway": "down"})
    assert response.status_code == 201, response.text
    order = response.json()
    assert order["payment_error"] == {"status": 503, "code": "gateway_unavailable",
                                      "detail": "down: connection reset"}
    assert "payment" not in order and order["status"] == "pending_payment"
    # As the start-payment route leaves it: the payment recorded before the gateway call, reused by the retry.
    kept = await shop.scalar(select(Payment))
    assert kept.status == "created" and kept.gateway == "down"
    retried = await shop.client.post(f"/api/orders/{order['order_no']}/payments", headers=shop.auth(order),
                                      json={"gateway": "sandbox"})
    assert retried.status_code == 201 and await shop.count(Payment) == 2  # another gateway: its own payment
    await shop.notify(shop.notification(retried.json()))
    assert (await shop.get_order(order))["status"] == "delivered"


async def test_bad_pay_input_is_a_422_that_places_nothing(shop, stocked_sku):
    cases = [
        ({"gateway": "No Such!"}, "validation_failed", "body.pay.gateway"),
        ({"gateway": "sandbox", "mode": "fax"}, "validation_failed", "body.pay.mode"),
        ({"gateway": "sandbox", "tip": 5}, "validation_failed", "body.pay.tip"),
        ("sandbox", "validation_failed", "body.pay"),
        ({"gateway": "nosuch"}, "unknown_gateway", "payment gateway 'nosuch' is not configured; choose one"),
    ]
    for pay, code, detail in cases:
        response = await _checkout(shop, stocked_sku.id, pay=pay)
        assert response.status_code == 422, response.text
        assert response.json()["code"] == code and response.json()["detail"].startswith(detail), response.text
    assert await shop.count(Order) == 0 and await shop.count(Payment) == 0
    assert await shop.available(stocked_sku.id) == 10


async def test_a_pay_naming_no_gateway_is_refused_before_sold_out_as_the_route_does(shop, sku):
    # The SKU is remembered as sold out: the sold-out lane answers, but only as the route would (422 first).
    assert (await _checkout(shop, sku.id)).status_code == 409
    response = await _checkout(shop, sku.id, pay={"gateway": "nosuch"})
    assert response.status_code == 422 and response.json()["code"] == "unknown_gateway"
    assert (await _checkout(shop, sku.id, pay={"gateway": "sandbox"})).status_code == 409
    assert await shop.count(Order) == 0


def test_the_openapi_document_shows_pay_and_the_nested_answer(settings):
    schema = create_app(settings=settings).openapi()
    parts = schema["components"]["schemas"]
    assert parts["OrderCreate"]["properties"]["pay"]["anyOf"][0] == {"$ref": "#/components/schemas/PaymentStartRequest"}
    created = parts["OrderCreated"]["properties"]
    assert created["payment"]["anyOf"][0] == {"$ref": "#/components/schemas/PaymentStart"}
    assert created["payment_error"]["anyOf"][0] == {"$ref": "#/components/schemas/PaymentNotStarted"}
    assert "payment" not in parts["OrderCreated"].get("required", [])
    answer = schema["paths"]["/api/orders"]["post"]["responses"]["201"]["content"]["application/json"]["schema"]
    assert answer == {"$ref": "#/components/schemas/OrderCreated"}


async def test_a_database_dropped_while_starting_the_payment_leaves_the_order_placed(backend, shop, stocked_sku,
                                                                                     database_url):
    # PostgreSQL drops the connection that starts the payment (a failover): the order, committed before, is
    # answered as placed; nothing of the payment is written; the start-payment route then starts it.
    if backend == "sqlite":
        pytest.skip("SQLite has no server connection to drop")
    from faults.support import pg_connect

    holder, watcher = await pg_connect(database_url), await pg_connect(database_url)
    lock = holder.transaction()
    await lock.start()
    await holder.execute("LOCK TABLE payments_payment IN SHARE ROW EXCLUSIVE MODE")  # stops the payment's insert
    try:
        checkout = asyncio.create_task(_checkout(shop, stocked_sku.id, pay={"gateway": "sandbox"}))
        waiting: list[int] = []
        for _ in range(600):
            await watcher.execute("SELECT pg_stat_clear_snapshot()")
            waiting = [row["pid"] for row in await watcher.fetch(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'")]
            if waiting:
                break
            await asyncio.sleep(0.05)
        assert waiting, "the payment's statement never waited on the lock"
        assert await watcher.fetchval("SELECT pg_terminate_backend($1)", waiting[0])
        response = await checkout
    finally:
        await lock.rollback()
        await holder.close()
        await watcher.close()
    assert response.status_code == 201, response.text
    order = response.json()
    assert order["status"] == "pending_payment" and "payment" not in order
    assert order["payment_error"]["status"] == 503 and order["payment_error"]["code"] == "database_unavailable"
    assert await shop.count(Payment) == 0
    payment = await shop.start_payment(order)
    assert payment["amount_cents"] == 1980 and await shop.count(Payment) == 1


async def test_checkout_with_pay_starts_the_payment_on_the_checkouts_own_connection(backend, shop, stocked_sku,
                                                                                   monkeypatch):
    """PostgreSQL: the checkout's committed connection starts the payment too (quanyi.db_driven.handing_over): one
    connection taken from the pool for both (the old code: two), and none held while the gateway is asked."""
    if backend == "sqlite":
        pytest.skip("PostgreSQL's pool")
    assert (await _checkout(shop, stocked_sku.id)).status_code == 201  # the rules read, the pool warm
    pool = shop.ctx.db.write_engine.sync_engine.pool
    taken: list[int] = []
    event.listen(pool, "checkout", lambda *_: taken.append(1))
    held_at_gateway: list[int] = []
    real = SandboxGateway.create_checkout

    async def create_checkout(self: SandboxGateway, request: CheckoutRequest) -> Checkout:
        held_at_gateway.append(pool.checkedout())
        return await real(self, request)

    monkeypatch.setattr(SandboxGateway, "create_checkout", create_checkout)
    response = await _checkout(shop, stocked_sku.id, pay={"gateway": "sandbox"})
    assert response.status_code == 201 and response.json()["payment"]["payment_no"], response.text
    assert len(taken) == 1
    assert held_at_gateway == [0]
    assert pool.checkedout() == 0
    async with shop.ctx.db.read_session() as session:
        assert len((await session.scalars(select(Payment))).all()) == 1
