"""Distribution commission (分销佣金) in the ledger: accrued on delivery at the SKU's rates, two levels, capped by
the margin rule, paid by whoever sold (platform or merchant), reversed by refunds; attribution by code and by
the link's cookie; no self-referral."""

from __future__ import annotations

from sqlalchemy import select

from ledger.support import expected_order_sums, group_revenue, order_sums, unbalanced_postings
from ledger.test_order_postings import _stock_at_cost
from promoters.support import make_promoter, set_program
from quanyi.ledger.reports import set_share_rule, trial_balance
from quanyi.orders.models import Order
from refund_helpers import ask_refund, cashier_pay


async def _rates(shop, *, level1: int, level2: int = 0, sku_id: int | None = None) -> None:
    async with shop.ctx.db.transaction() as session:
        await set_share_rule(session=session, sku_id=sku_id, merchant_code="", merchant_bps=0,
                             distributor_bps=level1, distributor_l2_bps=level2, actor="test")


async def _books(shop, order_no: str) -> dict[str, int]:
    assert await unbalanced_postings(shop.ctx) == []
    async with shop.ctx.db.read_session() as session:
        assert (await trial_balance(session=session)).balanced
    sums = await order_sums(shop.ctx, order_no)
    assert group_revenue(sums) == await expected_order_sums(shop.ctx, order_no)
    return sums


async def _commission(shop, code: str) -> int:
    body = (await shop.client.get(f"/api/admin/promoters/{code}", headers=shop.admin)).json()
    return sum(b["balance_cents"] for b in body["balances"])


async def test_two_levels_earn_their_sku_rates_on_delivery_and_refund_takes_both_back(shop, app, sku):
    await _stock_at_cost(shop, sku, 3, unit_cost=200)
    await set_program(shop, levels=2)
    await make_promoter(shop, "BOSS")
    await make_promoter(shop, "KID", parent="BOSS")
    await _rates(shop, level1=300, level2=100)  # default rule: not this SKU's
    await _rates(shop, level1=1000, level2=500, sku_id=sku.id)  # the SKU's own rates win
    order = await shop.create_order(sku.id, quantity=2, distributor_code="kid")  # codes are case-insensitive
    assert order["order_no"]
    await cashier_pay(shop, order)
    # 2 x 19.80 = 39.60: level 1 10% = 3.96, level 2 5% = 1.98.
    assert await _commission(shop, "KID") == 396 and await _commission(shop, "BOSS") == 198
    sums = await _books(shop, order["order_no"])
    assert sums["platform_revenue"] == -(3960 - 396 - 198)
    refund = await ask_refund(shop, order, quantity=1)
    assert refund.json()["status"] == "succeeded"
    assert await _commission(shop, "KID") == 198 and await _commission(shop, "BOSS") == 99
    await ask_refund(shop, order, quantity=1)
    assert await _commission(shop, "KID") == 0 and await _commission(shop, "BOSS") == 0
    assert await _books(shop, order["order_no"]) == {"cost_of_goods": 400, "card_key_stock": -400}


async def test_one_level_programme_pays_only_the_referrer(shop, app, sku):
    await _stock_at_cost(shop, sku, 1, unit_cost=None)
    await make_promoter(shop, "BOSS")
    await make_promoter(shop, "KID", parent="BOSS")
    await _rates(shop, level1=1000, level2=500)
    order = await shop.create_order(sku.id, distributor_code="KID")
    await cashier_pay(shop, order)
    assert await _commission(shop, "KID") == 198 and await _commission(shop, "BOSS") == 0


async def test_commission_never_exceeds_the_margin_rule(shop, app, sku):
    # 19.80 paid, keys cost 17.80: margin 2.00; the rule allows half of it, 1.00, for both levels together.
    await _stock_at_cost(shop, sku, 1, unit_cost=1780)
    await set_program(shop, levels=2, max_margin_share_bps=5000)
    await make_promoter(shop, "BOSS")
    await make_promoter(shop, "KID", parent="BOSS")
    await _rates(shop, level1=2000, level2=1000)  # would be 3.96 + 1.98
    order = await shop.create_order(sku.id, distributor_code="KID")
    await cashier_pay(shop, order)
    kid, boss = await _commission(shop, "KID"), await _commission(shop, "BOSS")
    assert kid + boss == 100 and boss == 33 and kid == 67  # scaled down together, level 1 takes the rounding
    await _books(shop, order["order_no"])


async def test_sold_at_a_loss_pays_no_commission(shop, app, sku):
    await _stock_at_cost(shop, sku, 1, unit_cost=2500)
    await make_promoter(shop, "KID")
    await _rates(shop, level1=1000)
    order = await shop.create_order(sku.id, distributor_code="KID")
    await cashier_pay(shop, order)
    assert await _commission(shop, "KID") == 0
    assert (await _books(shop, order["order_no"]))["platform_revenue"] == -1980


async def test_unknown_or_pending_code_and_self_referral_are_refused_with_422(shop, app, stocked_sku):
    await make_promoter(shop, "SELF", contact="buyer@example.com")
    for code, expected in (("NOPE", "unknown_promoter_code"), ("SELF", "self_referral")):
        response = await shop.client.post("/api/orders", json={"sku_id": stocked_sku.id, "quantity": 1,
                                                                "contact": "Buyer@Example.com",
                                                                "distributor_code": code})
        assert response.status_code == 422, response.text
        assert response.json()["code"] == expected
    assert await shop.available(stocked_sku.id) == 10  # nothing was reserved


async def test_a_suspended_promoter_earns_nothing_on_orders_delivered_after(shop, app, sku):
    await _stock_at_cost(shop, sku, 1, unit_cost=None)
    await make_promoter(shop, "KID")
    await _rates(shop, level1=1000)
    order = await shop.create_order(sku.id, distributor_code="KID")
    response = await shop.client.post("/api/admin/promoters/KID/suspend", headers=shop.admin,
                                      json={"reason": "fake traffic"})
    assert response.status_code == 200 and response.json()["status"] == "suspended"
    await cashier_pay(shop, order)
    assert await _commission(shop, "KID") == 0
    await _books(shop, order["order_no"])


async def test_the_link_sets_a_signed_cookie_that_attributes_the_checkout(shop, app, sku):
    await _stock_at_cost(shop, sku, 2, unit_cost=None)
    await make_promoter(shop, "LINK1")
    await _rates(shop, level1=1000)
    followed = await shop.client.get("/r/link1?next=//evil.example/x")
    assert followed.status_code == 303 and followed.headers["location"] == "/"  # never an open redirect
    cookie = followed.cookies.get("qy_ref")
    assert cookie and cookie.startswith("LINK1.")
    order = await shop.create_order(sku.id)  # the client's cookie jar carries qy_ref
    await cashier_pay(shop, order)
    assert await _commission(shop, "LINK1") == 198
    # A forged cookie (another code, same signature) attributes nothing.
    shop.client.cookies.set("qy_ref", cookie.replace("LINK1", "OTHER"))
    other = await shop.create_order(sku.id)
    await cashier_pay(shop, other)
    assert await shop.scalar(select(Order.distributor_code).where(Order.order_no == other["order_no"])) is None
    assert await shop.scalar(select(Order.distributor_code).where(Order.order_no == order["order_no"])) == "LINK1"
    assert await _commission(shop, "LINK1") == 198


async def test_qr_code_of_the_link_is_an_svg_and_unknown_codes_are_404(shop, app):
    await make_promoter(shop, "QR1")
    response = await shop.client.get("/r/QR1/qr.svg")
    assert response.status_code == 200 and response.headers["content-type"].startswith("image/svg+xml")
    assert response.text.startswith('<svg xmlns="http://www.w3.org/2000/svg"')  # a standalone image
    assert (await shop.client.get("/r/NOPE/qr.svg")).status_code == 404
