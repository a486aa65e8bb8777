"""Benefit campaigns in the enterprise portal, through the real app on SQLite and PostgreSQL: create a draft, load
the roster (claim codes shown once), fund it within the balance, see claims, close it (the rest returns once);
funding beyond the balance and bad rosters change nothing; a viewer sees but cannot act."""

from __future__ import annotations

import datetime as dt
import re

from enterprises.portal_support import add_user, browser, csrf_token, logged_in, portal_login
from enterprises.support import balance_of, books_balanced
from helpers import Shop
from quanyi.enterprises import campaign_claims, campaigns
from quanyi.enterprises.models import Campaign, CampaignEmployee

ORIGIN = {"Origin": "http://test"}


async def _setup(shop: Shop, balance: int = 100_000):  # type: ignore[no-untyped-def]
    sku = await shop.make_sku(code="FIT-MONTH", price_cents=9_900)
    await shop.stock(sku, 5)
    return await logged_in(shop, "ACME", "hana", "purchaser", top_up_cents=balance)


async def _post(client, url: str, data: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    page = await client.get("/portal/campaigns")
    return await client.post(url, headers=ORIGIN, data={**(data or {}), "csrf_token": csrf_token(page.text)})


async def _create(client, budget: str = "200.00") -> str:  # type: ignore[no-untyped-def]
    today = dt.date.today()
    made = await _post(client, "/portal/campaigns", {
        "name": "新年福利", "skus": "FIT-MONTH", "budget": budget, "starts": today.isoformat(),
        "ends": (today + dt.timedelta(days=7)).isoformat()})
    assert made.status_code == 303, made.text
    return re.search(r"/portal/campaigns/(BC[A-Z0-9]+)", made.headers["location"]).group(1)  # type: ignore[union-attr]


async def test_create_load_roster_fund_see_claims_and_close(shop):
    client = await _setup(shop)
    no = await _create(client)
    roster = await _post(client, f"/portal/campaigns/{no}/employees",
                         {"employees": "E001,张伟,13800000001,\nE002，李娜\n"})
    assert roster.status_code == 200 and roster.headers["cache-control"] == "no-store"
    codes = re.findall(r'data-testid="claim-code">([A-Z0-9-]+)<', roster.text)
    assert len(codes) == 2
    assert await balance_of(shop, "ACME") == 100_000  # a draft takes nothing
    funded = await _post(client, f"/portal/campaigns/{no}/activate")
    assert funded.status_code == 303 and "m=campaign_activated" in funded.headers["location"]
    assert await balance_of(shop, "ACME") == 100_000 - 2 * 20_000

    async with shop.ctx.db.read_session() as session:
        campaign = await campaigns.get_campaign(session=session, code="ACME", campaign_no=no)
        employee = await campaign_claims.employee_by_code(session=session, cipher=shop.ctx.cipher, campaign=campaign,
                                                          claim_code=codes[0])
    await campaign_claims.claim(db=shop.ctx.db, campaign_no=no, employee_id=employee.id, sku_code="FIT-MONTH",
                                quantity=2, via="code")
    page = await client.get(f"/portal/campaigns/{no}")
    assert 'data-claimed="yes"' in page.text and page.text.count('data-testid="claim-row"') == 2
    assert 'data-testid="campaign-claims">1 / 2<' in page.text
    # The roster box is named by its heading and described by its instructions (it had no label at all).
    assert re.search(r'<h2 id="roster-title">.*?<textarea name="employees"[^>]* aria-labelledby="roster-title" '
                     r'aria-describedby="roster-intro"', page.text, re.S)

    ended = await _post(client, f"/portal/campaigns/{no}/end")
    assert ended.status_code == 303 and "m=campaign_ended" in ended.headers["location"]
    assert await balance_of(shop, "ACME") == 100_000 - 2 * 9_900  # what was claimed, nothing more
    again = await _post(client, f"/portal/campaigns/{no}/end")
    assert again.status_code == 303 and "%C2%A50.00" in again.headers["location"]  # returned once: ¥0.00 now
    assert await balance_of(shop, "ACME") == 100_000 - 2 * 9_900
    await books_balanced(shop)


async def test_funding_beyond_the_balance_and_bad_rosters_change_nothing(shop):
    client = await _setup(shop, balance=30_000)
    no = await _create(client)
    for bad in ("E001", "E001,张伟,not-a-phone", "E001,张伟\nE001,李娜", ""):
        refused = await _post(client, f"/portal/campaigns/{no}/employees", {"employees": bad})
        assert refused.status_code in (409, 422), bad
    assert await shop.count(CampaignEmployee) == 0
    await _post(client, f"/portal/campaigns/{no}/employees", {"employees": "E001,张伟\nE002,李娜"})
    short = await _post(client, f"/portal/campaigns/{no}/activate")  # 2 x 200.00 > 300.00
    assert short.status_code == 409 and 'data-testid="campaign-status">草稿<' in short.text
    assert await balance_of(shop, "ACME") == 30_000
    bad_dates = await _post(client, "/portal/campaigns", {"name": "x", "skus": "FIT-MONTH", "starts": "2026-13-01",
                                                          "ends": "2026-12-01"})
    assert bad_dates.status_code == 422
    assert await shop.count(Campaign) == 1


async def test_a_viewer_sees_campaigns_but_cannot_act(shop):
    client = await _setup(shop)
    no = await _create(client)
    await add_user(shop, "ACME", "vic", "viewer")
    viewer = browser(shop)
    assert (await portal_login(viewer, "ACME", "vic")).status_code == 303
    page = await viewer.get(f"/portal/campaigns/{no}")
    assert page.status_code == 200 and 'data-testid="roster-form"' not in page.text
    for url in ("/portal/campaigns", f"/portal/campaigns/{no}/employees", f"/portal/campaigns/{no}/activate"):
        refused = await viewer.post(url, headers=ORIGIN, data={"csrf_token": csrf_token(page.text),
                                                                "employees": "E1,x", "name": "x"})
        assert refused.status_code == 403, url
    assert await shop.count(CampaignEmployee) == 0


async def test_portal_refusals_are_said_in_chinese_not_in_the_services_english(shop):  # type: ignore[no-untyped-def]
    """What the campaign and purchase services refuse reaches the portal's pages in Chinese (console/said.py)."""
    import datetime as dt
    import re as _re

    from enterprises.portal_support import csrf_token as _token
    from enterprises.portal_support import logged_in as _logged_in

    sku = await shop.make_sku(code="GIFT-100", price_cents=10_000, max_quantity=5)
    await shop.stock(sku, 5)
    client = await _logged_in(shop, "ACME", "ada", "admin", top_up_cents=100_000)

    async def post(page_url: str, url: str, data: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
        page = await client.get(page_url)
        return await client.post(url, headers={"Origin": "http://test"},
                                 data={**(data or {}), "csrf_token": _token(page.text)})

    today = dt.date.today()
    made = await post("/portal/campaigns", "/portal/campaigns", {
        "name": "新年福利", "skus": "GIFT-100", "budget": "100.00", "starts": today.isoformat(),
        "ends": (today + dt.timedelta(days=7)).isoformat()})
    assert made.status_code == 303, made.text
    no = _re.search(r"/portal/campaigns/(BC[A-Z0-9]+)", made.headers["location"]).group(1)  # type: ignore[union-attr]
    page = f"/portal/campaigns/{no}"
    said = {
        "请先添加员工名单，再启用福利活动": await post(page, f"{page}/activate"),
        "员工 E001：手机号不正确": await post(page, f"{page}/employees", {"employees": "E001,张伟,12"}),
        "第 1 行格式不对": await post(page, f"{page}/employees", {"employees": "E001"}),
        "名单中有重复的工号": await post(page, f"{page}/employees", {"employees": "E001,张伟\nE001,李娜"}),
    }
    for chinese, answer in said.items():
        assert answer.status_code in (409, 422) and chinese in answer.text, (chinese, answer.status_code)
        for english in ("add employees", "not a valid mobile", "give employee no", "appears twice"):
            assert english not in answer.text, (chinese, english)
