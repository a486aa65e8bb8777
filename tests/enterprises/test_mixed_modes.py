"""Issue 14's check: the ledger balances after a scripted mixed run of all modes on one platform — a buyer (B2C)
and a merchant's goods (B2B2C) bought through the sandbox gateway, a reseller's open API orders, an enterprise's
bulk purchase (at a tier price) and benefit campaign, refunds of each kind, the campaign's end — every posting
sums to zero, every prepaid balance agrees with its ledger account, and each party's money is exactly what the
script says."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from enterprises.support import add_enterprise, balance_of, books_balanced, set_tiers
from helpers import Shop, make_settings
from merchants.support import admit, buy, refund, shared_category, stock_up
from quanyi.enterprises import campaign_claims, purchases
from quanyi.enterprises.models import CampaignEmployee
from quanyi.ledger import service as ledger_service
from quanyi.orders.models import Order
from resellers.support import add_reseller
from resellers.support import balance_of as reseller_balance


@pytest.fixture
def settings(database_url: str):  # type: ignore[no-untyped-def]
    return make_settings(database_url, refund_revealed_keys=True)


async def _refund(shop: Shop, order_no: str, **body) -> dict:  # type: ignore[no-untyped-def,type-arg]
    response = await shop.client.post(f"/api/admin/orders/{order_no}/refunds", headers=shop.admin,
                                      json={"reason": "did not work", **body})
    assert response.status_code == 201 and response.json()["status"] == "succeeded", response.text
    return response.json()  # type: ignore[no-any-return]


async def test_the_books_balance_after_a_mixed_run_of_every_mode(shop: Shop):
    # The platform's own goods, and a merchant's (commission 10%).
    gift = await shop.make_sku(code="GIFT-50", price_cents=5_000, max_quantity=10)
    await shop.stock(gift, 30)
    merchant = await admit(shop, "m-one", commission_bps=1000)
    await stock_up(shop, merchant, await shared_category(shop), price_cents=1_000, keys=30)

    # B2C and B2B2C: buyers pay through the sandbox gateway; one refund each.
    b2c = await shop.create_order(gift.id, 2, contact="a@example.com")
    await shop.pay_via_cashier(b2c)
    await _refund(shop, b2c["order_no"], quantity=1)
    b2b2c = await buy(shop, merchant, 3, refundable=True)
    await refund(shop, merchant, b2b2c["order_no"], quantity=1)

    # The reseller open API: platform and merchant goods from a prepaid balance; one refund.
    reseller = await add_reseller(shop, top_up_cents=50_000)
    first = await reseller.client.buy_card_keys("R-1", "GIFT-50", quantity=2, max_unit_cost_cents=5_000)
    await reseller.client.buy_card_keys("R-2", merchant.sku_code, quantity=2, max_unit_cost_cents=1_000)
    await _refund(shop, first["order_no"], quantity=1)
    assert await reseller_balance(shop, "R001") == 50_000 - 10_000 - 2_000 + 5_000

    # B2B: an enterprise buys in bulk at its tier price, and runs a benefit campaign.
    await add_enterprise(shop, top_up_cents=200_000)
    await shop.client.post("/api/admin/enterprises/ACME/contacts", headers=shop.admin,
                           json={"name": "采购", "role": "purchasing", "email": "buy@acme.example"})
    await set_tiers(shop, "ACME", merchant.sku_code, (5, 900))
    bought = await shop.client.post("/api/admin/enterprises/ACME/purchases", headers=shop.admin,
                                    json={"sku_code": merchant.sku_code, "quantity": 12})
    assert bought.status_code == 202 and bought.json()["unit_price_cents"] == 900
    await purchases.run_due_purchases(db=shop.ctx.db, owner="mixed")
    bulk_order = await shop.scalar(select(Order.order_no).where(Order.quantity == 10, Order.unit_price_cents == 900))
    await _refund(shop, bulk_order, quantity=2)  # two codes of the bulk purchase did not work

    now = dt.datetime.now(dt.UTC)
    created = await shop.client.post("/api/admin/enterprises/ACME/campaigns", headers=shop.admin, json={
        "name": "福利", "sku_codes": ["GIFT-50", merchant.sku_code], "budget_per_employee_cents": 6_000,
        "starts_at": (now - dt.timedelta(minutes=1)).isoformat(), "ends_at": (now + dt.timedelta(days=1)).isoformat()})
    no = created.json()["campaign_no"]
    await shop.client.post(f"/api/admin/enterprises/ACME/campaigns/{no}/employees", headers=shop.admin, json={
        "employees": [{"employee_no": f"E{i}", "name": f"员工{i}"} for i in range(4)]})
    await shop.client.post(f"/api/admin/enterprises/ACME/campaigns/{no}/activate", headers=shop.admin)
    async with shop.ctx.db.read_session() as session:
        staff = (await session.scalars(select(CampaignEmployee.id).order_by(CampaignEmployee.id))).all()
    await campaign_claims.claim(db=shop.ctx.db, campaign_no=no, employee_id=staff[0], sku_code="GIFT-50", quantity=1,
                                via="code")
    claimed = await campaign_claims.claim(db=shop.ctx.db, campaign_no=no, employee_id=staff[1],
                                          sku_code=merchant.sku_code, quantity=6, via="code")
    async with shop.ctx.db.read_session() as session:
        claim_order = await session.get(Order, claimed.claim.order_id)
    await _refund(shop, claim_order.order_no, quantity=1)  # back into the campaign's account
    ended = await shop.client.post(f"/api/admin/enterprises/ACME/campaigns/{no}/end", headers=shop.admin)
    # 4 x 6,000 funded; claims 5,000 + 6 x 1,000 (the headcount's tier is below 5: list price); 1,000 refunded.
    assert ended.json()["returned_cents"] == 24_000 - 5_000 - 6_000 + 1_000
    assert await balance_of(shop, "ACME") == 200_000 - 12 * 900 + 2 * 900 - 5_000 - 6_000 + 1_000

    # The books: every posting balanced, every prepaid balance equal to its ledger account, and the trial
    # balance (through the API, as an operator sees it) at zero.
    await books_balanced(shop)
    trial = await shop.client.get("/api/admin/ledger/trial-balance", headers=shop.admin)
    assert trial.status_code == 200 and trial.json()["balanced"] is True, trial.text
    async with shop.ctx.db.read_session() as session:
        assert await ledger_service.customer_balance_drift(session=session) == {}
