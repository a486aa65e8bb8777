"""Exact under concurrency: a coupon with 100 left and 500 simultaneous checkouts on PostgreSQL (real connections,
20 at a time on the coupon's row) is used exactly 100 times; the other 400 are refused and hold nothing."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections import Counter

import pytest
from sqlalchemy import func, select

from coupons.support import make_coupon
from quanyi.coupons.models import Coupon, CouponRedemption, CouponTally
from quanyi.coupons.service import CouponLimitReached, CouponSoldOut
from quanyi.db import Database
from quanyi.members.models import Member
from quanyi.orders import service as orders_service
from quanyi.orders.models import Order

CHECKOUTS, LEFT = 500, 100


@pytest.mark.slow
async def test_500_simultaneous_checkouts_use_a_coupon_with_100_left_exactly_100_times(shop, sku, backend,
                                                                                      database_url):
    if backend != "postgresql":
        pytest.skip("the race is about PostgreSQL's row locks under real concurrency (SQLite serialises writers)")
    await shop.stock(sku, CHECKOUTS)
    made = await make_coupon(shop, code="RACE", total_quantity=LEFT)
    db = Database(str(database_url), pool_size=10)  # 20 connections: the checkouts really overlap (and stay
    # well under PostgreSQL's default 100 connections while other tests run)
    go = asyncio.Event()

    async def checkout(n: int) -> str:
        await go.wait()
        try:
            async with db.transaction() as session:
                await orders_service.create_order(session=session, sku_id=sku.id, quantity=1,
                                                  contact=f"buyer{n}@example.com",
                                                  reservation_ttl=dt.timedelta(minutes=15), coupon_codes=["RACE"])
            return "placed"
        except CouponSoldOut:
            return "sold_out"

    try:
        tasks = [asyncio.create_task(checkout(n)) for n in range(CHECKOUTS)]
        await asyncio.sleep(0)
        go.set()
        outcomes = Counter(await asyncio.gather(*tasks))
    finally:
        await db.dispose()
    assert outcomes == {"placed": LEFT, "sold_out": CHECKOUTS - LEFT}
    assert await shop.scalar(select(Coupon.taken_count).where(Coupon.id == made["id"])) == LEFT
    assert await shop.count(CouponRedemption, CouponRedemption.status == "reserved") == LEFT
    assert await shop.count(Order) == LEFT
    assert await shop.scalar(select(func.sum(Order.coupon_discount_cents))) == LEFT * 300
    assert await shop.available(sku.id) == CHECKOUTS - LEFT


@pytest.mark.slow
async def test_members_racing_for_a_per_member_coupon_take_it_exactly_once_each_and_100_in_all(shop, sku, backend,
                                                                                                database_url):
    """The same race with members (per-member limit 1; on PostgreSQL tally, count and redemption are one
    statement): 250 members checking out twice each at once, 100 left: exactly 100 placed, none twice."""
    if backend != "postgresql":
        pytest.skip("the race is about PostgreSQL's row locks under real concurrency (SQLite serialises writers)")
    await shop.stock(sku, CHECKOUTS)
    made = await make_coupon(shop, code="RACE1", total_quantity=LEFT, per_member_limit=1)
    async with shop.ctx.db.transaction() as session:
        members = [Member(email=f"racer{n}@example.com") for n in range(CHECKOUTS // 2)]
        session.add_all(members)
        await session.flush()
        member_ids = [m.id for m in members]
    db = Database(str(database_url), pool_size=10)
    go = asyncio.Event()

    async def checkout(n: int) -> str:
        await go.wait()
        try:
            async with db.transaction() as session:
                await orders_service.create_order(session=session, sku_id=sku.id, quantity=1,
                                                  contact=f"racer{n}@example.com", member_id=member_ids[n // 2],
                                                  reservation_ttl=dt.timedelta(minutes=15), coupon_codes=["RACE1"])
            return "placed"
        except CouponSoldOut:
            return "sold_out"
        except CouponLimitReached:
            return "limit"

    try:
        tasks = [asyncio.create_task(checkout(n)) for n in range(CHECKOUTS)]
        await asyncio.sleep(0)
        go.set()
        outcomes = Counter(await asyncio.gather(*tasks))
    finally:
        await db.dispose()
    assert outcomes["placed"] == LEFT and sum(outcomes.values()) == CHECKOUTS, outcomes
    assert await shop.scalar(select(Coupon.taken_count).where(Coupon.id == made["id"])) == LEFT
    assert await shop.count(CouponRedemption, CouponRedemption.status == "reserved") == LEFT
    async with shop.ctx.db.read_session() as session:
        per_member = Counter((await session.scalars(select(Order.member_id))).all())
        tallies = (await session.scalars(select(CouponTally.taken).where(CouponTally.coupon_id == made["id"]))).all()
    assert len(per_member) == LEFT and max(per_member.values()) == 1  # 100 members, one order each
    assert sorted(tallies) == [1] * LEFT  # the tally of a refused checkout rolled back with it
    assert await shop.available(sku.id) == CHECKOUTS - LEFT
