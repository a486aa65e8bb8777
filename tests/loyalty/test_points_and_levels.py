"""Points (积分) and membership levels (会员等级): earned on delivery × the level's multiplier, spent at checkout
through the one price calculation (rate and maximum share), returned when the order is cancelled, clawed back
by refunds (a stated debt when already spent), expired at the end of next year; every movement in the ledger;
levels reached by what was paid, with a discount or a per-SKU member price."""

from __future__ import annotations

import asyncio
import datetime as dt

from sqlalchemy import select

from helpers import with_csrf
from ledger.support import unbalanced_postings
from members.support import sign_in
from quanyi.ledger.reports import trial_balance
from quanyi.loyalty import points as points_service
from quanyi.loyalty.models import PointsLot
from quanyi.orders.models import Order
from refund_helpers import ask_refund, cashier_pay


async def _buy(shop, member: dict, sku, quantity: int = 1, **extra) -> dict:
    response = await shop.client.post("/api/orders", headers={"X-Member-Token": member["token"]}, json={
        "sku_id": sku.id, "quantity": quantity, "contact": "member@example.com", **extra})
    assert response.status_code == 201, response.text
    return response.json()


async def _loyalty(shop, member: dict) -> dict:
    response = await shop.client.get("/api/members/me/loyalty", headers={"X-Member-Token": member["token"]})
    assert response.status_code == 200, response.text
    return response.json()


async def _books(shop) -> dict[str, int]:
    assert await unbalanced_postings(shop.ctx) == []
    async with shop.ctx.db.read_session() as session:
        trial = await trial_balance(session=session)
        assert trial.balanced
        assert await points_service.liability_drift(session=session) == 0  # ledger == balances × value
    return {a.code: a.balance_cents for a in trial.accounts}


async def _program(shop, **changes) -> None:
    response = await shop.client.put("/api/admin/loyalty/program", headers=shop.admin, json=changes)
    assert response.status_code == 200, response.text


async def test_points_earned_on_delivery_with_the_level_multiplier_and_level_upgrade(shop, app, stocked_sku):
    member = await sign_in(shop)
    await _program(shop, points_per_yuan=10)
    for code, name, threshold, multiplier in (("SILVER", "白银", 3000, 15000), ("GOLD", "黄金", 100_000, 20000)):
        response = await shop.client.put(f"/api/admin/loyalty/levels/{code}", headers=shop.admin, json={
            "name": name, "min_paid_cents": threshold, "points_multiplier_bps": multiplier})
        assert response.status_code == 200, response.text
    first = await _buy(shop, member, stocked_sku, quantity=2)  # 39.60 paid: 396 points, then SILVER
    await cashier_pay(shop, first)
    mine = await _loyalty(shop, member)
    assert mine["points_balance"] == 396 and mine["level"]["code"] == "SILVER"
    assert mine["paid_total_cents"] == 3960 and mine["next_level"]["code"] == "GOLD"
    assert mine["to_next_cents"] == 100_000 - 3960
    second = await _buy(shop, member, stocked_sku)  # 19.80 × 10 × 1.5 = 297
    await cashier_pay(shop, second)
    assert (await _loyalty(shop, member))["points_balance"] == 396 + 297
    books = await _books(shop)
    assert books["points_liability"] == -(396 + 297) and books["points_cost"] == 396 + 297
    # Guests earn nothing, and read nothing of the loyalty tables.
    guest = await shop.create_order(stocked_sku.id)
    await cashier_pay(shop, guest)
    assert (await _loyalty(shop, member))["points_balance"] == 693


async def test_points_pay_part_of_an_order_within_the_share_and_come_back_when_it_is_cancelled(shop, app,
                                                                                              stocked_sku):
    member = await sign_in(shop)
    await _program(shop, points_per_yuan=100, max_points_share_bps=5000)  # 1 point = 1 cent
    earner = await _buy(shop, member, stocked_sku, quantity=2)
    await cashier_pay(shop, earner)
    assert (await _loyalty(shop, member))["points_balance"] == 3960
    quote = await shop.client.post("/api/pricing/quote", headers={"X-Member-Token": member["token"]},
                                   json={"sku_id": stocked_sku.id, "points": 5000})
    assert quote.json()["points_used"] == 990 and quote.json()["points_discount_cents"] == 990  # half of 19.80
    assert "points_max_share" in quote.json()["notes"]
    spender = await _buy(shop, member, stocked_sku, points=5000)
    assert (spender["points_used"], spender["total_cents"]) == (990, 990)
    assert (await _loyalty(shop, member))["points_balance"] == 3960 - 990
    books = await _books(shop)
    assert books["points_liability"] == -(3960 - 990)
    cancelled = await shop.client.post(f"/api/orders/{spender['order_no']}/cancel", headers=shop.auth(spender))
    assert cancelled.status_code == 200, cancelled.text
    assert (await _loyalty(shop, member))["points_balance"] == 3960
    await _books(shop)
    # Guests cannot spend points: the quote says why and takes nothing.
    guest = await shop.client.post("/api/pricing/quote", json={"sku_id": stocked_sku.id, "points": 100})
    assert guest.json()["points_used"] == 0


async def test_refund_claws_points_back_and_a_spent_balance_becomes_a_stated_debt(shop, app, stocked_sku):
    member = await sign_in(shop)
    await _program(shop, points_per_yuan=100, max_points_share_bps=10_000)
    earner = await _buy(shop, member, stocked_sku, quantity=2)  # 3960 points
    await cashier_pay(shop, earner)
    refund = await ask_refund(shop, earner, quantity=1)
    assert refund.json()["status"] == "succeeded"
    assert (await _loyalty(shop, member))["points_balance"] == 1980  # half refunded, half taken back
    spender = await _buy(shop, member, stocked_sku, points=1979)  # spend them (the payable keeps its 1 cent)
    await cashier_pay(shop, spender)
    assert (await _loyalty(shop, member))["points_balance"] == 1 + 1  # 1 left + 1 earned on 0.01 paid
    await ask_refund(shop, earner, quantity=1)  # the rest of the first order: 1980 points to take back
    mine = await _loyalty(shop, member)
    assert mine["points_balance"] == 2 - 1980
    assert mine["movements"][0]["kind"] == "clawed_back" and "owed" in mine["movements"][0]["note"]
    books = await _books(shop)
    assert books["points_liability"] == 1978  # a debt: the members owe points (a negative liability)
    # Nothing can be spent while in debt; the next earnings pay it back first.
    assert (await shop.client.post("/api/pricing/quote", headers={"X-Member-Token": member["token"]},
                                   json={"sku_id": stocked_sku.id, "points": 10})).json()["points_used"] == 0
    payer = await _buy(shop, member, stocked_sku)
    await cashier_pay(shop, payer)
    assert (await _loyalty(shop, member))["points_balance"] == 2 - 1980 + 1980
    await _books(shop)


async def test_points_expire_at_the_end_of_next_year_and_the_ledger_follows(shop, app, stocked_sku):
    member = await sign_in(shop)
    order = await _buy(shop, member, stocked_sku)
    await cashier_pay(shop, order)
    async with shop.ctx.db.read_session() as session:
        lot = await session.scalar(select(PointsLot))
        delivered = await session.scalar(select(Order.delivered_at))
    local = delivered.astimezone(dt.timezone(dt.timedelta(hours=8)))
    assert lot.expires_at == dt.datetime(local.year + 2, 1, 1, tzinfo=dt.timezone(dt.timedelta(hours=8)))
    assert lot.points == 19  # 1 point per ¥1 paid, rounded down
    async with shop.ctx.db.transaction() as session:
        assert await points_service.expire_all_due(session=session, now=lot.expires_at - dt.timedelta(seconds=1)) == 0
        assert await points_service.expire_all_due(session=session, now=lot.expires_at) == 19
    assert (await _loyalty(shop, member))["points_balance"] == 0
    assert (await _books(shop)).get("points_liability", 0) == 0


async def test_level_discount_and_per_sku_member_price_apply_through_the_price_calculation(shop, app, stocked_sku):
    member = await sign_in(shop)
    await shop.client.put("/api/admin/loyalty/levels/VIP", headers=shop.admin,
                          json={"name": "VIP", "min_paid_cents": 0, "discount_bps": 1000})
    first = await _buy(shop, member, stocked_sku)  # no level yet at the first checkout
    assert first["total_cents"] == 1980
    await cashier_pay(shop, first)  # delivered: level VIP (threshold 0)
    second = await _buy(shop, member, stocked_sku)
    assert (second["member_discount_cents"], second["total_cents"]) == (198, 1782)
    price = await shop.client.put(f"/api/admin/loyalty/levels/VIP/prices/{stocked_sku.id}", headers=shop.admin,
                                  json={"price_cents": 1500})
    assert price.status_code == 200
    third = await _buy(shop, member, stocked_sku)
    assert third["total_cents"] == 1500
    too_high = await shop.client.put(f"/api/admin/loyalty/levels/VIP/prices/{stocked_sku.id}", headers=shop.admin,
                                     json={"price_cents": 99_999})
    assert too_high.status_code == 422
    guest = await shop.create_order(stocked_sku.id)
    assert guest["total_cents"] == 1980


async def test_loyalty_api_bad_input_is_4xx_and_needs_the_right_caller(shop, app):
    assert (await shop.client.get("/api/members/me/loyalty")).status_code == 401
    assert (await shop.client.get("/api/admin/loyalty/levels")).status_code == 401
    for body in ({"name": "X", "min_paid_cents": -1}, {"name": "", "min_paid_cents": 0},
                 {"name": "X", "min_paid_cents": 0, "discount_bps": 10_000}):
        assert (await shop.client.put("/api/admin/loyalty/levels/X", headers=shop.admin,
                                      json=body)).status_code == 422
    await shop.client.put("/api/admin/loyalty/levels/A", headers=shop.admin, json={"name": "A", "min_paid_cents": 5})
    clash = await shop.client.put("/api/admin/loyalty/levels/B", headers=shop.admin,
                                  json={"name": "B", "min_paid_cents": 5})
    assert clash.status_code == 409
    assert (await shop.client.put("/api/admin/loyalty/program", headers=shop.admin,
                                  json={"point_value_cents": 0})).status_code == 422
    assert (await shop.client.get("/api/admin/loyalty/members/999999", headers=shop.admin)).status_code == 404


async def test_the_storefront_form_offers_points_to_a_member_and_pays_part_with_them(shop, client, stocked_sku):
    member = await sign_in(shop, client=client)  # the client keeps the member cookie, like a browser
    await _program(shop, points_per_yuan=100)
    earner = await _buy(shop, member, stocked_sku)
    await cashier_pay(shop, earner)
    page = await client.get("/p/product-1", headers={"Accept": "text/html"})
    assert 'data-testid="points-field"' in page.text and "1980" in page.text
    form = await with_csrf(client, {"sku_id": str(stocked_sku.id), "quantity": "1", "contact": "member@example.com",
                                    "points": "500"}, page="/p/product-1")
    placed = await client.post("/p/product-1/checkout", data=form)
    assert placed.status_code == 303, placed.text
    order_no = placed.headers["location"].rsplit("/", 1)[1]
    assert await shop.scalar(select(Order.points_used).where(Order.order_no == order_no)) == 500
    assert (await _loyalty(shop, member))["points_balance"] == 1480
    bad = await with_csrf(client, {"sku_id": str(stocked_sku.id), "quantity": "1", "contact": "member@example.com",
                                   "points": "lots"}, page="/p/product-1")
    refused = await client.post("/p/product-1/checkout", data=bad)
    assert refused.status_code == 422 and "请输入要使用的积分数" in refused.text
    client.cookies.clear()  # a guest: no points field
    guest = await client.get("/p/product-1", headers={"Accept": "text/html"})
    assert 'data-testid="points-field"' not in guest.text


async def test_two_checkouts_at_once_cannot_spend_the_same_points(shop, app, stocked_sku):
    member = await sign_in(shop)
    await _program(shop, points_per_yuan=100, max_points_share_bps=10_000)
    earner = await _buy(shop, member, stocked_sku)
    await cashier_pay(shop, earner)  # 1980 points
    headers = {"X-Member-Token": member["token"]}
    body = {"sku_id": stocked_sku.id, "quantity": 1, "contact": "member@example.com", "points": 1979}
    first, second = await asyncio.gather(shop.client.post("/api/orders", json=body, headers=headers),
                                         shop.client.post("/api/orders", json=body, headers=headers))
    # Either the second checkout was priced after the first took the points (it gets what is left), or both were
    # priced at once and the second found them gone when it tried to take them (409, nothing placed).
    placed = [r.json() for r in (first, second) if r.status_code == 201]
    refused = [r for r in (first, second) if r.status_code != 201]
    assert all(r.status_code == 409 and r.json()["code"] == "points_insufficient" for r in refused)
    assert sorted(o["points_used"] for o in placed)[-1] == 1979
    balance = (await _loyalty(shop, member))["points_balance"]
    assert balance >= 0 and balance + sum(o["points_used"] for o in placed) == 1980  # never spent twice
    assert await shop.count(Order) == 1 + len(placed)
    await _books(shop)


async def test_the_background_expiry_expires_due_points_once(shop, app, stocked_sku):
    from quanyi.tasks import expire_points_once

    member = await sign_in(shop)
    order = await _buy(shop, member, stocked_sku)
    await cashier_pay(shop, order)
    assert await expire_points_once(shop.ctx) == 0  # not due yet
    async with shop.ctx.db.transaction() as session:
        lot = await session.scalar(select(PointsLot))
        lot.expires_at = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    assert await expire_points_once(shop.ctx) == 19
    assert await expire_points_once(shop.ctx) == 0  # a second sweep finds nothing
    assert (await _loyalty(shop, member))["points_balance"] == 0
    await _books(shop)
