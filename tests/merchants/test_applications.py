"""Merchant applications (商户入驻): apply by API or form, follow with the token, the platform approves (merchant and
owner login created, scoped) or rejects with a reason; the storefront's merchant page, in zh-CN and English."""

from __future__ import annotations

from helpers import with_csrf
from merchants.support import Tenant, shared_category, stock_up

HTML = {"Accept": "text/html"}
FORM = {"code": "moon-shop", "name": "月光小铺", "description": "Game cards", "contact_name": "Li",
        "contact_email": "li@example.com", "contact_phone": "13800138000", "owner_username": "moon.owner",
        "owner_password": "correct horse battery"}


async def test_apply_follow_approve_and_the_owner_works_within_the_new_merchant(shop):
    answer = await shop.client.post("/api/merchant-applications", json=FORM)
    assert answer.status_code == 201, answer.text
    submitted = answer.json()
    no, token = submitted["application_no"], submitted["access_token"]
    follow = f"/api/merchant-applications/{no}"
    assert (await shop.client.get(follow, headers={"X-Application-Token": token})).json()["status"] == "pending"
    assert (await shop.client.get(follow, headers={"X-Application-Token": "x" * 32})).status_code == 404
    assert (await shop.client.get(follow)).status_code == 404
    # The code and login are reserved while the application is pending; bad input is refused before anything.
    taken = await shop.client.post("/api/merchant-applications", json={**FORM, "owner_username": "someone"})
    assert taken.status_code == 409 and taken.json()["field"] == "code"
    assert (await shop.client.post("/api/merchant-applications",
                                   json={**FORM, "code": "Bad Code"})).status_code == 422
    assert (await shop.client.post("/api/merchant-applications",
                                   json={**FORM, "code": "other", "owner_password": "short"})).status_code == 422

    pending = (await shop.client.get("/api/admin/merchant-applications?status=pending", headers=shop.admin)).json()
    assert [a["application_no"] for a in pending] == [no] and "owner_password_hash" not in pending[0]
    approve = await shop.client.post(f"/api/admin/merchant-applications/{no}/approve", headers=shop.admin,
                                     json={"reason": "documents checked", "commission_bps": 600})
    assert approve.status_code == 200, approve.text
    assert (approve.json()["status"], approve.json()["reviewed_by"]) == ("approved", "admin")
    again = await shop.client.post(f"/api/admin/merchant-applications/{no}/reject", headers=shop.admin,
                                   json={"reason": "changed my mind"})
    assert again.status_code == 409 and again.json()["code"] == "application_not_pending"

    login = await shop.client.post("/api/staff/login", json={"username": "moon.owner",
                                                             "password": "correct horse battery"})
    assert login.status_code == 200, login.text
    owner = {"Authorization": f"Bearer {login.json()['token']}"}
    mine = (await shop.client.get("/api/admin/merchants", headers=owner)).json()
    assert [(m["code"], m["commission_bps"]) for m in mine] == [("moon-shop", 600)]
    assert (await shop.client.get(follow, headers={"X-Application-Token": token})).json()["status"] == "approved"


async def test_a_rejected_application_tells_why_and_frees_the_code(shop):
    no = (await shop.client.post("/api/merchant-applications", json=FORM)).json()["application_no"]
    rejected = await shop.client.post(f"/api/admin/merchant-applications/{no}/reject", headers=shop.admin,
                                      json={"reason": "no business licence"})
    assert rejected.json()["status"] == "rejected" and rejected.json()["review_reason"] == "no business licence"
    assert (await shop.client.post("/api/merchant-applications", json=FORM)).status_code == 201


async def test_applications_per_address_are_limited(shop):
    shop.ctx.settings.merchant_applications_per_ip_hour = 1
    assert (await shop.client.post("/api/merchant-applications", json=FORM)).status_code == 201
    limited = await shop.client.post("/api/merchant-applications", json={**FORM, "code": "shop-9",
                                                                         "owner_username": "owner9"})
    assert limited.status_code == 429 and limited.headers["Retry-After"] == "3600"


async def test_the_application_form_and_the_merchant_page_in_both_languages(shop):
    page = await shop.client.get("/merchants/apply", headers=HTML)
    assert page.status_code == 200 and "商户入驻申请" in page.text
    assert "Apply to sell" in (await shop.client.get("/merchants/apply?lang=en", headers=HTML)).text
    form = await with_csrf(shop.client, {**FORM, "owner_password": "short"}, page="/merchants/apply")
    invalid = await shop.client.post("/merchants/apply", data=form, headers=HTML)
    assert invalid.status_code == 422 and "correct horse" not in invalid.text and "moon-shop" in invalid.text
    sent = await shop.client.post("/merchants/apply", headers=HTML,
                                  data=await with_csrf(shop.client, FORM, page="/merchants/apply"))
    assert sent.status_code == 303
    status = await shop.client.get(sent.headers["location"], headers=HTML)
    assert status.status_code == 200 and 'data-status="pending"' in status.text
    no = sent.headers["location"].split("/")[-1].split("?")[0]
    await shop.client.post(f"/api/admin/merchant-applications/{no}/approve", headers=shop.admin,
                           json={"reason": "ok", "commission_bps": 500})
    english = await shop.client.get(sent.headers["location"] + "&lang=en", headers=HTML)
    assert "Welcome! You can now log in as moon.owner" in english.text

    # The merchant's page shows its goods only; its products name the shop; a suspended shop is gone.
    headers = await login_owner(shop)
    merchant = (await shop.client.get("/api/admin/merchants", headers=headers)).json()[0]
    await stock_up(shop, Tenant(code="moon-shop", merchant_id=merchant["id"], headers=headers),
                   await shared_category(shop), keys=1)
    await shop.make_sku(code="PLATFORM-ONLY")
    other = f"/p/product-{shop._counter[0]}"
    shop_page = await shop.client.get("/m/moon-shop", headers=HTML)
    assert shop_page.status_code == 200 and "月光小铺" in shop_page.text and "/p/moon-shop-card" in shop_page.text
    assert other not in shop_page.text
    product = await shop.client.get("/p/moon-shop-card?lang=en", headers=HTML)
    assert 'href="/m/moon-shop"' in product.text and "Shop" in product.text
    home = await shop.client.get("/", headers=HTML)
    assert "/p/moon-shop-card" in home.text and other in home.text  # every merchant's goods
    await shop.client.patch("/api/admin/merchants/moon-shop", headers=shop.admin, json={"status": "suspended"})
    assert (await shop.client.get("/m/moon-shop", headers=HTML)).status_code == 404
    assert (await shop.client.get("/p/moon-shop-card", headers=HTML)).status_code == 404
    assert "/p/moon-shop-card" not in (await shop.client.get("/", headers=HTML)).text


async def login_owner(shop) -> dict[str, str]:
    response = await shop.client.post("/api/staff/login", json={"username": "moon.owner",
                                                                "password": "correct horse battery"})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['token']}"}
