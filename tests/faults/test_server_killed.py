"""`quanyi serve` killed with SIGKILL in the middle of a delivery, restarted, and notified again (gateways
retry until they are told `success`): the order ends delivered exactly once, no key lost or given twice.

The server is frozen inside the payment notification by a lock the test holds (see `faults.support.Freezer`): on
PostgreSQL it waits for the order's card-key rows inside its one statement, the order and payment locked (that
statement runs in autocommit: with the lock gone, the server finishes it whole although its client died); on
SQLite it waits for the single writer lock at BEGIN.
"""

from __future__ import annotations

import asyncio

import httpx
from sqlalchemy import select

from faults.support import QuanyiProcess, await_until, awaiting_notification, key_counts, traceback_lines
from quanyi.inventory.models import CardKey
from quanyi.orders.models import Order
from quanyi.payments.models import Payment

STOCK, QUANTITY = 5, 2


def _post_notification(url: str, params: dict[str, str]) -> httpx.Response | Exception:
    try:
        return httpx.post(f"{url}/payments/sandbox/notify", data=params, timeout=60)
    except httpx.HTTPError as exc:
        return exc


async def test_server_killed_mid_delivery_then_renotified_delivers_exactly_once(shop, settings, freezer, tmp_path):
    case = await awaiting_notification(shop, stock=STOCK, quantity=QUANTITY)
    sku, order, params, order_id = case.sku, case.order, case.params, case.order_id

    server = QuanyiProcess.server(settings, tmp_path)
    try:
        await freezer.lock_rows("inventory_card_key", "order_id = $1", order_id)
        in_flight = asyncio.create_task(asyncio.to_thread(_post_notification, server.url, params))
        backend = await freezer.wait_for_lock_waiter()
        if not freezer.is_sqlite:
            assert await freezer.has_written(backend)  # truly mid-transaction: writes made, none committed
        server.kill9()
    finally:
        await freezer.release()
        if server.alive():
            server.stop()
    answer = await in_flight
    assert isinstance(answer, httpx.HTTPError), answer  # the gateway never heard `success`: it will retry

    payment_status = select(Payment.status).where(Payment.payment_no == params["out_trade_no"])
    if freezer.is_sqlite:
        # The killed transaction left nothing behind: still unpaid, its keys still only reserved.
        assert (await shop.get_order(order))["status"] == "pending_payment"
        assert await key_counts(shop, sku.id) == {"available": STOCK - QUANTITY, "reserved": QUANTITY}
        assert await shop.scalar(payment_status) == "created"
    else:
        # PostgreSQL: the usual notification is one statement in autocommit (payments.service.receive_notification),
        # which the server finishes on its own once our lock is gone, dead client or not: whole, never in part.
        async def delivered() -> bool:
            return (await shop.get_order(order))["status"] == "delivered"

        await await_until(delivered, what="the orphaned statement's delivery")
        assert await key_counts(shop, sku.id) == {"available": STOCK - QUANTITY, "sold": QUANTITY}
        assert await shop.scalar(payment_status) == "succeeded"

    restarted = QuanyiProcess.server(settings, tmp_path, port=server.port, name="restarted")
    try:
        with httpx.Client(base_url=restarted.url, timeout=30) as http:
            for _ in range(2):  # the retry, and one more copy after the acknowledgement: nothing new
                retry = http.post("/payments/sandbox/notify", data=params)
                assert retry.status_code == 200 and retry.text == "success", retry.text
    finally:
        restarted.stop()
    assert not traceback_lines(restarted.log()), restarted.log()[-3000:]

    view = await shop.get_order(order)
    assert view["status"] == "delivered" and view["delivered_keys"] == QUANTITY
    assert await key_counts(shop, sku.id) == {"available": STOCK - QUANTITY, "sold": QUANTITY}
    async with shop.ctx.db.read_session() as session:
        owners = (await session.scalars(select(CardKey.order_id).where(CardKey.status == "sold"))).all()
    assert owners == [order_id] * QUANTITY
    codes = [key["code"] for key in await shop.reveal(order)]
    assert len(codes) == len(set(codes)) == QUANTITY
    payments = await shop.count(Payment, Payment.order_id == order_id, Payment.status == "succeeded")
    assert payments == 1


BURST = 24


async def test_server_killed_during_a_burst_of_notifications_loses_and_doubles_nothing(shop, settings, tmp_path):
    """No freeze: many notifications in flight, the server killed as soon as the first order is delivered, so
    it dies wherever it happens to be (on SQLite too: inside a transaction, between commit and answer...)."""
    sku = await shop.make_sku()
    await shop.stock(sku, BURST + 6)
    orders = [await shop.create_order(sku.id) for _ in range(BURST)]
    notifications = [shop.notification(await shop.start_payment(order)) for order in orders]

    async def delivered_count() -> int:
        return await shop.count(Order, Order.sku_id == sku.id, Order.status == "delivered")

    server = QuanyiProcess.server(settings, tmp_path)
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=60) as http:
            async def post(params: dict[str, str]) -> httpx.Response | Exception:
                try:
                    return await http.post("/payments/sandbox/notify", data=params)
                except httpx.HTTPError as exc:
                    return exc

            burst = asyncio.gather(*(post(params) for params in notifications))

            async def some_delivered() -> bool:
                return await delivered_count() >= 1

            await await_until(some_delivered, what="a first delivery")
            server.kill9()
            answers = await burst
    finally:
        if server.alive():
            server.stop()
    acknowledged = sum(1 for a in answers if isinstance(a, httpx.Response) and a.text == "success")
    assert all(isinstance(a, httpx.HTTPError) or a.text == "success" for a in answers), answers
    # `success` is said only after the commit: every acknowledged payment is delivered (more may be, unheard).
    assert acknowledged <= await delivered_count()

    restarted = QuanyiProcess.server(settings, tmp_path, port=server.port, name="restarted")
    try:
        with httpx.Client(base_url=restarted.url, timeout=30) as http:
            for params in notifications:  # the gateway retries every one it has not heard `success` for
                retry = http.post("/payments/sandbox/notify", data=params)
                assert retry.status_code == 200 and retry.text == "success", retry.text
    finally:
        restarted.stop()
    assert not traceback_lines(restarted.log()), restarted.log()[-3000:]

    assert await delivered_count() == BURST
    assert await key_counts(shop, sku.id) == {"available": 6, "sold": BURST}
    async with shop.ctx.db.read_session() as session:
        owners = (await session.scalars(select(CardKey.order_id).where(CardKey.status == "sold"))).all()
    assert len(owners) == len(set(owners)) == BURST  # one key per order, none given twice
    assert await shop.count(Payment, Payment.status == "succeeded") == BURST
