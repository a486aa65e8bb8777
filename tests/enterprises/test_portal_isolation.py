"""Strict isolation of the enterprise portal: logged in as a user of ACME, every portal URL (found from the app's
routes, so pages added later are covered) asked with BETA's purchase, campaign and user numbers answers 404 and
changes nothing of BETA's; pages without numbers show none of BETA's; strangers are sent to the login page;
every portal form is CSRF-checked and every page names the permission it needs."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from fastapi.routing import iter_route_contexts

from enterprises.portal_support import add_user, csrf_token, logged_in
from enterprises.support import add_enterprise
from quanyi.enterprises import campaigns, purchases, top_ups
from quanyi.enterprises.models import BulkPurchase, Campaign, EnterpriseUser, TopUpRequest
from quanyi.enterprises.portal.routes import PUBLIC_ROUTES
from quanyi.web.csrf import require_csrf

pytestmark = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)  # routing and scoping, not SQL
ORIGIN = {"Origin": "http://test"}
# The values each {action} of a portal route takes (a route added with a new action must be listed here).
ACTIONS = {
    "/portal/purchases/{purchase_no}/{action}": ("resume", "cancel", "link"),
    "/portal/campaigns/{campaign_no}/{action}": ("employees", "activate", "end"),
    "/portal/users/{username}/{action}": ("role", "disable", "enable", "reset-2fa", "logout", "password"),
    "/portal/top-ups/{request_no}/{action}": ("pay", "check"),
}


def _portal_routes(app):  # type: ignore[no-untyped-def]
    return [route for route in iter_route_contexts(app.routes) if (route.path or "").startswith("/portal")]


def _permission_of(route) -> str | None:  # type: ignore[no-untyped-def]
    stack = list(route.dependant.dependencies)
    while stack:
        dependency = stack.pop()
        found = getattr(dependency.call, "portal_permission", None)
        if found is not None:
            return str(found)
        stack.extend(dependency.dependencies)
    return None


def _urls(path: str, values: dict[str, str]) -> list[str]:
    filled = re.sub(r"\{(purchase_no|campaign_no|username|request_no)\}", lambda m: values[m.group(1)], path)
    if "{action}" in filled:
        return [filled.replace("{action}", action) for action in ACTIONS[path]]
    assert "{" not in filled, f"{path}: a portal route with a parameter this sweep does not know"
    return [filled]


async def _beta(shop) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """BETA with a purchase, a draft campaign and a user: the numbers ACME's user will try."""
    sku = await shop.make_sku(code="GIFT-100", price_cents=10_000)
    await shop.stock(sku, 3)
    await add_enterprise(shop, "BETA", top_up_cents=100_000)
    await add_user(shop, "BETA", "bob", "admin")
    await shop.client.post("/api/admin/enterprises/BETA/contacts", headers=shop.admin,
                           json={"name": "采购", "role": "purchasing", "email": "buy@beta.example"})
    async with shop.ctx.db.transaction() as session:
        bought, _ = await purchases.create_purchase(session=session, code="BETA", sku_code="GIFT-100", quantity=1,
                                                    actor="t")
        now = dt.datetime.now(dt.UTC)
        campaign = await campaigns.create_campaign(session=session, code="BETA", name="BETA 福利",
                                                   sku_codes=["GIFT-100"], starts_at=now,
                                                   ends_at=now + dt.timedelta(days=3))
        asked, _ = await top_ups.request_top_up(session=session, code="BETA", amount_cents=10_000, method="online",
                                                gateway="sandbox", actor="beta/bob", request_key="beta-online-1")
    return {"purchase_no": bought.purchase_no, "campaign_no": campaign.campaign_no, "username": "bob",
            "request_no": asked.request_no}


async def _snapshot(shop) -> list:  # type: ignore[no-untyped-def, type-arg]
    async with shop.ctx.db.read_session() as session:
        rows = [(p.status, p.placed_quantity) for p in (await session.scalars(select_all(BulkPurchase))).all()]
        rows += [(c.status, c.funded_cents) for c in (await session.scalars(select_all(Campaign))).all()]
        rows += [(u.role, u.active, u.password_hash) for u in (await session.scalars(select_all(EnterpriseUser)))]
        rows += [(t.status, t.decided_at) for t in (await session.scalars(select_all(TopUpRequest))).all()]
    return rows


def select_all(model):  # type: ignore[no-untyped-def]
    from sqlalchemy import select

    return select(model).order_by(model.id)


async def test_every_portal_url_with_another_enterprises_numbers_is_not_found(shop, app):
    beta = await _beta(shop)
    client = await logged_in(shop, "ACME", "alice", "admin", top_up_cents=50_000)
    before = await _snapshot(shop)
    token = csrf_token((await client.get("/portal/account")).text)
    tried = 0
    for route in _portal_routes(app):
        for method in sorted((route.methods or set()) - {"HEAD"}):
            if (method, route.path) in PUBLIC_ROUTES:
                continue
            for url in _urls(route.path, beta):
                if not re.search(r"\{(purchase_no|campaign_no|username|request_no)\}", route.path):
                    if method == "GET":  # a page of ACME's own: nothing of BETA's on it
                        page = await client.get(url)
                        assert page.status_code == 200, url
                        assert not any(value in page.text for value in (beta["purchase_no"], beta["campaign_no"],
                                                                        beta["request_no"], "BETA")), url
                    continue
                answer = await client.request(method, url, headers=ORIGIN, data={
                    "csrf_token": token, "role": "viewer", "password": "another long password",
                    "employees": "E1,张三,,", "code": "123456"})
                assert answer.status_code == 404, (method, url, answer.status_code)
                tried += 1
    assert tried >= 15
    assert await _snapshot(shop) == before  # nothing of BETA's (or anyone's) changed


async def test_strangers_are_sent_to_the_login_page_from_every_portal_url(shop, app):
    beta = await _beta(shop)
    stranger = shop.client
    for route in _portal_routes(app):
        for method in sorted((route.methods or set()) - {"HEAD"}):
            if (method, route.path) in PUBLIC_ROUTES:
                continue
            for url in _urls(route.path, beta):
                page = await stranger.get("/portal/login")
                answer = await stranger.request(method, url, headers=ORIGIN,
                                                data={"csrf_token": csrf_token(page.text)})
                assert answer.status_code == 303 and answer.headers["location"].startswith("/portal/login"), url


def test_every_portal_route_is_csrf_checked_and_names_its_permission(app):
    routes = _portal_routes(app)
    assert routes
    unchecked = [r.path for r in routes if require_csrf not in {d.call for d in r.dependant.dependencies}]
    assert unchecked == []
    unnamed = [(r.path, sorted(r.methods)) for r in routes
               if _permission_of(r) is None and not {(m, r.path) for m in r.methods} <= PUBLIC_ROUTES | {
                   ("HEAD", r.path)}]
    assert unnamed == []
