"""Payment notifications: believed only when authentic and matching, applied exactly once."""

from __future__ import annotations

import asyncio
import logging

import pytest
from sqlalchemy import select

from helpers import signed_notification
from quanyi.inventory.models import CardKey, CardKeyStatus
from quanyi.orders.models import Order, OrderEvent
from quanyi.payments import express
from quanyi.payments.models import Payment, PaymentStatus


async def _snapshot(shop) -> tuple:
    """Everything a notification could change: order statuses, key assignment, payments, events."""
    async with shop.ctx.db.read_session() as session:
        orders = (await session.execute(select(Order.order_no, Order.status, Order.paid_at))).all()
        keys = (await session.execute(select(CardKey.id, CardKey.status, CardKey.order_id).order_by(CardKey.id))).all()
        payments = (await session.execute(select(Payment.payment_no, Payment.status, Payment.gateway_trade_no))).all()
        events = await session.scalar(select(OrderEvent.id).order_by(OrderEvent.id.desc()).limit(1))
    return sorted(orders), keys, sorted(payments), events


async def test_paying_through_the_cashier_delivers_the_reserved_keys(shop, order):
    response = await shop.pay_via_cashier(order)
    assert response.status_code == 303
    assert response.headers["location"].endswith(f"/orders/{order['order_no']}?from=cashier")
    status = await shop.get_order(order)
    assert status["status"] == "delivered"
    assert status["delivered_keys"] == 1
    assert status["paid_at"] and status["delivered_at"]
    keys = await shop.reveal(order)
    assert len(keys) == 1 and keys[0]["code"]


async def test_second_payment_callback_delivers_nothing_new(shop, order):
    payment = await shop.start_payment(order)
    params = shop.notification(payment)
    first = await shop.notify(params)
    assert first.status_code == 200 and first.text == "success"
    before = await _snapshot(shop)
    again = await shop.notify(params)
    assert again.status_code == 200 and again.text == "success"  # acknowledged, so the gateway stops
    assert await _snapshot(shop) == before
    assert (await shop.get_order(order))["delivered_keys"] == 1


async def test_gateway_retry_with_fresh_signature_is_idempotent(shop, order):
    payment = await shop.start_payment(order)
    trade_no = "SBRETRY0001"
    assert (await shop.notify(shop.notification(payment, trade_no=trade_no))).text == "success"
    before = await _snapshot(shop)
    # A real gateway re-signs each retry: new timestamp and nonce, same trade.
    assert (await shop.notify(shop.notification(payment, trade_no=trade_no))).text == "success"
    assert await _snapshot(shop) == before


async def test_simultaneous_callbacks_deliver_once(shop, stocked_sku):
    order = await shop.create_order(stocked_sku.id, quantity=2)
    payment = await shop.start_payment(order)
    params = shop.notification(payment)
    responses = await asyncio.gather(*[shop.notify(params) for _ in range(8)])
    assert all(r.status_code == 200 and r.text == "success" for r in responses), [r.text for r in responses]
    assert (await shop.get_order(order))["delivered_keys"] == 2
    assert await shop.count(CardKey, CardKey.status == CardKeyStatus.SOLD) == 2
    assert await shop.count(OrderEvent, OrderEvent.to_status == "delivered") == 1


async def test_forged_signature_is_rejected_and_changes_nothing(shop, order, caplog):
    payment = await shop.start_payment(order)
    before = await _snapshot(shop)
    forged = signed_notification("not-the-sandbox-secret", payment_no=payment["payment_no"],
                                 amount_cents=payment["amount_cents"])
    with caplog.at_level(logging.WARNING, logger="quanyi.payments.notify"):
        response = await shop.notify(forged)
    assert response.status_code == 400
    assert "bad signature" in response.text
    assert await _snapshot(shop) == before
    assert any("rejected" in r.message and "bad signature" in r.message for r in caplog.records)


async def test_tampered_amount_breaks_the_signature(shop, order):
    payment = await shop.start_payment(order)
    params = shop.notification(payment)
    params["total_amount_cents"] = "1"
    before = await _snapshot(shop)
    response = await shop.notify(params)
    assert response.status_code == 400 and "bad signature" in response.text
    assert await _snapshot(shop) == before


async def test_signed_notification_with_wrong_amount_is_rejected(shop, order, caplog):
    payment = await shop.start_payment(order)
    before = await _snapshot(shop)
    params = signed_notification(shop.sandbox_secret, payment_no=payment["payment_no"],
                                 amount_cents=payment["amount_cents"] - 1)
    with caplog.at_level(logging.WARNING, logger="quanyi.payments.notify"):
        response = await shop.notify(params)
    assert response.status_code == 400
    assert await _snapshot(shop) == before
    assert any("payment_amount_mismatch" in r.message for r in caplog.records)


async def test_signed_notification_with_wrong_currency_is_rejected(shop, order):
    payment = await shop.start_payment(order)
    before = await _snapshot(shop)
    params = signed_notification(shop.sandbox_secret, payment_no=payment["payment_no"],
                                 amount_cents=payment["amount_cents"], currency="USD")
    assert (await shop.notify(params)).status_code == 400
    assert await _snapshot(shop) == before


async def test_notification_for_unknown_payment_is_rejected(shop, order, caplog):
    await shop.start_payment(order)
    before = await _snapshot(shop)
    params = signed_notification(shop.sandbox_secret, payment_no="PYDOESNOTEXIST0000", amount_cents=1980)
    with caplog.at_level(logging.WARNING, logger="quanyi.payments.notify"):
        response = await shop.notify(params)
    assert response.status_code == 400
    assert await _snapshot(shop) == before
    assert any("unknown_payment" in r.message for r in caplog.records)


async def test_stale_notification_is_rejected(shop, order):
    payment = await shop.start_payment(order)
    before = await _snapshot(shop)
    old = int(__import__("time").time()) - 3600
    response = await shop.notify(shop.notification(payment, timestamp=old))
    assert response.status_code == 400 and "timestamp" in response.text
    assert await _snapshot(shop) == before


async def test_malformed_notification_bodies_are_rejected(shop, order):
    payment = await shop.start_payment(order)
    before = await _snapshot(shop)
    bodies = [b"", b"\xff\xfe", b"a=1&a=2", b"out_trade_no=x", b"=" * 10, b"x" * 70_000]
    for body in bodies:
        response = await shop.client.post("/payments/sandbox/notify", content=body,
                                          headers={"content-type": "application/x-www-form-urlencoded"})
        assert response.status_code == 400, body
    params = shop.notification(payment)
    params["sign_type"] = "MD5"
    assert (await shop.notify(params)).status_code == 400
    assert await _snapshot(shop) == before


async def test_unknown_gateway_is_404(shop):
    response = await shop.client.post("/payments/alipay/notify", data={"a": "b"})
    assert response.status_code == 404
    assert response.json()["code"] == "unknown_gateway"


async def test_one_gateway_trade_cannot_pay_two_payments(shop, stocked_sku):
    first, second = [await shop.create_order(stocked_sku.id) for _ in range(2)]
    p1, p2 = await shop.start_payment(first), await shop.start_payment(second)
    assert (await shop.notify(shop.notification(p1, trade_no="SBSAME"))).text == "success"
    before = await _snapshot(shop)
    response = await shop.notify(shop.notification(p2, trade_no="SBSAME"))
    assert response.status_code == 400
    assert await _snapshot(shop) == before
    assert (await shop.get_order(second))["status"] == "pending_payment"


async def test_paying_twice_through_two_sessions_keeps_the_second_payment_for_refund(shop, order):
    first = await shop.start_payment(order)
    assert (await shop.notify(shop.notification(first))).text == "success"
    async with shop.ctx.db.transaction() as session:
        # The buyer had opened a second cashier (e.g. a payment opened before the shop enforced one open payment
        # per order and gateway, or another gateway's session): simulate its payment, still open.
        other = Payment(payment_no="PYSECONDSESSION000", order_id=(await session.scalar(
            select(Order.id).where(Order.order_no == order["order_no"]))), gateway="sandbox",
            amount_cents=first["amount_cents"], currency="CNY")
        session.add(other)
    second = {"payment_no": "PYSECONDSESSION000", "amount_cents": first["amount_cents"], "currency": "CNY"}
    assert (await shop.notify(shop.notification(second))).text == "success"
    assert (await shop.get_order(order))["delivered_keys"] == 1
    status = await shop.scalar(select(Payment.status).where(Payment.payment_no == "PYSECONDSESSION000"))
    assert status == PaymentStatus.DUPLICATE


async def test_payment_cannot_start_for_a_delivered_order(shop, paid_order):
    response = await shop.client.post(f"/api/orders/{paid_order['order_no']}/payments",
                                      headers=shop.auth(paid_order), json={"gateway": "sandbox"})
    assert response.status_code == 409
    assert response.json()["code"] == "order_not_payable"


async def test_starting_payment_twice_reuses_the_open_payment(shop, order):
    first, second = await shop.start_payment(order), await shop.start_payment(order)
    assert first["payment_no"] == second["payment_no"]
    assert first["cashier_url"].startswith("http://test/sandbox/cashier?t=")


@pytest.mark.parametrize("one_statement", [True, False], ids=["one_statement", "transaction"])
async def test_one_gateway_trade_for_two_orders_at_once_pays_one(backend, shop, stocked_sku, database_url,
                                                                  one_statement, monkeypatch):
    # Two notifications carry one gateway transaction for two orders' payments at the same time. PostgreSQL: the
    # second order's row is held while the first notification commits, so the second checked "no payment carries
    # this trade" in a snapshot from before, and meets the unique (gateway, trade no) only when it writes.
    # Either way: one order paid and delivered, the other refused in the gateway's protocol (it retries, and is
    # refused as a conflict), never a 500 and never a second delivery for one payment.
    from faults.support import Freezer

    if backend == "sqlite" and not one_statement:
        pytest.skip("SQLite always applies a notification in a transaction")
    monkeypatch.setattr(express, "DELIVER_WHILE_LOCKING", one_statement)  # PostgreSQL: its lock statement delivers
    first, second = [await shop.create_order(stocked_sku.id) for _ in range(2)]
    p1, p2 = await shop.start_payment(first), await shop.start_payment(second)
    one, two = shop.notification(p1, trade_no="SBSAMEATONCE"), shop.notification(p2, trade_no="SBSAMEATONCE")
    if backend == "sqlite":  # one writer: the two queue on its lock
        answers = await asyncio.gather(shop.notify(one), shop.notify(two))
    else:
        freezer = Freezer(database_url)
        await freezer.lock_rows("orders_order", "order_no = $1", second["order_no"])
        try:
            late = asyncio.create_task(shop.notify(two))
            await freezer.wait_for_lock_waiter()
            answers = [await shop.notify(one)]
        finally:
            await freezer.release()
        answers.append(await late)
        assert answers[1].text == "fail: processed concurrently; retry"  # it met the constraint, not the check
    assert sorted(r.status_code for r in answers) == [200, 400], [r.text for r in answers]
    assert sorted(r.text.startswith("success") for r in answers) == [False, True]
    delivered = [o for o in (first, second) if (await shop.get_order(o))["status"] == "delivered"]
    assert len(delivered) == 1 and await shop.count(CardKey, CardKey.status == CardKeyStatus.SOLD) == 1
    assert await shop.count(Payment, Payment.gateway_trade_no == "SBSAMEATONCE") == 1
    assert await shop.count(OrderEvent, OrderEvent.to_status == "delivered") == 1
    # The gateway's retry of the refused one is refused again, as the conflict it is; nothing changes.
    before = await _snapshot(shop)
    again = await shop.notify(two if delivered[0] is first else one)
    assert again.status_code == 400 and "already paid" in again.text, again.text
    assert await _snapshot(shop) == before
