"""The one price calculation in use: the quote API and order placement agree, the order stores every step,
the hooks loyalty fills are capped, and the database refuses a payable that does not match its steps."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import update
from sqlalchemy.exc import IntegrityError

from quanyi.catalog import service as catalog_service
from quanyi.members.models import Member
from quanyi.orders import service as orders_service
from quanyi.orders.models import Order
from quanyi.pricing import hooks
from quanyi.pricing import service as pricing_service

TTL = dt.timedelta(minutes=15)


async def test_quote_and_order_agree_and_the_order_stores_the_breakdown(shop, stocked_sku):
    quote = await shop.client.post("/api/pricing/quote", json={"sku_id": stocked_sku.id, "quantity": 3})
    assert quote.status_code == 200, quote.text
    body = quote.json()
    assert (body["list_total_cents"], body["payable_cents"], body["payable_display"]) == (5940, 5940, "¥59.40")
    assert body["price_source"] == "list" and body["coupons"] == [] and body["notes"] == []
    order = await shop.create_order(stocked_sku.id, quantity=3)
    assert (order["list_total_cents"], order["coupon_discount_cents"], order["total_cents"]) == (5940, 0, 5940)
    assert await shop.available(stocked_sku.id) == 7  # the quote held nothing; the order holds 3


async def test_a_quote_refuses_bad_input_with_a_clear_4xx(shop, stocked_sku):
    for payload, status in (({"sku_id": stocked_sku.id, "quantity": 0}, 422),
                            ({"sku_id": stocked_sku.id, "quantity": 11}, 422),
                            ({"sku_id": 999_999}, 404),
                            ({"sku_id": stocked_sku.id, "points": -1}, 422),
                            ({"sku_id": stocked_sku.id, "total_cents": 1}, 422)):
        response = await shop.client.post("/api/pricing/quote", json=payload)
        assert response.status_code == status, (payload, response.text)
    guest = await shop.client.post("/api/pricing/quote", json={"sku_id": stocked_sku.id, "points": 500})
    assert guest.json()["notes"] == ["points_need_member"] and guest.json()["points_discount_cents"] == 0


async def test_member_price_and_points_hooks_are_applied_and_capped(shop, stocked_sku, monkeypatch):
    async def member_price(**kw):
        return hooks.MemberPrice(unit_price_cents=kw["unit_price_cents"] - 180, label="Gold")

    spent: list[tuple[int, int]] = []
    returned: list[int] = []

    async def points_quote(**kw):  # asks for far more than is allowed: pricing caps it at the floor
        return hooks.PointsQuote(points=kw["points"], discount_cents=10**9)

    async def spend_points(**kw):
        spent.append((kw["order_id"], kw["points"]))

    async def return_points(**kw):
        returned.append(kw["order_id"])

    for name, fn in (("member_price", member_price), ("points_quote", points_quote),
                     ("spend_points", spend_points), ("return_points", return_points)):
        monkeypatch.setattr(hooks, name, fn)
    async with shop.ctx.db.transaction() as session:
        member = Member(email="m@example.com")  # orders.member_id is a foreign key to the member
        session.add(member)
        await session.flush()
        sku = await catalog_service.get_sku(session=session, sku_id=stocked_sku.id)
        order = await orders_service.create_order(session=session, sku_id=sku.id, quantity=2, contact="m@example.com",
                                                  reservation_ttl=TTL, member_id=member.id, points=300, sku=sku)
        order_id = order.id
    assert (order.unit_price_cents, order.member_discount_cents) == (1980, 360)
    assert (order.points_used, order.points_discount_cents, order.total_cents) == (300, 3599, 1)
    assert order.price_source == "list" and spent == [(order_id, 300)]
    async with shop.ctx.db.transaction() as session:
        await orders_service.cancel_order(session=session, order_id=order_id, reason="buyer changed their mind")
    assert returned == [order_id]


async def test_an_account_customer_buys_at_its_own_price_without_retail_promotions(shop, stocked_sku, monkeypatch):
    async def member_price(**kw):  # would apply to a retail buyer, never to an account customer's price
        return hooks.MemberPrice(unit_price_cents=1)

    monkeypatch.setattr(hooks, "member_price", member_price)
    async with shop.ctx.db.read_session() as session:
        sku = await catalog_service.get_sku(session=session, sku_id=stocked_sku.id)
        b = await pricing_service.price_order(session=session, sku=sku, quantity=2, member_id=3, points=50,
                                              source=pricing_service.PriceSource("account", 1500))
    assert (b.price_source, b.unit_price_cents, b.member_discount_cents, b.payable_cents) == ("account", 1500, 0, 3000)
    assert b.notes == ("points_need_member",)


async def test_the_database_refuses_a_payable_that_does_not_match_its_steps(shop, stocked_sku):
    order = await shop.create_order(stocked_sku.id, quantity=2)
    with pytest.raises(IntegrityError):
        async with shop.ctx.db.transaction() as session:
            await session.execute(update(Order).where(Order.order_no == order["order_no"]).values(total_cents=1))
    with pytest.raises(IntegrityError):  # a discount that is not taken off the payable
        async with shop.ctx.db.transaction() as session:
            await session.execute(update(Order).where(Order.order_no == order["order_no"])
                                  .values(coupon_discount_cents=100))
    assert (await shop.get_order(order))["total_cents"] == 3960
