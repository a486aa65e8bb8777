"""The portal and the console are two login areas of one mechanism (quanyi.web.login_area), and stay apart: each
cookie is sent only under its own path, a portal session never opens the console and a console session never
opens the portal (not even with its token put into the other area's cookie), and an enterprise user's password
is not a staff member's."""

from __future__ import annotations

from typing import Any

import httpx

from console.support import console_login, make_staff
from enterprises.portal_support import PASSWORD, add_user, browser, portal_login, post_form
from enterprises.support import add_enterprise


def _set_cookie(response: httpx.Response, name: str) -> tuple[str, str]:
    """The token a login set in cookie `name`, and the attributes it was set with (lower case)."""
    for header in response.headers.get_list("set-cookie"):
        if header.startswith(f"{name}="):
            value, _, attributes = header.partition(";")
            return value.split("=", 1)[1], attributes.lower()
    raise AssertionError(f"no {name} cookie set: {response.headers.get_list('set-cookie')}")


async def _both_logged_in(shop: Any) -> tuple[httpx.AsyncClient, str, str]:
    """One browser logged in to both areas (staff `sam`, ACME's `sam`): the browser, the console and portal tokens."""
    await make_staff(shop, "sam")
    await add_enterprise(shop, "ACME")
    await add_user(shop, "ACME", "sam", "admin")
    client = browser(shop)
    to_console = await console_login(client, "sam")
    assert to_console.status_code == 303, to_console.text
    to_portal = await portal_login(client, "ACME", "sam")
    assert to_portal.status_code == 303, to_portal.text
    return client, _set_cookie(to_console, "qy_console")[0], _set_cookie(to_portal, "qy_portal")[0]


def _stranger(shop: Any, cookie: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=shop.client._transport, base_url=str(shop.client.base_url),
                             headers={"Accept": "text/html", "Cookie": cookie})


async def test_each_session_cookie_is_scoped_to_its_own_area(shop):
    await make_staff(shop, "ann")
    await add_enterprise(shop, "ACME")
    await add_user(shop, "ACME", "ann", "admin")
    async with browser(shop) as client:
        _, console_flags = _set_cookie(await console_login(client, "ann"), "qy_console")
        _, portal_flags = _set_cookie(await portal_login(client, "ACME", "ann"), "qy_portal")
    for flags, path in ((console_flags, "/console"), (portal_flags, "/portal")):
        assert f"path={path}" in flags and "httponly" in flags and "samesite=lax" in flags
        assert "max-age" not in flags and "expires" not in flags  # the server ends the session


async def test_a_browser_logged_in_to_both_areas_keeps_them_apart(shop):
    client, _, _ = await _both_logged_in(shop)
    assert (await client.get("/console/account")).status_code == 200
    assert (await client.get("/portal/account")).status_code == 200
    # Logging out of the portal ends the portal session only.
    out = await post_form(client, "/portal/logout")
    assert out.headers["location"] == "/portal/login?m=out"
    assert (await client.get("/portal/account")).headers["location"] == "/portal/login?next=/portal/account"
    assert (await client.get("/console/account")).status_code == 200
    await client.aclose()


async def test_a_portal_token_never_opens_the_console_nor_a_console_token_the_portal(shop):
    client, console_token, portal_token = await _both_logged_in(shop)
    await client.aclose()
    async with _stranger(shop, f"qy_console={portal_token}") as swapped:
        answer = await swapped.get("/console/account")
        assert answer.status_code == 303 and answer.headers["location"] == "/console/login?next=/console/account"
    async with _stranger(shop, f"qy_portal={console_token}") as swapped:
        answer = await swapped.get("/portal/account")
        assert answer.status_code == 303 and answer.headers["location"] == "/portal/login?next=/portal/account"
    # Each token still opens its own area.
    async with _stranger(shop, f"qy_console={console_token}") as own:
        assert (await own.get("/console/account")).status_code == 200
    async with _stranger(shop, f"qy_portal={portal_token}") as own:
        assert (await own.get("/portal/account")).status_code == 200


async def test_an_enterprise_users_password_does_not_open_the_console(shop):
    await add_enterprise(shop, "ACME")
    await add_user(shop, "ACME", "eve", "admin")
    async with browser(shop) as client:
        refused = await console_login(client, "eve", PASSWORD)
        assert refused.status_code == 401
        assert "qy_console=" not in ";".join(refused.headers.get_list("set-cookie"))
        assert (await client.get("/console/account")).status_code == 303
