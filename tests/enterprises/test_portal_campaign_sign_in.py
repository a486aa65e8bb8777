"""The portal's campaign form offers WeCom / DingTalk sign-in like the admin API (both through
campaigns.create_campaign): the options are stored, shown, offered on the claim page, kept on a refused form, and the
roster takes the WeCom user id and DingTalk union id the sign-in matches on; a provider whose app the enterprise has
not registered is flagged on the form."""

from __future__ import annotations

import datetime as dt
import re

from sqlalchemy import select

from enterprises.portal_support import csrf_token, logged_in
from quanyi.enterprises.models import Campaign, CampaignEmployee

ORIGIN = {"Origin": "http://test"}


async def _post(client, url: str, data: dict[str, str]):  # type: ignore[no-untyped-def]
    page = await client.get("/portal/campaigns")
    return await client.post(url, headers=ORIGIN, data={**data, "csrf_token": csrf_token(page.text)})


def _form(**extra: str) -> dict[str, str]:
    today = dt.date.today()
    return {"name": "年终福利", "skus": "FIT-MONTH", "budget": "100.00", "starts": today.isoformat(),
            "ends": (today + dt.timedelta(days=7)).isoformat(), **extra}


async def test_the_portal_offers_wecom_and_dingtalk_sign_in_like_the_api(shop):
    sku = await shop.make_sku(code="FIT-MONTH", price_cents=9_900)
    await shop.stock(sku, 3)
    client = await logged_in(shop, "ACME", "hana", "purchaser", top_up_cents=100_000)
    registered = await shop.client.put("/api/admin/enterprises/ACME/login-apps/wecom", headers=shop.admin,
                                       json={"app_id": "ww0001", "agent_id": "1000002", "secret": "s3cret-wecom"})
    assert registered.status_code == 200, registered.text

    page = await client.get("/portal/campaigns")
    assert 'name="allow_wecom"' in page.text and 'name="allow_dingtalk"' in page.text
    assert 'data-testid="no-app-dingtalk"' in page.text and 'data-testid="no-app-wecom"' not in page.text

    bad = await _post(client, "/portal/campaigns", _form(ends="not-a-date", allow_wecom="on"))
    assert bad.status_code == 422
    assert re.search(r'name="allow_wecom" checked', bad.text) and not re.search(r'name="allow_dingtalk" checked',
                                                                                bad.text)
    assert await shop.count(Campaign) == 0

    made = await _post(client, "/portal/campaigns", _form(allow_wecom="on"))
    assert made.status_code == 303, made.text
    no = re.search(r"/portal/campaigns/(BC[A-Z0-9]+)", made.headers["location"]).group(1)  # type: ignore[union-attr]
    plain = await _post(client, "/portal/campaigns", _form(name="无登录"))
    assert plain.status_code == 303
    flags = (await shop.scalar(select(Campaign.allow_wecom).where(Campaign.campaign_no == no)),
             await shop.scalar(select(Campaign.allow_dingtalk).where(Campaign.campaign_no == no)))
    assert flags == (True, False)
    assert await shop.count(Campaign, Campaign.allow_wecom.is_(False), Campaign.allow_dingtalk.is_(False)) == 1
    api = (await shop.client.get(f"/api/admin/enterprises/ACME/campaigns/{no}", headers=shop.admin)).json()
    assert (api["allow_wecom"], api["allow_dingtalk"]) == (True, False)
    detail = await client.get(f"/portal/campaigns/{no}")
    assert re.search(r'data-testid="campaign-sign-in">领取码 · 企业微信<', detail.text)

    roster = await _post(client, f"/portal/campaigns/{no}/employees",
                         {"employees": "E001,张伟,,,zhangwei\nE002，李娜，13800000002，，，union-li"})
    assert roster.status_code == 200, roster.text
    ids = (await shop.scalar(select(CampaignEmployee.wecom_userid).where(CampaignEmployee.employee_no == "E001")),
           await shop.scalar(select(CampaignEmployee.dingtalk_union_id).where(CampaignEmployee.employee_no == "E002")))
    assert ids == ("zhangwei", "union-li")
    too_many = await _post(client, f"/portal/campaigns/{no}/employees", {"employees": "E003,王五,,,a,b,c"})
    assert too_many.status_code == 422 and await shop.count(CampaignEmployee) == 2

    assert (await _post(client, f"/portal/campaigns/{no}/activate", {})).status_code == 303
    claim = await shop.client.get(f"/claim/{no}", headers={"Accept": "text/html"})
    assert 'data-testid="login-wecom"' in claim.text and 'data-testid="login-dingtalk"' not in claim.text
