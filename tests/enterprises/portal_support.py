"""Enterprise portal test helpers: users made through the admin API, logged in through the real login form."""

from __future__ import annotations

import re
from typing import Any

import httpx

from enterprises.support import add_enterprise

PASSWORD = "correct horse battery"
COOKIE = "qy_portal"


def csrf_token(page: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert found is not None, "the page has no form token"
    return found.group(1)


async def add_user(shop: Any, code: str, username: str, role: str = "admin", password: str = PASSWORD) -> dict:
    response = await shop.client.post(f"/api/admin/enterprises/{code}/users", headers=shop.admin,
                                      json={"username": username, "password": password, "role": role})
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


def browser(shop: Any) -> httpx.AsyncClient:
    """A client of its own (its own cookies), on the same app as the shop's client."""
    return httpx.AsyncClient(transport=shop.client._transport, base_url=str(shop.client.base_url),
                             headers={"Accept": "text/html"})


async def portal_login(client: httpx.AsyncClient, code: str, username: str,
                       password: str = PASSWORD) -> httpx.Response:
    page = await client.get("/portal/login")
    if page.status_code == 303:  # already logged in: the form of a page of the portal carries the token
        page = await client.get("/portal/account")
    return await client.post("/portal/login", data={"enterprise": code, "username": username, "password": password,
                                                    "csrf_token": csrf_token(page.text)},
                             headers={"Origin": str(client.base_url).rstrip("/")})


async def post_form(client: httpx.AsyncClient, url: str, data: dict[str, str] | None = None, *,
                    page_url: str = "/portal/account") -> httpx.Response:
    """Submit a portal form the way a browser does: open a page for the token, then post."""
    page = await client.get(page_url)
    return await client.post(url, data={**(data or {}), "csrf_token": csrf_token(page.text)},
                             headers={"Origin": str(client.base_url).rstrip("/")})


async def logged_in(shop: Any, code: str, username: str, role: str = "admin", *,
                    register: bool = True, top_up_cents: int = 0) -> httpx.AsyncClient:
    """A new browser logged in to the portal as a new user of enterprise `code` (registered first)."""
    if register:
        await add_enterprise(shop, code, top_up_cents=top_up_cents)
    await add_user(shop, code, username, role)
    client = browser(shop)
    response = await portal_login(client, code, username)
    assert response.status_code == 303, response.text
    return client
