"""Money of a suspended enterprise, on SQLite and PostgreSQL: while suspended no employee claim is paid from its
campaigns (a clear Chinese refusal, 409 enterprise_suspended, nothing taken; claims work again once it is active)
and its portal starts no online top-up (nor a payment of one left unpaid); but an online payment started before the
suspension and paid after it is still credited (the money arrived: it is never lost)."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from enterprises.campaign_support import choose, funded_campaign, phone, shown_codes, sign_in
from enterprises.portal_support import csrf_token, logged_in
from enterprises.support import balance_of, books_balanced
from helpers import Shop, signed_notification
from quanyi.enterprises import campaign_claims, service
from quanyi.enterprises.models import CampaignClaim, CampaignEmployee, TopUpRequest
from quanyi.orders.models import Order

PAGE = "/portal/top-ups"
NOTIFY = "/enterprise-top-ups/sandbox/notify"
SAID = "贵企业的账户已暂停，不能执行此操作"
CLAIM_SAID = "企业账户已暂停，福利暂时不能领取"


async def _status(shop: Shop, status: str) -> None:
    response = await shop.client.patch("/api/admin/enterprises/ACME", headers=shop.admin, json={"status": status})
    assert response.status_code == 200, response.text


async def test_claims_are_refused_while_the_enterprise_is_suspended_and_work_again_once_resumed(shop: Shop):
    funded = await funded_campaign(shop)
    campaign_balance = await balance_of(shop, funded.campaign["campaign_no"], "campaign")
    async with phone(shop) as early, phone(shop) as late:
        assert (await sign_in(early, funded.no, funded.codes["E002"])).status_code == 303
        assert (await choose(early, funded.no, "GIFT-50")).status_code == 200
        assert (await sign_in(late, funded.no, funded.codes["E001"])).status_code == 303
        await _status(shop, "suspended")
        paid = await balance_of(shop, funded.no, "campaign")
        assert paid == campaign_balance - 5_000

        seen = await late.get(f"/claim/{funded.no}")
        assert CLAIM_SAID in seen.text and 'data-testid="claim-form"' not in seen.text
        refused = await choose(late, funded.no, "GIFT-100")
        assert refused.status_code == 409 and CLAIM_SAID in refused.text, refused.text
        assert "account is suspended" not in refused.text
        assert (await shop.count(CampaignClaim), await shop.count(Order)) == (1, 1)
        assert await balance_of(shop, funded.no, "campaign") == paid
        employee_id = await shop.scalar(select(CampaignEmployee.id).where(CampaignEmployee.employee_no == "E001"))
        with pytest.raises(service.EnterpriseSuspended) as caught:  # every way in goes through this one service
            await campaign_claims.claim(db=shop.ctx.db, campaign_no=funded.no, employee_id=employee_id,
                                        sku_code="GIFT-100", quantity=1, via="code")
        assert caught.value.code == "enterprise_suspended"
        assert (await shop.count(CampaignClaim), await shop.count(Order)) == (1, 1)

        # Who claimed before still sees their claim and its codes, and a new sign-in still works.
        mine = await early.post(f"/claim/{funded.no}/reveal", data={"csrf_token": re.search(
            r'<meta name="csrf-token" content="([^"]+)"', (await early.get(f"/claim/{funded.no}")).text)[1]})
        assert mine.status_code == 200 and len(shown_codes(mine.text)) == 1

        await _status(shop, "active")
        again = await choose(late, funded.no, "GIFT-100")
        assert again.status_code == 200 and len(shown_codes(again.text)) == 1, again.text
        assert await balance_of(shop, funded.no, "campaign") == paid - 10_000
    await books_balanced(shop)


async def _online(client, amount: str = "2,000.00"):  # type: ignore[no-untyped-def]
    page = await client.get(PAGE)
    key = re.search(r'name="request_key" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
    return await client.post(PAGE, headers={"Origin": "http://test"}, data={
        "amount": amount, "payment_method": "online:sandbox", "payer_reference": "", "request_key": key,
        "csrf_token": csrf_token(page.text)})


async def test_no_online_top_up_starts_while_suspended_but_one_paid_before_is_credited(shop: Shop):
    client = await logged_in(shop, "ACME", "amy", "admin")
    started = await _online(client)
    assert started.status_code == 303 and "/sandbox/cashier" in started.headers["location"], started.text
    async with shop.ctx.db.read_session() as session:
        request = (await session.scalars(select(TopUpRequest))).one()
    await _status(shop, "suspended")

    page = await client.get(PAGE)
    assert '<option value="online:sandbox"' not in page.text and 'data-testid="top-up-pay"' not in page.text
    refused = await _online(client)
    assert refused.status_code == 409 and SAID in refused.text, refused.text
    assert await shop.count(TopUpRequest) == 1
    pay = await client.post(f"{PAGE}/{request.request_no}/pay", headers={"Origin": "http://test"},
                            data={"csrf_token": csrf_token(page.text)})
    assert pay.status_code == 409 and SAID in pay.text and "/sandbox/cashier" not in pay.headers.get("location", "")

    # Paid at the cashier before the suspension: the notification still credits it, once.
    notice = signed_notification(shop.sandbox_secret, payment_no=request.request_no,
                                 amount_cents=request.amount_cents, trade_no="SB-SUSP-1")
    answer = await shop.client.post(NOTIFY, data=notice)
    assert answer.status_code == 200 and answer.text == "success", answer.text
    assert await balance_of(shop, "ACME") == 200_000
    async with shop.ctx.db.read_session() as session:
        assert (await session.scalars(select(TopUpRequest.status))).one() == "credited"

    await _status(shop, "active")
    assert (await _online(client, "100")).status_code == 303
    assert await shop.count(TopUpRequest) == 2
    await books_balanced(shop)
