"""Starting a payment (PostgreSQL: lock, check and insert in one statement) writes exactly the row the checks allow:
one new `created` payment for a payable order, the open one reused, nothing at all when it refuses."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select, update

from quanyi.orders.models import Order
from quanyi.payments.models import Payment, PaymentStatus


async def _payments(shop) -> list[tuple]:
    async with shop.ctx.db.read_session() as session:
        return (await session.execute(select(
            Payment.payment_no, Payment.order_id, Payment.gateway, Payment.amount_cents, Payment.currency,
            Payment.status, Payment.query_count, Payment.created_at, Payment.updated_at).order_by(Payment.id))).all()


async def _refused(shop, order) -> None:
    before = await _payments(shop)
    response = await shop.client.post(f"/api/orders/{order['order_no']}/payments", headers=shop.auth(order),
                                      json={"gateway": "sandbox"})
    assert response.status_code == 409 and response.json()["code"] == "order_not_payable", response.text
    assert await _payments(shop) == before  # a refusal inserts nothing


async def test_a_new_payment_is_the_orders_amount_created_now_and_reused_while_open(shop, order):
    started = await shop.start_payment(order)
    [row] = await _payments(shop)
    assert row.payment_no == started["payment_no"] and len(row.payment_no) == 20
    assert (row.gateway, row.amount_cents, row.currency, row.status, row.query_count) == (
        "sandbox", order["total_cents"], "CNY", PaymentStatus.CREATED.value, 0)
    assert row.created_at == row.updated_at and row.created_at.tzinfo is not None
    assert abs(row.created_at - dt.datetime.now(dt.UTC)) < dt.timedelta(minutes=5)
    assert (await shop.start_payment(order))["payment_no"] == started["payment_no"]
    assert len(await _payments(shop)) == 1


async def test_an_open_payment_of_another_amount_is_not_reused(shop, order):
    first = await shop.start_payment(order)
    async with shop.ctx.db.transaction() as session:
        await session.execute(update(Payment).values(amount_cents=order["total_cents"] + 1))
    second = await shop.start_payment(order)
    assert second["payment_no"] != first["payment_no"] and second["amount_cents"] == order["total_cents"]
    assert [(row.payment_no, row.amount_cents) for row in await _payments(shop)] == [
        (first["payment_no"], order["total_cents"] + 1), (second["payment_no"], order["total_cents"])]


async def test_an_expired_order_is_refused_and_gets_no_payment(shop, order):
    async with shop.ctx.db.transaction() as session:
        await session.execute(update(Order).where(Order.order_no == order["order_no"]).values(
            expires_at=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)))
    await _refused(shop, order)
    assert await _payments(shop) == []


async def test_a_paid_order_is_refused_and_gets_no_new_payment(shop, order):
    await shop.pay(order)
    await _refused(shop, order)
    assert len(await _payments(shop)) == 1
