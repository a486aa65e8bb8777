"""A scripted campaign (营销活动): members and guests buy with coupons, points and promoters' links at two levels;
some orders are cancelled, some refunded in part or in full, a withdrawal is paid. Afterwards the books balance,
every order's accounts equal the money that moved, the points liability equals the members' balances and each
promoter's commission equals its rate of what stood of its orders.

`QUANYI_CAMPAIGN_ORDERS` sets the size (default 40 here; `QUANYI_CAMPAIGN_ORDERS=1000` is the issue's campaign
with 50 refunds: minutes, run it by hand or in the nightly job).
"""

from __future__ import annotations

import os
import random

from sqlalchemy import select

from coupons.support import make_coupon
from ledger.support import expected_order_sums, group_revenue, order_sums, unbalanced_postings
from members.support import sign_in
from promoters.support import make_promoter, set_program
from quanyi.ledger.reports import set_share_rule, trial_balance
from quanyi.loyalty import points as points_service
from quanyi.loyalty.models import MemberLoyalty
from refund_helpers import ask_refund, cashier_pay

ORDERS = int(os.environ.get("QUANYI_CAMPAIGN_ORDERS", "40"))
REFUNDS = max(2, ORDERS // 20)


async def test_campaign_with_coupons_points_commission_and_refunds_keeps_the_books(shop, app):
    rng = random.Random(20261204)
    sku = await shop.make_sku(code="CAMPAIGN-1", price_cents=5000)
    await shop.stock(sku, ORDERS * 2 + 10)
    await make_coupon(shop, code="CAMP10", kind="percent_off", percent_off_bps=1000, total_quantity=ORDERS,
                      amount_off_cents=None, stackable=False)
    async with shop.ctx.db.transaction() as session:
        await set_share_rule(session=session, sku_id=None, merchant_code="", merchant_bps=0, distributor_bps=800,
                             distributor_l2_bps=200, actor="test")
    await set_program(shop, levels=2, hold_days=0)
    await make_promoter(shop, "LEAD")
    await make_promoter(shop, "AGENT", parent="LEAD")
    await shop.client.put("/api/admin/loyalty/program", headers=shop.admin, json={"points_per_yuan": 10})
    await shop.client.put("/api/admin/loyalty/levels/SILVER", headers=shop.admin,
                          json={"name": "白银", "min_paid_cents": 10_000, "discount_bps": 500,
                                "points_multiplier_bps": 15_000})
    members = [await sign_in(shop, f"fan{i}@example.com") for i in range(4)]

    placed: list[dict] = []
    for n in range(ORDERS):
        member = rng.choice([*members, None])
        body = {"sku_id": sku.id, "quantity": rng.choice([1, 1, 2]),
                "contact": f"fan{n}@example.com" if member is None else "member@example.com"}
        if rng.random() < 0.4:
            body["coupon_codes"] = ["CAMP10"]
        if member is not None and rng.random() < 0.5:
            body["points"] = rng.randint(1, 3000)
        if rng.random() < 0.6:
            body["distributor_code"] = "AGENT" if rng.random() < 0.7 else "LEAD"
        headers = {"X-Member-Token": member["token"]} if member else {}
        response = await shop.client.post("/api/orders", json=body, headers=headers)
        assert response.status_code == 201, response.text
        order = response.json()
        if rng.random() < 0.1:
            assert (await shop.client.post(f"/api/orders/{order['order_no']}/cancel",
                                           headers=shop.auth(order))).status_code == 200
            continue
        await cashier_pay(shop, order)
        placed.append(order)

    for order in rng.sample(placed, min(REFUNDS, len(placed))):
        kind = rng.choice(["one", "all"])
        response = await ask_refund(shop, order, **({"quantity": 1} if kind == "one" else {}))
        assert response.status_code == 201, response.text

    balance = (await shop.client.get("/api/admin/promoters/AGENT", headers=shop.admin)).json()["balances"][0]
    if balance["available_cents"] >= 100:
        made = await shop.client.post("/api/admin/promoters/AGENT/withdrawals", headers=shop.admin,
                                      json={"amount_cents": 100, "payout_account": "alipay agent"})
        no = made.json()["withdrawal_no"]
        await shop.client.post(f"/api/admin/promoter-withdrawals/{no}/approve", headers=shop.admin,
                               json={"reason": "ok"})
        await shop.client.post(f"/api/admin/promoter-withdrawals/{no}/pay", headers=shop.admin,
                               json={"payout_reference": "T-1"})

    assert await unbalanced_postings(shop.ctx) == []
    async with shop.ctx.db.read_session() as session:
        trial = await trial_balance(session=session)
        assert trial.balanced, trial.totals
        assert await points_service.liability_drift(session=session) == 0
        balances = (await session.scalars(select(MemberLoyalty.points_balance))).all()
    assert any(b > 0 for b in balances)
    for order in placed:  # the money of each order (its points are checked above, against the balances)
        money = {k: v for k, v in (await order_sums(shop.ctx, order["order_no"])).items()
                 if not k.startswith("points_")}
        assert group_revenue(money) == await expected_order_sums(shop.ctx, order["order_no"])
    accounts = {a.code: a.balance_cents for a in trial.accounts}
    assert accounts.get("distributor_commission:AGENT", 0) < 0 and accounts.get("distributor_commission:LEAD", 0) < 0
    assert accounts.get("points_liability", 0) == -sum(balances)
