"""Reservations expire and release stock; money that arrives late is never dropped."""

from __future__ import annotations

import asyncio
import datetime as dt

from sqlalchemy import select, update

from quanyi.inventory.models import CardKey, CardKeyStatus
from quanyi.orders import service as orders_service
from quanyi.orders.models import Order, OrderEvent
from quanyi.payments.models import Payment, PaymentStatus
from quanyi.tasks import sweep_once


async def _age(shop, order, minutes: int = 20) -> None:
    """Move an order's reservation deadline into the past, as if time had passed."""
    async with shop.ctx.db.transaction() as session:
        await session.execute(update(Order).where(Order.order_no == order["order_no"]).values(
            expires_at=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=minutes)))


async def test_default_reservation_lasts_fifteen_minutes(shop, order):
    created = dt.datetime.fromisoformat(order["created_at"])
    assert dt.datetime.fromisoformat(order["expires_at"]) - created == dt.timedelta(minutes=15)


async def test_sweeper_expires_unpaid_orders_and_releases_their_stock(shop, stocked_sku):
    stale = await shop.create_order(stocked_sku.id, quantity=3)
    fresh = await shop.create_order(stocked_sku.id, quantity=2)
    await _age(shop, stale)
    assert await shop.available(stocked_sku.id) == 5
    assert await sweep_once(shop.ctx) == 1
    assert (await shop.get_order(stale))["status"] == "cancelled"
    assert (await shop.get_order(stale))["status_reason"] == "reservation expired"
    assert (await shop.get_order(fresh))["status"] == "pending_payment"
    assert await shop.available(stocked_sku.id) == 8
    assert await sweep_once(shop.ctx) == 0  # nothing twice


async def test_expired_order_cannot_start_a_payment(shop, order):
    await _age(shop, order)
    response = await shop.client.post(f"/api/orders/{order['order_no']}/payments", headers=shop.auth(order))
    assert response.status_code == 409 and response.json()["code"] == "order_not_payable"


async def test_payment_after_expiry_still_delivers_when_stock_remains(shop, stocked_sku):
    order = await shop.create_order(stocked_sku.id, quantity=2)
    payment = await shop.start_payment(order)
    await _age(shop, order)
    await sweep_once(shop.ctx)
    assert (await shop.get_order(order))["status"] == "cancelled"
    response = await shop.notify(shop.notification(payment))
    assert response.status_code == 200 and response.text == "success"
    status = await shop.get_order(order)
    assert status["status"] == "delivered" and status["delivered_keys"] == 2
    assert "after the order was cancelled" in (await shop.scalar(
        select(OrderEvent.reason).where(OrderEvent.to_status == "paid")))


async def test_payment_after_expiry_without_stock_goes_to_refund_pending(shop, sku):
    await shop.stock(sku, 1)
    late = await shop.create_order(sku.id)
    payment = await shop.start_payment(late)
    await _age(shop, late)
    await sweep_once(shop.ctx)
    other = await shop.create_order(sku.id)  # someone else buys the released key
    await shop.pay(other)
    response = await shop.notify(shop.notification(payment))
    assert response.status_code == 200 and response.text == "success"  # the money is recorded, not bounced
    status = await shop.get_order(late)
    assert status["status"] == "refund_pending" and status["delivered_keys"] == 0
    assert await shop.scalar(select(Payment.status).where(Payment.payment_no == payment["payment_no"])) == (
        PaymentStatus.SUCCEEDED)
    assert (await shop.get_order(other))["status"] == "delivered"


async def test_refund_pending_keeps_no_stock_on_hold(shop, sku):
    await shop.stock(sku, 3)
    order = await shop.create_order(sku.id, quantity=3)
    payment = await shop.start_payment(order)
    # The operator voids the batch while the buyer is at the cashier: nothing left to deliver.
    batch_id = await shop.scalar(select(CardKey.batch_id).limit(1))
    voided = await shop.client.post(f"/api/admin/batches/{batch_id}/void", json={"reason": "leaked"},
                                    headers=shop.admin)
    assert voided.status_code == 200 and voided.json()["voided_count"] == 3
    assert (await shop.notify(shop.notification(payment))).text == "success"
    assert (await shop.get_order(order))["status"] == "refund_pending"
    assert await shop.count(CardKey, CardKey.status == CardKeyStatus.RESERVED) == 0
    assert await shop.count(CardKey, CardKey.status == CardKeyStatus.SOLD) == 0


async def test_voided_reserved_keys_are_replaced_from_other_batches(shop, sku):
    await shop.stock(sku, 2)
    order = await shop.create_order(sku.id, quantity=2)
    first_batch = await shop.scalar(select(CardKey.batch_id).limit(1))
    await shop.stock(sku, 5)
    response = await shop.client.post(f"/api/admin/batches/{first_batch}/void", json={"reason": "bad batch"},
                                      headers=shop.admin)
    assert response.json()["voided_count"] == 2
    await shop.pay(order)
    assert (await shop.get_order(order))["delivered_keys"] == 2
    async with shop.ctx.db.read_session() as session:
        batches = set((await session.scalars(select(CardKey.batch_id).where(
            CardKey.status == CardKeyStatus.SOLD))).all())
    assert first_batch not in batches


async def test_sweeper_and_payment_racing_on_one_order_end_consistently(shop, stocked_sku):
    order = await shop.create_order(stocked_sku.id)
    payment = await shop.start_payment(order)
    await _age(shop, order)
    _, response = await asyncio.gather(sweep_once(shop.ctx), shop.notify(shop.notification(payment)))
    assert response.text == "success"
    status = await shop.get_order(order)
    assert status["status"] == "delivered" and status["delivered_keys"] == 1
    assert await shop.count(CardKey, CardKey.status == CardKeyStatus.RESERVED) == 0


async def test_expire_due_orders_skips_paid_ones(shop, paid_order):
    await _age(shop, paid_order)
    async with shop.ctx.db.transaction() as session:
        assert await orders_service.expire_due_orders(session=session) == 0
    assert (await shop.get_order(paid_order))["status"] == "delivered"
