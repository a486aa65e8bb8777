"""Promoters who are members: apply through the API (reviewed, or approved at once), recruit a level-2 promoter
through their link, members bound to the promoter whose link they followed (锁粉), their own orders earn nothing,
withdrawals from the member's own centre."""

from __future__ import annotations

from sqlalchemy import select

from members.support import sign_in
from promoters.support import set_program
from quanyi.ledger.reports import set_share_rule
from quanyi.orders.models import Order
from refund_helpers import cashier_pay


def _me(member: dict) -> dict[str, str]:
    return {"X-Member-Token": member["token"]}


async def _code_of(shop, order: dict) -> str | None:
    return await shop.scalar(select(Order.distributor_code).where(Order.order_no == order["order_no"]))


async def test_member_applies_is_reviewed_then_recruits_a_level_two_promoter(shop, app, stocked_sku):
    boss = await sign_in(shop, "boss@example.com")
    assert (await shop.client.get("/api/members/me/promoter", headers=_me(boss))).status_code == 404
    applied = await shop.client.post("/api/members/me/promoter", headers=_me(boss), json={"name": "老板"})
    assert applied.status_code == 201 and applied.json()["status"] == "pending"
    again = await shop.client.post("/api/members/me/promoter", headers=_me(boss), json={"name": "老板"})
    assert again.status_code == 409
    code = applied.json()["code"]
    assert (await shop.client.get(f"/r/{code}/qr.svg")).status_code == 404  # not approved yet
    approved = await shop.client.post(f"/api/admin/promoters/{code}/approve", headers=shop.admin,
                                      json={"reason": "real shop"})
    assert approved.json()["status"] == "approved"

    # A friend follows the boss's link, signs up and applies: approved at once, recruited by the boss.
    await set_program(shop, auto_approve=True, levels=2)
    friend_client = shop.client
    friend_client.cookies.clear()
    await friend_client.get(f"/r/{code}")
    friend = await sign_in(shop, "friend@example.com")
    joined = await friend_client.post("/api/members/me/promoter", headers=_me(friend), json={"name": "朋友"})
    assert joined.status_code == 201, joined.text
    assert joined.json()["status"] == "approved" and joined.json()["parent_code"] == code


async def test_binding_attributes_later_orders_and_own_orders_earn_nothing(shop, app, stocked_sku):
    async with shop.ctx.db.transaction() as session:
        await set_share_rule(session=session, sku_id=None, merchant_code="", merchant_bps=0, distributor_bps=1000,
                             actor="test")
    await set_program(shop, auto_approve=True)
    promoter = await sign_in(shop, "kol@example.com")
    code = (await shop.client.post("/api/members/me/promoter", headers=_me(promoter),
                                   json={"name": "KOL"})).json()["code"]
    # The promoter's own order through its own link earns nothing.
    shop.client.cookies.clear()
    await shop.client.get(f"/r/{code}")
    own = await shop.client.post("/api/orders", headers=_me(promoter), json={
        "sku_id": stocked_sku.id, "quantity": 1, "contact": "other-address@example.com"})
    assert own.status_code == 201 and await _code_of(shop, own.json()) is None
    named = await shop.client.post("/api/orders", headers=_me(promoter), json={
        "sku_id": stocked_sku.id, "quantity": 1, "contact": "other-address@example.com", "distributor_code": code})
    assert named.status_code == 422 and named.json()["code"] == "self_referral"

    # A buyer signed in follows the link once: bound, so a later order from a clean browser is still the KOL's.
    shop.client.cookies.clear()
    buyer = await sign_in(shop, "fan@example.com")
    await shop.client.get(f"/r/{code}", headers=_me(buyer))
    shop.client.cookies.clear()
    later = await shop.client.post("/api/orders", headers=_me(buyer), json={
        "sku_id": stocked_sku.id, "quantity": 1, "contact": "fan@example.com"})
    assert await _code_of(shop, later.json()) == code.upper()
    await cashier_pay(shop, later.json())
    mine = (await shop.client.get("/api/members/me/promoter", headers=_me(promoter))).json()
    assert mine["orders"] == 1 and mine["balances"][0]["balance_cents"] == 198
    assert mine["balances"][0]["available_cents"] == 0  # held for the refund window
    held = await shop.client.post("/api/members/me/promoter/withdrawals", headers=_me(promoter),
                                  json={"amount_cents": 100, "payout_account": "alipay kol"})
    assert held.status_code == 409
    await set_program(shop, hold_days=0)
    made = await shop.client.post("/api/members/me/promoter/withdrawals", headers=_me(promoter),
                                  json={"amount_cents": 198, "payout_account": "alipay kol"})
    assert made.status_code == 201 and made.json()["status"] == "requested"
    await set_program(shop, hold_days=7)
