"""Console test helpers: staff made through the real service, logged in through the real login form."""

from __future__ import annotations

import re
from typing import Any

import httpx

from quanyi.staff import service as staff_service

PASSWORD = "correct horse battery"
COOKIE = "qy_console"


async def make_staff(shop: Any, username: str, *, roles: tuple[str, ...] = (), permissions: tuple[str, ...] = (),
                     password: str = PASSWORD) -> Any:
    async with shop.ctx.db.transaction() as session:
        return await staff_service.create_staff(session=session, username=username, password=password,
                                                roles=roles, permissions=permissions)


def csrf_token(page: str) -> str:
    """The CSRF token a console page put into its forms ('' when the shop has none)."""
    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    return found.group(1) if found else ""


async def post_form(client: httpx.AsyncClient, url: str, data: dict[str, str] | None = None, *,
                    page_url: str | None = None) -> httpx.Response:
    """Submit a console form the way a browser does: open its page first for the token, then post."""
    page = await client.get(page_url or "/console/account")
    return await client.post(url, data={**(data or {}), "csrf_token": csrf_token(page.text)},
                             headers={"Origin": str(client.base_url).rstrip("/")})


async def console_login(client: httpx.AsyncClient, username: str, password: str = PASSWORD) -> httpx.Response:
    page = await client.get("/console/login")
    return await client.post("/console/login", data={"username": username, "password": password,
                                                      "csrf_token": csrf_token(page.text)},
                             headers={"Origin": str(client.base_url).rstrip("/")})


async def logged_in(shop: Any, username: str, *, roles: tuple[str, ...] = (),
                    permissions: tuple[str, ...] = ()) -> httpx.AsyncClient:
    """The shop's test client, logged in to the console as a new staff member."""
    await make_staff(shop, username, roles=roles, permissions=permissions)
    response = await console_login(shop.client, username)
    assert response.status_code == 303, response.text
    return shop.client  # type: ignore[no-any-return]
