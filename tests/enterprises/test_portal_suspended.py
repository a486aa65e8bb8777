"""A suspended enterprise in the portal, on SQLite and PostgreSQL: its users still log in and see everything (a
banner says why nothing new can start), may wind down (cancel a purchase, end a campaign, disable a user, report a
bank transfer), but every action that starts something new (a purchase, resuming one, a campaign, its employees or
funding, a portal user, more access) is refused with a clear Chinese message and changes nothing."""

from __future__ import annotations

import datetime as dt
import re

from enterprises.portal_support import add_user, csrf_token, logged_in
from enterprises.support import set_tiers
from helpers import Shop
from quanyi.enterprises import purchases
from quanyi.enterprises.models import BulkPurchase, Campaign, CampaignEmployee, EnterpriseUser, TopUpRequest

ORIGIN = {"Origin": "http://test"}
SAID = "贵企业的账户已暂停，不能执行此操作"


async def _post(client, page_url: str, url: str, data: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    page = await client.get(page_url)
    key = re.search(r'name="request_key" value="([^"]+)"', page.text)
    return await client.post(url, headers=ORIGIN, data={
        **({"request_key": key.group(1)} if key else {}), **(data or {}), "csrf_token": csrf_token(page.text)})


async def _suspend(shop: Shop, status: str = "suspended") -> None:
    response = await shop.client.patch("/api/admin/enterprises/ACME", headers=shop.admin, json={"status": status})
    assert response.status_code == 200, response.text


async def test_a_suspended_enterprise_reads_and_winds_down_but_starts_nothing(shop: Shop):
    sku = await shop.make_sku(code="GIFT-100", price_cents=10_000, max_quantity=5)
    await shop.stock(sku, 10)
    client = await logged_in(shop, "ACME", "ada", "admin", top_up_cents=500_000)
    await add_user(shop, "ACME", "vera", "viewer")
    await set_tiers(shop, "ACME", "GIFT-100", (1, 9_800))
    contact = await shop.client.post("/api/admin/enterprises/ACME/contacts", headers=shop.admin, json={
        "name": "采购 李", "role": "purchasing", "email": "buy@acme.example"})
    assert contact.status_code == 201
    bought = await _post(client, "/portal/purchases", "/portal/purchases", {"sku_code": "GIFT-100", "quantity": "2"})
    assert bought.status_code == 303, re.findall(r'data-testid="flash"[^>]*>(.*?)</p>', bought.text)
    today = dt.date.today()
    made = await _post(client, "/portal/campaigns", "/portal/campaigns", {
        "name": "新年福利", "skus": "GIFT-100", "budget": "100.00", "starts": today.isoformat(),
        "ends": (today + dt.timedelta(days=7)).isoformat()})
    assert made.status_code == 303, made.text
    no = re.search(r"/portal/campaigns/(BC[A-Z0-9]+)", made.headers["location"]).group(1)  # type: ignore[union-attr]
    await _suspend(shop)
    await purchases.run_due_purchases(db=shop.ctx.db, owner="test")  # the frozen account pauses the purchase
    purchase_no = await shop.scalar(BulkPurchase.__table__.select().with_only_columns(BulkPurchase.purchase_no))

    for page in ("/portal", "/portal/statement", "/portal/prices", "/portal/purchases",
                 f"/portal/purchases/{purchase_no}", "/portal/campaigns", f"/portal/campaigns/{no}", "/portal/users",
                 "/portal/top-ups", "/portal/account"):
        seen = await client.get(page)
        assert seen.status_code == 200, page
        assert 'data-testid="suspended"' in seen.text and "仍可查看和下载" in seen.text, page

    before = (await shop.count(BulkPurchase), await shop.count(Campaign), await shop.count(CampaignEmployee),
              await shop.count(EnterpriseUser))
    refused = {
        "new purchase": await _post(client, "/portal/purchases", "/portal/purchases",
                                    {"sku_code": "GIFT-100", "quantity": "1"}),
        "resume": await _post(client, f"/portal/purchases/{purchase_no}", f"/portal/purchases/{purchase_no}/resume"),
        "new campaign": await _post(client, "/portal/campaigns", "/portal/campaigns", {
            "name": "又一个", "skus": "GIFT-100", "budget": "100.00", "starts": today.isoformat(),
            "ends": (today + dt.timedelta(days=7)).isoformat()}),
        "employees": await _post(client, f"/portal/campaigns/{no}", f"/portal/campaigns/{no}/employees",
                                 {"employees": "E001,张伟"}),
        "activate": await _post(client, f"/portal/campaigns/{no}", f"/portal/campaigns/{no}/activate"),
        "new user": await _post(client, "/portal/users", "/portal/users", {
            "username": "newbie", "password": "correct horse battery", "role": "viewer"}),
        "role": await _post(client, "/portal/users", "/portal/users/vera/role", {"role": "admin"}),
    }
    for what, answer in refused.items():
        assert answer.status_code == 409, (what, answer.status_code)
        assert SAID in answer.text and "恢复请联系商城客服" in answer.text, what
        assert "account is suspended" not in answer.text, what  # the service's English stays out of the page
    assert before == (await shop.count(BulkPurchase), await shop.count(Campaign), await shop.count(CampaignEmployee),
                      await shop.count(EnterpriseUser))
    assert await shop.scalar(EnterpriseUser.__table__.select().with_only_columns(EnterpriseUser.role).where(
        EnterpriseUser.username == "vera")) == "viewer"

    # Winding down and securing what exists stay possible.
    assert (await _post(client, "/portal/users", "/portal/users/vera/disable")).status_code == 303
    assert (await _post(client, f"/portal/purchases/{purchase_no}", f"/portal/purchases/{purchase_no}/cancel")
            ).status_code == 303
    assert (await _post(client, "/portal/top-ups", "/portal/top-ups", {
        "amount": "1000", "method": "bank_transfer", "payer_reference": "ICBC-1", "note": ""})).status_code == 303
    assert await shop.count(TopUpRequest) == 1

    await _suspend(shop, "active")  # reactivated: starting things works again
    again = await _post(client, "/portal/purchases", "/portal/purchases", {"sku_code": "GIFT-100", "quantity": "1"})
    assert again.status_code == 303
    assert 'data-testid="suspended"' not in (await client.get("/portal")).text
