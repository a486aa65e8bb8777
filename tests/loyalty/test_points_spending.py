"""Points taken at checkout from several lots: oldest-expiring first, one journal row per lot with the balance
after it, the books in step (loyalty/spending.py: one statement for the lots on PostgreSQL, the ORM elsewhere)."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import select, text

from ledger.support import unbalanced_postings
from members.support import sign_in
from quanyi.loyalty import points as points_service
from quanyi.loyalty.models import MemberLoyalty, PointsLot, PointsMovement
from quanyi.members.models import Member


async def test_a_checkout_spends_the_oldest_lots_first_with_a_journal_row_per_lot(shop, app, stocked_sku):
    member = await sign_in(shop, "lots@example.com")
    member_id = await shop.scalar(select(Member.id).where(Member.email == "lots@example.com"))
    async with shop.ctx.db.transaction() as session:
        for gift in (300, 500, 400):  # three lots, the same expiry: taken in the order they were made
            await points_service.adjust(session=session, member_id=member_id, points=gift, reason="gift", actor="t")
    response = await shop.client.post("/api/orders", headers={"X-Member-Token": member["token"]}, json={
        "sku_id": stocked_sku.id, "quantity": 1, "contact": "lots@example.com", "points": 600})
    assert response.status_code == 201, response.text
    order = response.json()
    assert order["points_used"] == 600
    async with shop.ctx.db.read_session() as session:
        lots = (await session.scalars(select(PointsLot.remaining).where(PointsLot.member_id == member_id)
                                      .order_by(PointsLot.id))).all()
        spent = (await session.execute(select(PointsMovement.points, PointsMovement.balance_after)
                                       .where(PointsMovement.kind == "spent").order_by(PointsMovement.lot_id))).all()
        assert await points_service.liability_drift(session=session) == 0  # the ledger says 600 points fewer
    assert list(lots) == [0, 200, 400]
    assert [tuple(row) for row in spent] == [(-300, 900), (-300, 600)]  # 1,200 before: 900 after the first lot
    assert await unbalanced_postings(shop.ctx) == []


async def test_a_checkout_waiting_for_the_members_lock_spends_the_lots_as_the_other_transaction_left_them(
        shop, app, stocked_sku, backend):
    """PostgreSQL takes the points in the order's one statement (orders.one_statement): the lots are read under the
    member's lock with FOR UPDATE, so a lot another transaction changed meanwhile is read as it committed it, and a
    lot it added (not in the statement's snapshot) is taken from once the lots are read again. Never more than the
    balance, never a lot below 0, journal and books in step."""
    if backend != "postgresql":
        pytest.skip("about PostgreSQL's row locks and snapshots inside one statement")
    member = await sign_in(shop, "waits@example.com")
    member_id = await shop.scalar(select(Member.id).where(Member.email == "waits@example.com"))
    async with shop.ctx.db.transaction() as session:
        for gift in (300, 200):  # lots A and B
            await points_service.adjust(session=session, member_id=member_id, points=gift, reason="gift", actor="t")
    async with shop.ctx.db.transaction() as session:  # holds the member's lock until the checkout waits on it
        await points_service.adjust(session=session, member_id=member_id, points=-250, reason="fix", actor="t")
        await points_service.adjust(session=session, member_id=member_id, points=400, reason="gift", actor="t")
        # The checkout is priced at the committed balance (500) and waits for the lock in its order's statement.
        checkout = asyncio.create_task(shop.client.post(
            "/api/orders", headers={"X-Member-Token": member["token"]},
            json={"sku_id": stocked_sku.id, "quantity": 1, "contact": "waits@example.com", "points": 400}))
        for _ in range(200):
            async with shop.ctx.db.read_session() as probe:
                if await probe.scalar(text("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                                           "AND datname = current_database()")):
                    break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError("the checkout never waited for the member's lock")
    response = await checkout
    assert response.status_code == 201, response.text
    assert response.json()["points_used"] == 400
    async with shop.ctx.db.read_session() as session:
        lots = (await session.scalars(select(PointsLot.remaining).where(PointsLot.member_id == member_id)
                                      .order_by(PointsLot.id))).all()
        balance = await session.scalar(select(MemberLoyalty.points_balance).where(MemberLoyalty.member_id == member_id))
        spent = (await session.execute(select(PointsMovement.points, PointsMovement.balance_after)
                                       .where(PointsMovement.kind == "spent").order_by(PointsMovement.id))).all()
        assert await points_service.liability_drift(session=session) == 0
    # A had 50 left after the other transaction, B 200: 250 in the statement, the other 150 from the new lot C.
    assert list(lots) == [0, 0, 250] and balance == 250
    assert sorted(points for points, _ in spent) == [-200, -150, -50]
    assert sorted(after for _, after in spent) == [250, 400, 600]  # 650 before the spend
    assert await unbalanced_postings(shop.ctx) == []
