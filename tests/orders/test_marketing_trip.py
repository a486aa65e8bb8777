"""A member's checkout with a coupon and points: on SQLite the coupon's take and the points' spend go in the order's
own trip to the connection's thread (orders.checkout, quanyi.sqlite_trip.Take), sending the statements and values
they sent in trips of their own; a take that cannot be made once the order is in (the coupon used up, the points
gone since the price was shown) refuses the checkout with its usual answer, the coupon's first, and leaves no order,
no coupon taken and no points spent (both backends)."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import event, func, select, update

from coupons.support import make_coupon
from quanyi import sqlite_trip
from quanyi.coupons.models import Coupon, CouponRedemption, CouponTally
from quanyi.ledger.models import LedgerPosting
from quanyi.loyalty import levels as loyalty_levels
from quanyi.loyalty import points as loyalty_points
from quanyi.loyalty.models import MemberLoyalty, PointsLot, PointsMovement
from quanyi.members.models import LoginMethod, Member
from quanyi.members.sessions import open_member_session
from quanyi.orders import checkout, numbers
from quanyi.orders.models import Order
from quanyi.pricing import service as pricing_service


async def _member(shop) -> tuple[int, str]:
    """A member at a 5 %-off level holding 1,000 points: (their id, their session token)."""
    async with shop.ctx.db.transaction() as session:
        await loyalty_levels.set_level(session=session, code="SILVER", name="Silver", min_paid_cents=0,
                                       discount_bps=500)
        member = Member(email="trip@example.com")
        session.add(member)
        await session.flush()
        token = await open_member_session(session=session, member=member, method=LoginMethod.CODE, days=1,
                                          ip="127.0.0.1", user_agent="test")
        await loyalty_points.adjust(session=session, member_id=member.id, points=1000, reason="gift", actor="test")
        await loyalty_levels.reevaluate(session=session)
        return member.id, token


async def _written(shop) -> tuple[int, ...]:
    """Orders, redemptions, the coupon's count and tally, the points balance, journal rows, lots' points, postings."""
    async with shop.ctx.db.read_session() as session:
        return tuple([await session.scalar(statement) for statement in (
            select(func.count()).select_from(Order), select(func.count()).select_from(CouponRedemption),
            select(func.sum(Coupon.taken_count)), select(func.coalesce(func.sum(CouponTally.taken), 0)),
            select(func.sum(MemberLoyalty.points_balance)), select(func.count()).select_from(PointsMovement),
            select(func.sum(PointsLot.remaining)), select(func.count()).select_from(LedgerPosting))])


async def test_a_sqlite_marketing_checkout_takes_coupon_and_points_in_the_orders_trip_as_trips_of_their_own_did(
        shop, sku, backend, monkeypatch):
    if backend != "sqlite":
        pytest.skip("about SQLite's trips to the connection's thread (PostgreSQL: one statement, orders.one_statement)")
    await shop.stock(sku, 2)
    await make_coupon(shop, code="TRIP3", per_member_limit=1)
    member_id, _ = await _member(shop)
    at = dt.datetime(2026, 12, 5, 2, 0, 0, 123456, tzinfo=dt.UTC)
    monkeypatch.setattr(numbers, "new_order_no", lambda now, zone: "261205ABCDEFGH")
    trips = []
    run = sqlite_trip.run

    async def counted(connection, steps):
        trips.append(len(steps))
        return await run(connection, steps)

    monkeypatch.setattr(sqlite_trip, "run", counted)
    seen = []

    def sent(_conn, _cursor, statement, parameters, _context, executemany) -> None:
        if not statement.startswith("BEGIN"):
            seen.append((statement, parameters, executemany))

    async def place(rolled_back: bool) -> int:
        async with shop.ctx.db.transaction() as session:
            order = await checkout.create_order(
                session=session, sku_id=sku.id, quantity=1, contact="a@example.com",
                reservation_ttl=dt.timedelta(minutes=15), now=at, member_id=member_id, points=100,
                coupon_codes=["TRIP3"])
            if rolled_back:
                raise RuntimeError(order.id)  # the next order gets the same ids, keys, lots and accounts
            return order.id

    with pytest.raises(RuntimeError):
        await place(rolled_back=True)  # warms the process's caches (the ledger's account ids)
    trips.clear()
    engine = shop.ctx.db.write_engine.sync_engine
    event.listen(engine, "before_cursor_execute", sent)
    try:
        with monkeypatch.context() as patched:  # the coupon's and the points' trips of their own, after the order's
            patched.setattr(pricing_service, "trip_takes_with_order", _nothing_with_order)
            with pytest.raises(RuntimeError):
                await place(rolled_back=True)
        by_own_trips, trips_before = seen[:], trips[:]
        seen.clear()
        trips.clear()
        order_id = await place(rolled_back=False)
    finally:
        event.remove(engine, "before_cursor_execute", sent)
    assert (trips_before, trips) == ([3, 3, 5], [11])  # order, event, keys; coupon; points and posting
    assert seen == by_own_trips
    assert sum("coupons_redemption" in statement for statement, _, _ in seen) == 1
    async with shop.ctx.db.read_session() as session:
        posting = (await session.execute(select(LedgerPosting.reference, LedgerPosting.memo, LedgerPosting.order_id)
                                         .where(LedgerPosting.kind == "points_spent"))).one()
        assert tuple(posting) == (f"points_spent:{order_id}", f"100 points spent on order {order_id}", order_id)
        references = (await session.scalars(select(PointsMovement.reference)
                                            .where(PointsMovement.order_id == order_id))).all()
        assert references == [f"points_spent:{order_id}"]
        assert await loyalty_points.liability_drift(session=session) == 0


async def _nothing_with_order(**_: object) -> pricing_service.TakenWithOrder:
    return pricing_service.NOTHING_WITH_ORDER


@pytest.mark.parametrize("gone", [("coupon",), ("points",), ("coupon", "points")])
async def test_a_coupon_or_points_gone_after_the_price_refuses_the_checkout_and_leaves_nothing_written(
        shop, sku, monkeypatch, gone):
    await shop.stock(sku, 2)
    await make_coupon(shop, code="GONE3", per_member_limit=1, total_quantity=5)
    member_id, token = await _member(shop)
    before = await _written(shop)
    price_order = pricing_service.price_order

    async def priced_then_gone(*, session, **kwargs):  # what another checkout would do between price and take
        breakdown = await price_order(session=session, **kwargs)
        if "coupon" in gone:
            await session.execute(update(Coupon).where(Coupon.code == "GONE3").values(taken_count=5))
        if "points" in gone:
            await session.execute(update(MemberLoyalty).where(MemberLoyalty.member_id == member_id)
                                  .values(points_balance=50))
        return breakdown

    monkeypatch.setattr(pricing_service, "price_order", priced_then_gone)
    response = await shop.client.post("/api/orders", headers={"X-Member-Token": token}, json={
        "sku_id": sku.id, "quantity": 1, "contact": "m@example.com", "coupon_codes": ["GONE3"], "points": 100})
    assert response.status_code == 409, response.text
    assert response.json()["code"] == ("coupon_sold_out" if "coupon" in gone else "points_insufficient")
    assert await _written(shop) == before
    monkeypatch.setattr(pricing_service, "price_order", price_order)
    placed = await shop.client.post("/api/orders", headers={"X-Member-Token": token}, json={
        "sku_id": sku.id, "quantity": 1, "contact": "m@example.com", "coupon_codes": ["GONE3"], "points": 100})
    assert placed.status_code == 201, placed.text
    orders, redemptions, taken, tallied, balance, journal, lots, postings = await _written(shop)
    assert (orders, redemptions, taken, tallied, balance, journal, lots) == (
        before[0] + 1, before[1] + 1, before[2] + 1, before[3] + 1, before[4] - 100, before[5] + 1, before[6] - 100)


async def test_each_step_of_a_marketing_purchase_is_sent_the_values_sqlalchemy_would_send(shop, sku, backend,
                                                                                          monkeypatch):
    """quanyi.sqlite_trip works out once per statement where each position's value comes from: every step of a
    member's checkout (level, coupon, points) and of its payment notification is sent what SQLAlchemy's
    `construct_params` and bind processors give it (the way expanding IN lists still go)."""
    if backend != "sqlite":
        pytest.skip("about SQLite's trips to the connection's thread")
    await shop.stock(sku, 2)
    await make_coupon(shop, code="PLAN3", per_member_limit=1)
    _, token = await _member(shop)
    bind, planned = sqlite_trip._bind, []

    def compared(dialect, step):
        sent = bind(dialect, step)
        rows = [step.params] if isinstance(step.params, dict) else list(step.params)
        prepared = sqlite_trip._prepare(dialect, step.statement, tuple(sorted(rows[0])), len(rows) > 1)
        plan, prepared.plan = prepared.plan, None
        try:
            assert bind(dialect, step) == sent, step.statement
        finally:
            prepared.plan = plan
        planned.append(plan is not None)
        return sent

    monkeypatch.setattr(sqlite_trip, "_bind", compared)
    response = await shop.client.post("/api/orders", headers={"X-Member-Token": token}, json={
        "sku_id": sku.id, "quantity": 1, "contact": "m@example.com", "coupon_codes": ["PLAN3"], "points": 100})
    assert response.status_code == 201, response.text
    paid = await shop.notify(shop.notification(await shop.start_payment(response.json())))
    assert paid.status_code == 200 and paid.text == "success"
    assert (await shop.get_order(response.json()))["status"] == "delivered"
    assert planned.count(True) >= 12 and False in planned, planned  # the keys' reservation: an expanding IN list
