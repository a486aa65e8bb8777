"""Points taken at checkout from several lots: oldest-expiring first, one journal row per lot with the balance
after it, the books in step (loyalty/spending.py: one statement for the lots on PostgreSQL, the ORM elsewhere)."""

from __future__ import annotations

from sqlalchemy import select

from ledger.support import unbalanced_postings
from members.support import sign_in
from quanyi.loyalty import points as points_service
from quanyi.loyalty.models import PointsLot, PointsMovement
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
