"""Benefit campaigns (福利活动): funded from the enterprise's balance at activation, employees claim once on the
claim page within their budget (codes shown, audited), the unclaimed rest returns to the balance at the end,
exactly once (also money a refund brings back later); a report per campaign; one claim per employee under a
burst of concurrent claims."""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import io

import pytest
from sqlalchemy import func, select

from enterprises.campaign_support import choose, funded_campaign, phone, shown_codes, sign_in
from enterprises.support import balance_of, books_balanced
from helpers import Shop, make_settings
from quanyi.enterprises import campaign_claims, campaigns
from quanyi.enterprises.models import Campaign, CampaignClaim, CampaignEmployee
from quanyi.inventory.models import KeyReveal
from quanyi.ledger.models import CustomerCharge
from quanyi.orders.models import Order


@pytest.fixture
def settings(database_url: str):  # type: ignore[no-untyped-def]
    return make_settings(database_url, refund_revealed_keys=True)


async def _end(shop: Shop, no: str) -> dict:  # type: ignore[type-arg]
    response = await shop.client.post(f"/api/admin/enterprises/ACME/campaigns/{no}/end", headers=shop.admin)
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


async def test_employees_claim_within_budget_and_the_rest_returns_once(shop: Shop):
    funded = await funded_campaign(shop)
    assert funded.campaign["status"] == "active" and funded.campaign["funded_cents"] == 30_000
    assert await balance_of(shop, "ACME") == 70_000
    assert await balance_of(shop, funded.no, kind="campaign") == 30_000

    async with phone(shop) as zhang, phone(shop) as li:
        page = await zhang.get(f"/claim/{funded.no}")
        assert "2026 新年福利" in page.text and "新年快乐" in page.text and page.headers["cache-control"] == "no-store"
        assert (await sign_in(zhang, funded.no, funded.codes["E001"].lower().replace("-", " "))).status_code == 303
        over = await choose(zhang, funded.no, "GIFT-50", 3)  # 15,000 > 10,000
        assert over.status_code == 422 and "额度" in over.text
        claimed = await choose(zhang, funded.no, "GIFT-50", 2)
        assert claimed.status_code == 200, claimed.text
        zhang_codes = shown_codes(claimed.text)
        assert len(zhang_codes) == 2
        again = await choose(zhang, funded.no, "GIFT-100", 1)  # one claim per employee: the first stands
        assert again.status_code == 200 and "GIFT" not in shown_codes(again.text)
        assert await shop.count(CampaignClaim) == 1

        assert (await sign_in(li, funded.no, funded.codes["E002"])).status_code == 303
        english = await li.get(f"/claim/{funded.no}?lang=en")
        assert "Choose your benefit" in english.text and "New Year 2026 benefits" in english.text
        assert (await choose(li, funded.no, "GIFT-100")).status_code == 200
        revisit = await li.get(f"/claim/{funded.no}")
        assert 'data-testid="claim-reveal"' in revisit.text and shown_codes(revisit.text) == []

    assert await balance_of(shop, funded.no, kind="campaign") == 10_000
    assert await shop.count(KeyReveal, KeyReveal.channel == "claim") == 3
    shown = (await shop.client.get(f"/api/admin/enterprises/ACME/campaigns/{funded.no}", headers=shop.admin)).json()
    assert (shown["employees"], shown["claimed"], shown["claimed_cents"]) == (3, 2, 20_000)
    assert shown["claims_by_option"] == {"GIFT-50": 1, "GIFT-100": 1} and shown["claims_by_channel"] == {"code": 2}

    ended = await _end(shop, funded.no)
    assert (ended["status"], ended["returned_cents"], ended["balance_cents"]) == ("ended", 10_000, 0)
    assert await balance_of(shop, "ACME") == 80_000
    again = await _end(shop, funded.no)  # ending twice returns nothing more
    assert again["returned_cents"] == 10_000 and await balance_of(shop, "ACME") == 80_000
    assert await campaigns.end_due_campaigns(db=shop.ctx.db) == 0

    report = await shop.client.get(f"/api/admin/enterprises/ACME/campaigns/{funded.no}/report?format=csv",
                                   headers=shop.admin)
    rows = list(csv.reader(io.StringIO(report.content.decode("utf-8-sig"))))
    assert [(r[0], r[2], r[3]) for r in rows[1:]] == [("E001", "yes", "GIFT-50"), ("E002", "yes", "GIFT-100"),
                                                      ("E003", "no", "")]
    assert not any(code in report.text for code in zhang_codes)
    await books_balanced(shop)


async def test_one_claim_per_employee_under_a_burst_of_concurrent_claims(shop: Shop):
    funded = await funded_campaign(shop)
    async with shop.ctx.db.read_session() as session:
        ids = dict((await session.execute(select(CampaignEmployee.employee_no, CampaignEmployee.id))).all())
    results = await asyncio.gather(*(
        campaign_claims.claim(db=shop.ctx.db, campaign_no=funded.no, employee_id=ids["E001" if i % 2 else "E002"],
                              sku_code="GIFT-50" if i % 3 else "GIFT-100", quantity=1, via="code")
        for i in range(16)), return_exceptions=True)
    assert not [r for r in results if isinstance(r, BaseException)], results
    assert sum(r.created for r in results) == 2  # type: ignore[union-attr]
    assert await shop.count(CampaignClaim) == 2 and await shop.count(Order) == 2
    charged = await shop.scalar(select(func.sum(CustomerCharge.amount_cents)))
    claimed = await shop.scalar(select(func.sum(CampaignClaim.amount_cents)))
    assert charged == claimed
    assert await balance_of(shop, funded.no, kind="campaign") == 30_000 - claimed
    await _end(shop, funded.no)
    assert await balance_of(shop, "ACME") == 100_000 - claimed
    await books_balanced(shop)


async def test_refusals_change_nothing(shop: Shop):
    funded = await funded_campaign(shop, activate=False)
    async with phone(shop) as browser:
        assert (await browser.get(f"/claim/{funded.no}")).status_code == 404  # a draft is not there yet
    short = await shop.client.post("/api/admin/enterprises/ACME/campaigns", headers=shop.admin, json={
        "name": "x", "sku_codes": ["NOPE"], "starts_at": "2026-01-01T00:00:00Z", "ends_at": "2030-01-01T00:00:00Z"})
    assert short.status_code == 404
    backwards = await shop.client.post("/api/admin/enterprises/ACME/campaigns", headers=shop.admin, json={
        "name": "x", "sku_codes": ["GIFT-50"], "starts_at": "2030-01-01T00:00:00Z", "ends_at": "2029-01-01T00:00:00Z"})
    assert backwards.status_code == 422
    twice = await shop.client.post(f"/api/admin/enterprises/ACME/campaigns/{funded.no}/employees",
                                   headers=shop.admin, json={"employees": [{"employee_no": "E001", "name": "x"}]})
    assert twice.status_code == 409
    bad_phone = await shop.client.post(f"/api/admin/enterprises/ACME/campaigns/{funded.no}/employees",
                                       headers=shop.admin, json={"employees": [
                                           {"employee_no": "E009", "name": "x", "phone": "12"}]})
    assert bad_phone.status_code == 422
    # The balance (100,000) cannot fund 3 x 50,000: activation is refused and nothing moves.
    async with shop.ctx.db.transaction() as session:
        from sqlalchemy import update
        await session.execute(update(Campaign).values(budget_per_employee_cents=50_000))
    poor = await shop.client.post(f"/api/admin/enterprises/ACME/campaigns/{funded.no}/activate", headers=shop.admin)
    assert poor.status_code == 402 and poor.json()["code"] == "insufficient_balance"
    assert await balance_of(shop, "ACME") == 100_000
    assert await shop.scalar(select(Campaign.status)) == "draft"


async def test_wrong_codes_are_refused_and_guessing_is_limited(shop: Shop):
    funded = await funded_campaign(shop)
    async with phone(shop) as guesser:
        wrong = await sign_in(guesser, funded.no, "AAAA-BBBB-CCCC")
        assert wrong.status_code == 422 and "领取码不正确" in wrong.text
        for _ in range(19):
            await sign_in(guesser, funded.no, "AAAA-BBBB-CCCC")
        limited = await sign_in(guesser, funded.no, funded.codes["E001"])  # even the right one, now
        assert limited.status_code == 429
        forged = await guesser.post(f"/claim/{funded.no}", data={"sku": "GIFT-50", "quantity": "1"})
        assert forged.status_code == 403  # no CSRF token
    async with phone(shop) as stranger:
        stranger.cookies.set("qy_claim", "e30.AAAA", path="/claim/")
        page = await stranger.get(f"/claim/{funded.no}")
        assert 'data-testid="code-form"' in page.text  # a forged session is no session
    assert await shop.count(CampaignClaim) == 0


async def test_claims_close_at_the_end_and_a_late_refund_returns_to_the_enterprise(shop: Shop):
    funded = await funded_campaign(shop)
    async with phone(shop) as zhang, phone(shop) as li:
        await sign_in(zhang, funded.no, funded.codes["E001"])
        await sign_in(li, funded.no, funded.codes["E002"])
        assert (await choose(zhang, funded.no, "GIFT-100")).status_code == 200
        async with shop.ctx.db.transaction() as session:
            from sqlalchemy import update
            await session.execute(update(Campaign).values(ends_at=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)))
        too_late = await choose(li, funded.no, "GIFT-100")
        assert too_late.status_code == 409 and 'data-testid="claim-closed"' in too_late.text
    assert await campaigns.end_due_campaigns(db=shop.ctx.db) == 1
    assert await balance_of(shop, "ACME") == 90_000  # 100,000 - the one claim

    order_no = await shop.scalar(select(Order.order_no))
    refund = await shop.client.post(f"/api/admin/orders/{order_no}/refunds", headers=shop.admin,
                                    json={"quantity": 1, "reason": "code did not work"})
    assert refund.status_code == 201 and refund.json()["status"] == "succeeded", refund.text
    assert await balance_of(shop, funded.no, kind="campaign") == 10_000  # back into the ended campaign ...
    assert await campaigns.end_due_campaigns(db=shop.ctx.db) == 1  # ... and swept to the enterprise, once
    assert await campaigns.end_due_campaigns(db=shop.ctx.db) == 0
    assert await balance_of(shop, "ACME") == 100_000
    await books_balanced(shop)
