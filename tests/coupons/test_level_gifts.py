"""Level-up gift coupons (升级礼券): a member reaching a level on delivery gets its coupons in the delivery's
transaction, once per member and level however many deliveries (concurrent or repeated) and re-evaluations reach
it; configured through the API, the CLI and the console (platform staff)."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import func, select, update

from console.support import csrf_token, logged_in
from coupons.support import make_coupon
from enterprises.support import run_cli
from helpers import make_settings
from members.support import sign_in
from quanyi.coupons import service as coupons_service
from quanyi.coupons.models import CouponGrant, CouponLevelGift, CouponLevelReward
from quanyi.loyalty import levels as loyalty_levels
from quanyi.loyalty.models import MemberLevel, MemberLoyalty
from quanyi.staff.models import StaffAuditEntry
from refund_helpers import cashier_pay


@pytest.fixture
def settings(database_url: str):  # members sign in by a code from the outbox
    return make_settings(database_url, smtp_host="127.0.0.1", smtp_from="shop@example.com")


async def _levels(shop) -> None:
    for code, name, threshold in (("SILVER", "白银", 3000), ("GOLD", "黄金", 5000)):
        response = await shop.client.put(f"/api/admin/loyalty/levels/{code}", headers=shop.admin,
                                         json={"name": name, "min_paid_cents": threshold})
        assert response.status_code == 200, response.text


async def _gifts(shop, level: str, coupon_ids: list[int]):  # type: ignore[no-untyped-def]
    return await shop.client.put(f"/api/admin/coupons/level-gifts/{level}", headers=shop.admin,
                                 json={"coupon_ids": coupon_ids})


async def _issued(shop, name: str, **fields) -> int:  # type: ignore[no-untyped-def]
    return int((await make_coupon(shop, name=name, distribution="issued", code=None, **fields))["id"])


async def _buy(shop, member: dict, sku, quantity: int = 1) -> None:
    response = await shop.client.post("/api/orders", headers={"X-Member-Token": member["token"]}, json={
        "sku_id": sku.id, "quantity": quantity, "contact": "member@example.com"})
    assert response.status_code == 201, response.text
    await cashier_pay(shop, response.json())


async def _held(shop, member: dict) -> list[tuple[int, str]]:
    async with shop.ctx.db.read_session() as session:
        return sorted((int(c), str(s)) for c, s in (await session.execute(
            select(CouponGrant.coupon_id, CouponGrant.source).where(
                CouponGrant.member_id == member["member"]["id"]))).all())


async def test_reaching_a_level_on_delivery_gives_its_coupons_once(shop, app, stocked_sku):
    await _levels(shop)
    silver, gold = await _issued(shop, "白银礼"), await _issued(shop, "黄金礼", amount_off_cents=800)
    assert (await _gifts(shop, "silver", [silver])).status_code == 200
    listed = await _gifts(shop, "GOLD", [gold])
    assert listed.status_code == 200 and listed.json()["coupons"][0]["name"] == "黄金礼"
    member = await sign_in(shop)
    await _buy(shop, member, stocked_sku)  # 19.80 paid: no level
    assert await _held(shop, member) == []
    await _buy(shop, member, stocked_sku)  # 39.60: SILVER
    assert await _held(shop, member) == [(silver, "level")]
    await _buy(shop, member, stocked_sku)  # 59.40: GOLD, and SILVER's gift is not given again
    assert await _held(shop, member) == [(silver, "level"), (gold, "level")]
    # The yearly re-evaluation moves them down, a later one up again: nothing more.
    async with shop.ctx.db.transaction() as session:
        await session.execute(update(MemberLoyalty).values(paid_total_cents=0))
        assert await loyalty_levels.reevaluate(session=session) == 1
        await session.execute(update(MemberLoyalty).values(paid_total_cents=5940))
        assert await loyalty_levels.reevaluate(session=session) == 1
    assert await _held(shop, member) == [(silver, "level"), (gold, "level")]
    # A member jumping two levels at once gets each level's gift; a paused gift is skipped (and not owed).
    async with shop.ctx.db.transaction() as session:
        coupon = await coupons_service.get_coupon(session=session, coupon_id=silver, lock=True)
        await coupons_service.update_coupon(session=session, coupon=coupon, changes={"active": False})
    shop.client.cookies.clear()  # another buyer's browser
    jumper = await sign_in(shop, "jumper@example.com")
    await _buy(shop, jumper, stocked_sku, quantity=3)
    assert await _held(shop, jumper) == [(gold, "level")]
    async with shop.ctx.db.read_session() as session:
        rewards = (await session.execute(select(CouponLevelReward.member_id, CouponLevelReward.issued)
                                         .order_by(CouponLevelReward.member_id, CouponLevelReward.level_id))).all()
    assert [n for _, n in rewards] == [1, 1, 0, 1]  # member: silver, gold; jumper: silver (paused), gold


async def test_concurrent_deliveries_reaching_a_level_give_its_gift_exactly_once(shop, app):
    await _levels(shop)
    gift = await _issued(shop, "白银礼")
    assert (await _gifts(shop, "SILVER", [gift])).status_code == 200
    member = await sign_in(shop)
    async with shop.ctx.db.read_session() as session:
        level_id = await session.scalar(select(MemberLevel.id).where(MemberLevel.code == "SILVER"))

    async def deliver() -> int:  # what each delivery's transaction does on reaching the level
        async with shop.ctx.db.transaction() as session:
            return await coupons_service.issue_level_gifts(session=session, member_id=member["member"]["id"],
                                                           level_ids=[level_id])

    given = await asyncio.gather(*(deliver() for _ in range(8)))
    assert sorted(given) == [0] * 7 + [1]
    assert await _held(shop, member) == [(gift, "level")]


async def test_only_open_issued_coupons_can_be_level_gifts_and_only_platform_staff_set_them(shop):
    await _levels(shop)
    claim = int((await make_coupon(shop, name="领券", distribution="claim", code=None))["id"])
    gift = await _issued(shop, "礼")
    assert (await _gifts(shop, "SILVER", [claim])).status_code == 422
    assert (await _gifts(shop, "SILVER", [99_999])).status_code == 404
    assert (await _gifts(shop, "NOPE", [gift])).status_code == 404
    assert (await _gifts(shop, "SILVER", list(range(1, 22)))).status_code == 422
    async with shop.ctx.db.read_session() as session:
        assert await session.scalar(select(func.count()).select_from(CouponLevelGift)) == 0
    assert (await _gifts(shop, "SILVER", [gift, gift])).json()["coupons"][0]["id"] == gift
    assert [g["coupons"] != [] for g in (await shop.client.get("/api/admin/coupons/level-gifts",
                                                                headers=shop.admin)).json()] == [True, False]
    assert (await _gifts(shop, "SILVER", [])).json()["coupons"] == []
    # Removing the level takes its gifts with it.
    await _gifts(shop, "GOLD", [gift])
    assert (await shop.client.delete("/api/admin/loyalty/levels/GOLD", headers=shop.admin)).status_code == 204
    async with shop.ctx.db.read_session() as session:
        assert await session.scalar(select(func.count()).select_from(CouponLevelGift)) == 0


async def test_level_gifts_in_the_console_and_the_cli(shop, monkeypatch, backend):
    await _levels(shop)
    gift = await _issued(shop, "白银礼")
    claim = int((await make_coupon(shop, name="领券", distribution="claim", code=None))["id"])
    client = await logged_in(shop, "marketer", roles=("operator",))
    page = await client.get("/console/level-gifts")
    assert page.status_code == 200 and page.text.count('data-testid="level-gift"') == 2
    assert f'data-testid="gift-SILVER-{gift}"' in page.text and f"gift-SILVER-{claim}" not in page.text
    token = csrf_token(page.text)
    refused = await client.post("/console/level-gifts/SILVER", data={"coupon_ids": str(claim), "csrf_token": token},
                                headers={"Origin": "http://test"})
    assert refused.status_code == 422 and 'data-testid="coupon_ids-error"' in refused.text
    saved = await client.post("/console/level-gifts/SILVER", data={"coupon_ids": str(gift), "csrf_token": token},
                              headers={"Origin": "http://test"})
    assert saved.status_code == 303 and saved.headers["location"] == "/console/level-gifts?m=saved&level=SILVER"
    assert "白银礼" in (await client.get(saved.headers["location"])).text
    async with shop.ctx.db.read_session() as session:
        audit = (await session.scalars(select(StaffAuditEntry.summary).where(
            StaffAuditEntry.action == "level_gifts_set"))).all()
    assert audit == [f"白银: #{gift} 白银礼"]
    if backend != "sqlite":
        return  # the commands are thin over the same service, tested on both databases above
    listed = await run_cli(shop, monkeypatch, "coupons", "level-gifts")
    assert listed.exit_code == 0 and "白银礼" in listed.output
    cleared = await run_cli(shop, monkeypatch, "coupons", "level-gift", "silver")
    assert cleared.exit_code == 0 and "no coupons" in cleared.output
    wrong = await run_cli(shop, monkeypatch, "coupons", "level-gift", "SILVER", str(claim))
    assert wrong.exit_code == 1 and "not an issued coupon" in wrong.output
    again = await run_cli(shop, monkeypatch, "coupons", "level-gift", "GOLD", str(gift))
    assert again.exit_code == 0 and f"GOLD gives {gift}" in again.output
