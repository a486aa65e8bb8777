"""CSRF (web/csrf.py): every storefront form needs this client's token and, when the browser names one, the shop's
own origin; a refused post changes nothing. Also the sweep: every cookie/form route that takes POST is protected."""

from __future__ import annotations

import re
from urllib.parse import urlparse

import pytest
from fastapi.routing import iter_route_contexts

from helpers import page_csrf_token, with_csrf
from quanyi.orders.access import COOKIE_NAME, cookie_with_token
from quanyi.orders.models import Order
from quanyi.web import csrf

HTML = {"Accept": "text/html"}


async def _checkout_form(shop, sku) -> dict[str, str]:
    return {"sku_id": str(sku.id), "quantity": "1", "contact": "a@example.com"}


async def test_first_page_hands_out_the_csrf_cookie_once_and_the_token_is_stable(client, stocked_sku):
    first = await client.get("/p/product-1")
    cookie = first.headers.get("set-cookie", "")
    assert re.search(r"qy_csrf=[A-Za-z0-9_-]{22}; Max-Age=\d+; Path=/; HttpOnly; SameSite=Lax", cookie), cookie
    token = page_csrf_token(first.text)
    assert f'<meta name="csrf-token" content="{token}">' in first.text  # for htmx / fetch (X-CSRF-Token)
    again = await client.get("/lookup")
    assert "qy_csrf" not in again.headers.get("set-cookie", "")
    assert page_csrf_token(again.text) == token


async def test_checkout_without_a_token_is_refused_and_creates_nothing(shop, client, stocked_sku):
    await client.get("/p/product-1")  # has the cookie, but the forged form carries no token
    response = await client.post("/p/product-1/checkout", data=await _checkout_form(shop, stocked_sku), headers=HTML)
    assert response.status_code == 403
    assert "页面已过期" in response.text and "csrf" not in response.text.lower().split("</head>")[1]
    api_style = await client.post("/p/product-1/checkout", data=await _checkout_form(shop, stocked_sku))
    assert api_style.status_code == 403 and api_style.json()["code"] == "csrf_failed"
    assert await shop.count(Order) == 0
    assert await shop.available(stocked_sku.id) == 10


async def test_a_token_of_another_client_or_a_tampered_one_is_refused(shop, app, client, stocked_sku):
    import httpx

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as other:
        stolen = await with_csrf(other)  # the attacker's own token, from their own visit
    form = await _checkout_form(shop, stocked_sku)
    await client.get("/lookup")
    assert (await client.post("/p/product-1/checkout", data={**form, **stolen})).status_code == 403
    mine = await with_csrf(client)
    tampered = mine["csrf_token"][:-2] + ("AA" if not mine["csrf_token"].endswith("AA") else "BB")
    assert (await client.post("/p/product-1/checkout", data={**form, "csrf_token": tampered})).status_code == 403
    # No cookie at all (a client that never saw a page) with someone's token: refused too.
    client.cookies.delete(csrf.CSRF_COOKIE)
    assert (await client.post("/p/product-1/checkout", data={**form, **mine})).status_code == 403
    assert await shop.count(Order) == 0


@pytest.mark.parametrize(("headers", "status"), [
    ({"Origin": "https://evil.example"}, 403),
    ({"Origin": "null"}, 403),
    ({"Referer": "https://evil.example/page"}, 403),
    ({"Origin": "http://test"}, 303),
    ({"Referer": "http://test/p/product-1"}, 303),
    ({}, 303),  # no origin named (a script, a privacy proxy): the token alone decides
], ids=["foreign-origin", "null-origin", "foreign-referer", "same-origin", "same-referer", "none"])
async def test_the_origin_must_be_the_shop_when_the_browser_names_one(shop, client, stocked_sku, headers, status):
    form = await with_csrf(client, await _checkout_form(shop, stocked_sku))
    response = await client.post("/p/product-1/checkout", data=form, headers=headers)
    assert response.status_code == status, response.text
    assert await shop.count(Order) == (1 if status == 303 else 0)


async def test_configured_origins_are_trusted(shop, client, stocked_sku):
    shop.ctx.settings.public_base_url = "https://shop.example"
    shop.ctx.settings.csrf_trusted_origins = "https://www.shop.example, https://m.shop.example"
    form = await with_csrf(client, await _checkout_form(shop, stocked_sku))
    for origin in ("https://shop.example", "https://m.shop.example"):
        response = await client.post("/p/product-1/checkout", data=form, headers={"Origin": origin})
        assert response.status_code == 303, origin
    refused = await client.post("/p/product-1/checkout", data=form, headers={"Origin": "http://shop.example"})
    assert refused.status_code == 403  # same host, other scheme, not the request's host: not the shop


async def test_scripted_requests_send_the_token_in_a_header(shop, client, paid_order):
    client.cookies.set(COOKIE_NAME, cookie_with_token(None, paid_order["order_no"], paid_order["access_token"]))
    token = (await with_csrf(client))["csrf_token"]
    refused = await client.post(f"/orders/{paid_order['order_no']}/reveal")
    assert refused.status_code == 403
    shown = await client.post(f"/orders/{paid_order['order_no']}/reveal", headers={"X-CSRF-Token": token})
    assert shown.status_code == 200 and 'data-testid="card-code"' in shown.text


async def test_tokens_follow_a_registered_session_cookie(client, stocked_sku, monkeypatch):
    monkeypatch.setattr(csrf, "_session_cookies", [])
    csrf.register_session_cookie("qy_member")
    client.cookies.set("qy_member", "session-one")
    before = (await with_csrf(client))["csrf_token"]
    client.cookies.set("qy_member", "session-two")  # logged in again: the old token is worth nothing
    after = (await with_csrf(client))["csrf_token"]
    assert before != after
    refused = await client.post("/lookup", data={"order_no": "X", "contact": "a@example.com", "csrf_token": before})
    assert refused.status_code == 403
    accepted = await client.post("/lookup", data={"order_no": "X", "contact": "a@example.com", "csrf_token": after})
    assert accepted.status_code == 404  # past the CSRF check: the lookup itself answered


@pytest.mark.parametrize("action", ["pay", "cancel", "reveal", "lookup", "cashier"])
async def test_every_storefront_form_needs_the_token(shop, client, order, action):
    client.cookies.set(COOKIE_NAME, cookie_with_token(None, order["order_no"], order["access_token"]))
    await client.get("/lookup")
    paths = {"pay": (f"/orders/{order['order_no']}/pay", {"gateway": "sandbox"}),
             "cancel": (f"/orders/{order['order_no']}/cancel", {}),
             "reveal": (f"/orders/{order['order_no']}/reveal", {}),
             "lookup": ("/lookup", {"order_no": order["order_no"], "contact": "buyer@example.com"})}
    if action == "cashier":
        payment = await shop.start_payment(order)
        url = urlparse(payment["cashier_url"])
        page = await client.get(f"{url.path}?{url.query}")
        ticket = re.search(r'name="t" value="([^"]+)"', page.text).group(1)
        paths["cashier"] = ("/sandbox/cashier/pay", {"t": ticket})
    path, data = paths[action]
    response = await client.post(path, data=data, headers=HTML)
    assert response.status_code == 403, (action, response.status_code)
    assert (await shop.get_order(order))["status"] == "pending_payment"
    allowed = await client.post(path, data=await with_csrf(client, data), headers=HTML)
    assert allowed.status_code in (200, 303, 409), (action, allowed.status_code)  # 409: reveal before payment


def test_every_cookie_or_form_route_that_changes_state_is_protected(app):
    """Routes outside the header-authenticated API and the signed server-to-server callbacks answer browsers:
    every unsafe method there must depend on require_csrf (console and buyer-account pages included)."""
    exempt_prefixes = ("/api/", "/payments/", "/sandbox/api/")
    # signed server-to-server callbacks outside those prefixes: the gateway's signature is their protection
    exempt_callbacks = {"/enterprise-top-ups/{gateway_name}/notify"}
    unprotected = []
    # The routes as served: FastAPI keeps included routers as one entry each in app.routes, so iterating that
    # list alone would see only the few routes added to the app directly.
    routes = [route for route in iter_route_contexts(app.routes) if route.methods is not None]
    assert sum(1 for route in routes if (route.methods or set()) & {"POST"}) > 20  # the sweep sees the app
    for route in routes:
        if route.path.startswith(exempt_prefixes) or route.path in exempt_callbacks:
            continue
        if not route.methods & {"POST", "PUT", "PATCH", "DELETE"}:
            continue
        calls = {dep.call for dep in route.dependant.dependencies}
        if csrf.require_csrf not in calls:
            unprotected.append(f"{sorted(route.methods)} {route.path}")
    assert unprotected == []
