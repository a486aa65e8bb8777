"""Every answer carries the security headers (API, pages, errors, static files), once each, and a route that
sets its own value keeps it."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI
from fastapi.responses import PlainTextResponse
from httpx import ASGITransport, AsyncClient

from quanyi.app import create_app
from quanyi.config import Settings
from quanyi.middleware import FrontDoor

EXPECTED = {"x-content-type-options": "nosniff", "referrer-policy": "same-origin", "x-frame-options": "DENY"}


@pytest.mark.parametrize("path", ["/healthz", "/", "/api/orders/NOSUCHORDER", "/no/such/page", "/openapi.json"])
async def test_every_answer_carries_the_security_headers_once(client, path):
    response = await client.get(path, headers={"Accept": "text/html"} if "api" not in path else {})
    for name, value in EXPECTED.items():
        assert response.headers.get_list(name) == [value], (path, response.status_code, name)


async def test_a_route_that_sets_its_own_value_keeps_it():
    app = FastAPI()
    app.add_middleware(FrontDoor)

    @app.get("/framed")
    async def framed() -> PlainTextResponse:
        return PlainTextResponse("ok", headers={"X-Frame-Options": "SAMEORIGIN"})

    async with AsyncClient(transport=ASGITransport(app=app), base_url="http://t") as client:
        response = await client.get("/framed")
    assert response.headers.get_list("x-frame-options") == ["SAMEORIGIN"]
    assert response.headers["x-content-type-options"] == "nosniff"


async def _answer_headers(ctx, **overrides) -> httpx.Headers:
    """The headers of an answer (a page, an API error) of an app built on `ctx` with these settings."""
    ctx.settings = ctx.settings.model_copy(update=overrides)
    async with AsyncClient(transport=ASGITransport(app=create_app(ctx=ctx)), base_url="http://t") as client:
        page, api = await client.get("/", headers={"Accept": "text/html"}), await client.get("/api/orders/NOSUCH")
    assert page.headers.get_list("strict-transport-security") == api.headers.get_list("strict-transport-security")
    return page.headers


@pytest.mark.parametrize(("overrides", "expected"), [
    ({"public_base_url": "https://shop.example.com"}, ["max-age=31536000"]),  # served over https: on by default
    ({"public_base_url": "http://127.0.0.1:8000"}, []),  # plain http (the demo): browsers would ignore it anyway
    ({"public_base_url": "https://shop.example.com", "hsts_max_age_seconds": 0}, []),  # turned off
    ({"public_base_url": "https://shop.example.com", "hsts_max_age_seconds": 600, "hsts_include_subdomains": True},
     ["max-age=600; includeSubDomains"]),
])
async def test_hsts_when_the_shop_is_served_over_https(ctx, overrides, expected):
    headers = await _answer_headers(ctx, **overrides)
    assert headers.get_list("strict-transport-security") == expected


def test_hsts_setting_is_validated():
    with pytest.raises(ValueError, match="hsts_max_age_seconds"):
        Settings(_env_file=None, hsts_max_age_seconds=-1)  # type: ignore[call-arg]


async def test_answers_carrying_secrets_are_never_cached(shop, stocked_sku):
    """Card keys and order access tokens: no browser, proxy or CDN may keep a copy (Cache-Control: no-store)."""
    created = await shop.client.post("/api/orders", json={"sku_id": stocked_sku.id, "quantity": 1,
                                                          "contact": "buyer@example.com"})
    assert created.status_code == 201 and created.headers["cache-control"] == "no-store"
    order = created.json()
    await shop.pay(order)
    reveal = await shop.client.post(f"/api/orders/{order['order_no']}/reveal", headers=shop.auth(order))
    assert reveal.status_code == 200 and reveal.json()["keys"]
    assert reveal.headers["cache-control"] == "no-store" and reveal.headers["pragma"] == "no-cache"
    lookup = await shop.client.post("/api/orders/lookup", json={"order_no": order["order_no"],
                                                                "contact": "buyer@example.com"})
    assert lookup.status_code == 200 and lookup.headers["cache-control"] == "no-store"
