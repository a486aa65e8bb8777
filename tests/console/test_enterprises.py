"""Enterprise customers in the console: balances, a top-up sent twice credits once, a bulk purchase made from the
page and worked by the job (progress shown), a download link shown once and working, a campaign ended from the
page returning the rest; audited, platform staff only (a merchant's staff get 403)."""

from __future__ import annotations

import re

from sqlalchemy import select

from console.support import csrf_token, logged_in, post_form
from enterprises.campaign_support import funded_campaign
from quanyi.enterprises import purchases
from quanyi.ledger.models import CustomerAccount
from quanyi.staff.models import StaffAuditEntry

PAGE = "/console/enterprises/ACME"


async def _balance(shop) -> int:  # type: ignore[no-untyped-def]
    return int(await shop.scalar(select(CustomerAccount.balance_cents).where(
        CustomerAccount.code == "enterprise:ACME")))


async def test_top_up_buy_in_bulk_download_and_end_a_campaign(shop):
    funded = await funded_campaign(shop, balance=100_000)
    await shop.client.post("/api/admin/enterprises/ACME/contacts", headers=shop.admin,
                           json={"name": "采购", "role": "purchasing", "email": "buy@acme.example"})
    client = await logged_in(shop, "ella", roles=("owner",))
    listing = await client.get("/console/enterprises")
    assert listing.status_code == 200 and "ACME" in listing.text

    page = await client.get(PAGE)
    assert page.status_code == 200 and funded.no in page.text
    assert "采购 · 采购 · buy@acme.example" in page.text  # the contact's role said in the page's language
    key = re.search(r'name="request_key" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
    form = {"amount": "500.00", "note": "bank ref 9", "request_key": key, "csrf_token": csrf_token(page.text)}
    headers = {"Origin": "http://test"}
    credited = await client.post(f"{PAGE}/top-up", data=form, headers=headers)
    again = await client.post(f"{PAGE}/top-up", data=form, headers=headers)
    assert "m=topped_up" in credited.headers["location"] and "m=top_up_repeated" in again.headers["location"]
    assert await _balance(shop) == 70_000 + 50_000
    refused = await post_form(client, f"{PAGE}/top-up", {"amount": "-1", "request_key": "x"}, page_url=PAGE)
    assert refused.status_code == 422

    bought = await post_form(client, f"{PAGE}/purchases", {"sku_code": "gift-50", "quantity": "3",
                                                           "request_key": "p1"}, page_url=PAGE)
    assert bought.status_code == 303 and "m=purchase_made" in bought.headers["location"]
    too_many = await post_form(client, f"{PAGE}/purchases", {"sku_code": "GIFT-50", "quantity": "0",
                                                             "request_key": "p2"}, page_url=PAGE)
    assert too_many.status_code == 422
    await purchases.run_due_purchases(db=shop.ctx.db, owner="console-test")
    shown = await client.get(PAGE)
    assert "<progress max=\"3\" value=\"3\">" in shown.text
    no = re.search(r"<code>(BP[A-Z0-9]+)</code>", shown.text).group(1)  # type: ignore[union-attr]
    link = await post_form(client, f"{PAGE}/purchases/{no}/link", {}, page_url=PAGE)
    assert link.status_code == 200 and link.headers["cache-control"] == "no-store"
    url = re.search(r'data-testid="link-csv">([^<]+)<', link.text).group(1).replace("&amp;", "&")  # type: ignore[union-attr]
    assert url.split("t=")[1].split("&")[0] not in (await client.get(PAGE)).text  # shown once
    download = await shop.client.get(url.removeprefix("http://test"))
    assert download.status_code == 200 and len(download.text.strip().splitlines()) == 4

    ended = await post_form(client, f"{PAGE}/campaigns/{funded.no}/end", {}, page_url=PAGE)
    assert ended.status_code == 303 and "m=campaign_ended" in ended.headers["location"]
    assert await _balance(shop) == 100_000 + 50_000 - 3 * 5_000
    actions = set(await _actions(shop))
    assert {"enterprise_topped_up", "enterprise_purchase_made", "enterprise_purchase_link",
            "enterprise_campaign_ended"} <= actions
    missing = await client.get("/console/enterprises/NOPE")
    assert missing.status_code == 404


async def _actions(shop) -> list[str]:  # type: ignore[no-untyped-def]
    async with shop.ctx.db.read_session() as session:
        return list((await session.scalars(select(StaffAuditEntry.action))).all())



async def test_operator_adds_a_portal_user_who_can_log_in_then_disables_them(shop):
    from enterprises.portal_support import browser, portal_login
    from enterprises.support import add_enterprise

    await add_enterprise(shop, "ACME")
    client = await logged_in(shop, "ella", roles=("owner",))
    added = await post_form(client, f"{PAGE}/users", {"username": "Dora", "display_name": "采购 Dora",
                                                     "role": "purchaser", "password": "correct horse battery"},
                            page_url=PAGE)
    assert added.status_code == 303 and "m=user_added" in added.headers["location"]
    page = await client.get(PAGE)
    assert 'data-testid="portal-user"' in page.text and "dora" in page.text
    assert 'data-testid="no-contacts"' in page.text  # no contact yet: said, not an empty heading
    refused = await post_form(client, f"{PAGE}/users", {"username": "x", "role": "purchaser", "password": "short"},
                              page_url=PAGE)
    assert refused.status_code == 422
    portal = browser(shop)
    assert (await portal_login(portal, "ACME", "dora")).status_code == 303
    disabled = await post_form(client, f"{PAGE}/users/dora/disable", page_url=PAGE)
    assert disabled.status_code == 303
    assert (await portal.get("/portal")).status_code == 303  # the session ended with the account
    async with shop.ctx.db.read_session() as session:
        actions = (await session.scalars(select(StaffAuditEntry.action).where(StaffAuditEntry.actor == "ella"))).all()
    assert "enterprise_user_created" in actions and "enterprise_user_disable" in actions
