"""The staff's order search (orders.search) finds what a staff member types, on the indexes of docs/PERFORMANCE.md
section 30: a whole contact however it is written, part of one written as people write phone numbers, a gateway's
trade number at any gateway that has payments (one no longer configured too), our payment number; and the sales
report's paid orders per 15 minutes, one row per bucket on SQLite too."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from sqlalchemy import select, update

from quanyi.orders import reports
from quanyi.orders.models import Order
from quanyi.orders.search import OrderFilters, search_orders
from quanyi.payments.models import Payment
from refund_helpers import cashier_pay

ZONE = ZoneInfo("Asia/Shanghai")


async def _found(shop, **filters: str) -> list[str]:
    async with shop.ctx.db.read_session() as session:
        return [o.order_no for o in await search_orders(session=session, filters=OrderFilters(**filters), zone=ZONE)]


async def test_a_contact_is_found_however_staff_type_it(shop, stocked_sku):
    phone = await shop.create_order(stocked_sku.id, contact="13800138000")
    email = await shop.create_order(stocked_sku.id, contact="Buyer@Example.com")
    await shop.create_order(stocked_sku.id, contact="13900139000")
    for typed in ("13800138000", "+86 138-0013-8000", "0086 (138) 0013 8000", "１３８００１３８０００"):
        assert await _found(shop, contact=typed) == [phone["order_no"]], typed
    for typed in ("buyer@example.com", " BUYER@example.COM "):
        assert await _found(shop, contact=typed) == [email["order_no"]], typed
    # Part of one, written as phone numbers are (the stored ones have no spaces, dashes or +86).
    for typed in ("138 0013", "0013-8000", "+86 138 001", "(138)0013"):
        assert await _found(shop, contact=typed) == [phone["order_no"]], typed
    assert await _found(shop, contact="Buyer@") == [email["order_no"]]
    assert await _found(shop, contact="138 0099") == []


async def test_a_trade_number_finds_its_order_at_any_gateway_it_was_paid_at(shop, stocked_sku):
    paid = await shop.create_order(stocked_sku.id)
    payment = await cashier_pay(shop, paid)
    other = await shop.create_order(stocked_sku.id)
    await cashier_pay(shop, other)
    async with shop.ctx.db.read_session() as session:
        trade_no = await session.scalar(select(Payment.gateway_trade_no)
                                        .where(Payment.payment_no == payment["payment_no"]))
    assert trade_no
    assert await _found(shop, number=trade_no) == [paid["order_no"]]
    assert await _found(shop, number=payment["payment_no"].lower()) == [paid["order_no"]]
    assert await _found(shop, number=paid["order_no"]) == [paid["order_no"]]

    # A gateway no longer configured still has its payments, found by their trade numbers.
    async with shop.ctx.db.transaction() as session:
        await session.execute(update(Payment).where(Payment.payment_no == payment["payment_no"])
                              .values(gateway="retired"))
    assert await _found(shop, number=trade_no) == [paid["order_no"]]
    assert await _found(shop, number=trade_no + "0") == []
    assert await _found(shop, number="pi_not_an_order_number_at_all") == []


async def test_orders_paid_in_one_quarter_hour_are_one_bucket_of_the_sales_report(shop, stocked_sku):
    orders = [await shop.create_order(stocked_sku.id) for _ in range(3)]
    for order in orders:
        await cashier_pay(shop, order)
    # Paid a minute apart within the previous quarter hour.
    quarter = dt.datetime.fromtimestamp(int(dt.datetime.now(dt.UTC).timestamp()) // 900 * 900 - 900, dt.UTC)
    async with shop.ctx.db.transaction() as session:
        for n, order in enumerate(orders, start=1):
            await session.execute(update(Order).where(Order.order_no == order["order_no"])
                                  .values(paid_at=quarter + dt.timedelta(minutes=n)))
    async with shop.ctx.db.read_session() as session:
        buckets = await reports.paid_buckets(session=session, start=quarter - dt.timedelta(hours=1),
                                             end=quarter + dt.timedelta(hours=1), currency=stocked_sku.currency)
    assert [(start, count) for start, count, _cents in buckets] == [(quarter, 3)]
