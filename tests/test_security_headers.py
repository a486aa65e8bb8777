"""Every answer carries the security headers (API, pages, errors, static files), once each, and a route that
sets its own value keeps it."""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from fastapi.responses import PlainTextResponse
from httpx import ASGITransport, AsyncClient

from quanyi.middleware import SecurityHeadersMiddleware

EXPECTED = {"x-content-type-options": "nosniff", "referrer-policy": "same-origin", "x-frame-options": "DENY"}


@pytest.mark.parametrize("path", ["/healthz", "/", "/api/orders/NOSUCHORDER", "/no/such/page", "/openapi.json"])
async def test_every_answer_carries_the_security_headers_once(client, path):
    response = await client.get(path, headers={"Accept": "text/html"} if "api" not in path else {})
    for name, value in EXPECTED.items():
        assert response.headers.get_list(name) == [value], (path, response.status_code, name)


async def test_a_route_that_sets_its_own_value_keeps_it():
    app = FastAPI()
    app.add_middleware(SecurityHeadersMiddleware)

    @app.get("/framed")
    async def framed() -> PlainTextResponse:
        return PlainTextResponse("ok", headers={"X-Frame-Options": "SAMEORIGIN"})

    async with AsyncClient(transport=ASGITransport(app=app), base_url="http://t") as client:
        response = await client.get("/framed")
    assert response.headers.get_list("x-frame-options") == ["SAMEORIGIN"]
    assert response.headers["x-content-type-options"] == "nosniff"
