"""A checkout with coupons, points or a member price is screened and placed in one transaction like a plain one
(orders.placing) and answers in the order it always did: too many checkouts (429) first, then sold out (409), then
the coupon's or the points' refusal, then (coupons) the new-member coupon check (403), then too much stock held
(429). Every refusal counts against the flood limit and leaves no order, no coupon taken and no points spent."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import select

from coupons.support import make_coupon
from helpers import make_settings
from quanyi.coupons.models import Coupon, CouponRedemption
from quanyi.loyalty import points as loyalty_points
from quanyi.loyalty.models import MemberLoyalty
from quanyi.members.models import LoginMethod, Member
from quanyi.members.sessions import open_member_session
from quanyi.orders.models import Order
from quanyi.risk.models import CounterEvent
from risk.support import checkout


@pytest.fixture
def settings(database_url: str):
    """Three checkouts a minute per address; a contact may hold 2 units in unpaid orders; one member per address
    may use new-member coupons."""
    return make_settings(database_url, checkout_limit_per_ip=3, checkout_limit_per_device=0,
                         checkout_limit_window_seconds=60, held_units_limit_per_contact=2,
                         coupon_new_members_per_ip=1, coupon_new_members_per_device=0)


async def _member(shop, name: str, points: int = 0) -> dict[str, str]:
    async with shop.ctx.db.transaction() as session:
        member = Member(email=f"{name}@example.com")
        session.add(member)
        await session.flush()
        token = await open_member_session(session=session, member=member, method=LoginMethod.CODE, days=1,
                                          ip="127.0.0.1", user_agent="test")
        if points:
            await loyalty_points.adjust(session=session, member_id=member.id, points=points, reason="gift",
                                        actor="test")
    return {"X-Member-Token": token}


async def _member_checkout(shop, sku_id: int, headers: dict[str, str], *, ip: str, contact: str, quantity: int = 1,
                           **extra):
    app = shop.client._transport.app
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app, client=(ip, 40000)),
                                 base_url="http://test") as client:
        return await client.post("/api/orders", headers=headers,
                                 json={"sku_id": sku_id, "quantity": quantity, "contact": contact, **extra})


def _code(response) -> tuple[int, str]:
    return response.status_code, response.json().get("code", "") if response.status_code >= 400 else ""


async def _taken(shop, code: str) -> tuple[int, int]:
    async with shop.ctx.db.read_session() as session:
        coupon = await session.scalar(select(Coupon).where(Coupon.code == code))
        redemptions = await session.scalar(select(CouponRedemption.id).where(CouponRedemption.coupon_id == coupon.id)
                                           .order_by(CouponRedemption.id.desc()).limit(1))
        return coupon.taken_count, 0 if redemptions is None else 1


async def test_a_coupon_checkout_answers_flood_then_sold_out_then_coupon_then_held_stock(shop):
    sku = await shop.make_sku(code="MKT-ORDER-1", max_quantity=10)
    await shop.stock(sku, 3)
    await make_coupon(shop, code="OK3", per_member_limit=1)
    first, second = await _member(shop, "hoarder"), await _member(shop, "second")
    placed = await _member_checkout(shop, sku.id, first, ip="203.0.113.10", contact="hoard@example.com", quantity=2,
                                    coupon_codes=["OK3"])
    assert placed.status_code == 201 and placed.json()["coupon_discount_cents"] == 300, placed.text
    ip = "203.0.113.11"
    # Only 1 key left: sold out for 2 answers before the unknown coupon.
    assert _code(await _member_checkout(shop, sku.id, second, ip=ip, contact="hoard@example.com", quantity=2,
                                        coupon_codes=["NOPE"])) == (409, "sold_out")
    # Stock is there: the unknown coupon answers before the held-stock limit (the contact holds 2 already).
    assert _code(await _member_checkout(shop, sku.id, second, ip=ip, contact="hoard@example.com",
                                        coupon_codes=["NOPE"])) == (404, "coupon_not_found")
    # A good coupon: the held-stock limit refuses, and the coupon is not taken.
    assert _code(await _member_checkout(shop, sku.id, second, ip=ip, contact="hoard@example.com",
                                        coupon_codes=["OK3"])) == (429, "too_much_stock_held")
    # The fourth checkout of this address: the flood limit answers first, whatever the coupon.
    assert _code(await _member_checkout(shop, sku.id, second, ip=ip, contact="new@example.com",
                                        coupon_codes=["NOPE"])) == (429, "too_many_checkouts")
    assert await shop.count(Order) == 1
    assert await shop.count(CouponRedemption) == 1 and (await _taken(shop, "OK3"))[0] == 1
    assert await shop.count(CounterEvent, CounterEvent.key == f"flood:ip:{ip}") == 4  # every refusal counted
    # Another address, another contact: the second member's coupon is still there to take.
    ok = await _member_checkout(shop, sku.id, second, ip="203.0.113.12", contact="fine@example.com",
                                coupon_codes=["OK3"])
    assert ok.status_code == 201 and ok.json()["coupon_discount_cents"] == 300, ok.text


async def test_a_points_checkout_answers_flood_then_sold_out_then_held_stock(shop):
    sku = await shop.make_sku(code="MKT-ORDER-2", max_quantity=10)
    await shop.stock(sku, 3)
    rich, poor = await _member(shop, "rich", points=1000), await _member(shop, "poor", points=50)
    placed = await _member_checkout(shop, sku.id, rich, ip="203.0.113.20", contact="hoard2@example.com", quantity=2,
                                    points=100)
    assert placed.status_code == 201 and placed.json()["points_used"] == 100, placed.text
    ip = "203.0.113.21"
    assert _code(await _member_checkout(shop, sku.id, poor, ip=ip, contact="hoard2@example.com", quantity=2,
                                        points=100)) == (409, "sold_out")
    # Stock is there: the held-stock limit refuses (the quote spends what the balance has; nothing is taken).
    assert _code(await _member_checkout(shop, sku.id, poor, ip=ip, contact="hoard2@example.com",
                                        points=100)) == (429, "too_much_stock_held")
    assert _code(await _member_checkout(shop, sku.id, poor, ip=ip, contact="hoard2@example.com",
                                        points=50)) == (429, "too_much_stock_held")
    assert _code(await _member_checkout(shop, sku.id, poor, ip=ip, contact="other@example.com",
                                        points=1000)) == (429, "too_many_checkouts")
    assert await shop.count(Order) == 1
    async with shop.ctx.db.read_session() as session:
        balances = sorted((await session.scalars(select(MemberLoyalty.points_balance))).all())
    assert balances == [50, 900]  # the refused checkouts spent nothing
    assert await shop.count(CounterEvent, CounterEvent.key == f"flood:ip:{ip}") == 4
    ok = await _member_checkout(shop, sku.id, poor, ip="203.0.113.22", contact="fine2@example.com", points=100)
    assert ok.status_code == 201 and ok.json()["points_used"] == 50, ok.text


async def test_a_new_member_coupon_used_where_too_many_members_were_seen_answers_before_held_stock(shop):
    sku = await shop.make_sku(code="MKT-ORDER-3", max_quantity=10)
    await shop.stock(sku, 5)
    await make_coupon(shop, code="NEW5", new_members_only=True)
    hoarder = await _member(shop, "hoarder3")
    placed = await _member_checkout(shop, sku.id, hoarder, ip="203.0.113.30", contact="hoard3@example.com",
                                    quantity=2)
    assert placed.status_code == 201, placed.text
    ip = "203.0.113.31"
    one, two = await _member(shop, "one"), await _member(shop, "two")
    used = await _member_checkout(shop, sku.id, one, ip=ip, contact="one@example.com", coupon_codes=["NEW5"])
    assert used.status_code == 201 and used.json()["coupon_discount_cents"] == 300, used.text
    # A second member on this address with a new-member coupon, for a contact holding 2 already: the coupon
    # check answers (403), not the held-stock limit.
    assert _code(await _member_checkout(shop, sku.id, two, ip=ip, contact="hoard3@example.com",
                                        coupon_codes=["NEW5"])) == (403, "coupon_refused_by_risk")
    # Without the coupon the held-stock limit answers.
    assert _code(await _member_checkout(shop, sku.id, two, ip=ip, contact="hoard3@example.com")) == \
        (429, "too_much_stock_held")
    assert await shop.count(Order) == 2 and await shop.count(CouponRedemption) == 1
    assert (await _taken(shop, "NEW5"))[0] == 1
    assert await shop.count(CounterEvent, CounterEvent.key == f"flood:ip:{ip}") == 3
    assert await shop.count(CounterEvent, CounterEvent.key == f"coupon_new_member:ip:{ip}") == 1
    # And a guest coupon checkout with the limits untouched still works.
    assert (await checkout(shop, sku.id, ip="203.0.113.32", contact="guest@example.com")).status_code == 201
