"""A member's checkout with a member price, a coupon scoped to the SKU's category and points reads its SKU as a plain
row (catalog.sku_row) like a guest's: no ORM `Sku` is loaded, and the price is what the ORM SKU gave (the level's
5 % off, the category coupon's 3 yuan, 100 points). Its coupon too is the plain row its one read found
(coupons.redemption.CouponRow): no ORM `Coupon` is built or loaded, and the coupon is counted and redeemed."""

from __future__ import annotations

from sqlalchemy import event, select

from coupons.support import make_coupon
from quanyi.catalog.models import Product, Sku
from quanyi.coupons.models import Coupon, CouponRedemption
from quanyi.loyalty import levels as loyalty_levels
from quanyi.loyalty import points as loyalty_points
from quanyi.members.models import LoginMethod, Member
from quanyi.members.sessions import open_member_session


async def _member_at_level(shop) -> dict[str, str]:
    async with shop.ctx.db.transaction() as session:
        await loyalty_levels.set_level(session=session, code="SKUROW", name="Row member", min_paid_cents=0,
                                       discount_bps=500)
        member = Member(email="row-member@example.com")
        session.add(member)
        await session.flush()
        token = await open_member_session(session=session, member=member, method=LoginMethod.CODE, days=1,
                                          ip="127.0.0.1", user_agent="test")
        await loyalty_points.adjust(session=session, member_id=member.id, points=1000, reason="gift", actor="test")
        await loyalty_levels.reevaluate(session=session)
    return {"X-Member-Token": token}


async def test_a_marketing_checkout_prices_from_the_sku_row_and_loads_no_orm_sku(shop):
    sku = await shop.make_sku(code="MKT-ROW-1", price_cents=1980)
    await shop.stock(sku, 2)
    async with shop.ctx.db.read_session() as session:
        category_id = await session.scalar(select(Product.category_id).where(Product.id == sku.product_id))
    await make_coupon(shop, code="CATROW", targets=[{"kind": "category", "id": category_id}])
    headers = await _member_at_level(shop)
    loaded: list[int] = []

    def on_load(target, context) -> None:
        loaded.append(target.id)

    event.listen(Sku, "load", on_load)
    try:
        response = await shop.client.post("/api/orders", headers=headers, json={
            "sku_id": sku.id, "quantity": 1, "contact": "row@example.com", "coupon_codes": ["CATROW"],
            "points": 100})
    finally:
        event.remove(Sku, "load", on_load)
    assert response.status_code == 201, response.text
    order = response.json()
    assert (order["member_discount_cents"], order["coupon_discount_cents"], order["points_used"],
            order["points_discount_cents"], order["total_cents"]) == (99, 300, 100, 100, 1980 - 99 - 300 - 100)
    assert loaded == []


async def test_a_marketing_checkout_takes_the_coupon_it_read_as_a_row_and_builds_no_orm_coupon(shop):
    sku = await shop.make_sku(code="MKT-ROW-2", price_cents=1980)
    await shop.stock(sku, 2)
    coupon_id = (await make_coupon(shop, code="ROWCPN", per_member_limit=1))["id"]
    headers = await _member_at_level(shop)
    built: list[object] = []

    def on_init(target, args, kwargs) -> None:
        built.append(target)

    def on_load(target, context) -> None:
        built.append(target)

    event.listen(Coupon, "init", on_init)
    event.listen(Coupon, "load", on_load)
    try:
        response = await shop.client.post("/api/orders", headers=headers, json={
            "sku_id": sku.id, "quantity": 1, "contact": "row@example.com", "coupon_codes": ["ROWCPN"],
            "points": 100})
    finally:
        event.remove(Coupon, "init", on_init)
        event.remove(Coupon, "load", on_load)
    assert response.status_code == 201, response.text
    order = response.json()
    assert (order["coupon_discount_cents"], order["total_cents"]) == (300, 1980 - 99 - 300 - 100)
    assert built == []
    async with shop.ctx.db.read_session() as session:
        assert await session.scalar(select(Coupon.taken_count).where(Coupon.id == coupon_id)) == 1
        assert (await session.execute(select(CouponRedemption.discount_cents, CouponRedemption.status)
                                      .where(CouponRedemption.coupon_id == coupon_id))).all() == [(300, "reserved")]
