"""The console's access sweep: every console route the app serves (found from the app's routes, so pages added
later are covered too) refuses an anonymous visitor and a staff member whose permissions lack the one the
route names, and every route names one. The menu shows an entry only to those who may open it."""

from __future__ import annotations

import re

import pytest
from fastapi.routing import iter_route_contexts

from console.support import console_login, csrf_token, make_staff
from quanyi.console.auth import AUTHENTICATED
from quanyi.console.menu import MENU
from quanyi.console.routes import PUBLIC_ROUTES
from quanyi.staff import service as staff_service
from quanyi.staff.permissions import ADMIN, PERMISSIONS
from quanyi.web.csrf import require_csrf

# Routing and permissions do not depend on the database: one backend is enough.
pytestmark = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)

ORIGIN = {"Origin": "http://test"}


def _permission_of(route) -> str | None:  # type: ignore[no-untyped-def]
    """The permission `needs()` puts on a route (searched through its whole dependency tree)."""
    stack = list(route.dependant.dependencies)
    while stack:
        dependency = stack.pop()
        found = getattr(dependency.call, "console_permission", None)
        if found is not None:
            return str(found)
        stack.extend(dependency.dependencies)
    return None


def _effective_routes(app):  # type: ignore[no-untyped-def]
    """Every route as the app serves it (included routers flattened, with their prefixes and dependencies)."""
    return [route for route in iter_route_contexts(app.routes) if (route.path or "").startswith("/console")]


def _console_routes(app) -> list[tuple[str, str, str | None]]:
    routes = []
    for route in _effective_routes(app):
        for method in sorted((route.methods or set()) - {"HEAD"}):
            if (method, route.path) not in PUBLIC_ROUTES:
                routes.append((method, route.path, _permission_of(route)))
    return routes


def test_every_console_route_checks_forms_against_cross_site_requests(app):
    unchecked = [route.path for route in _effective_routes(app)
                 if require_csrf not in {dependency.call for dependency in route.dependant.dependencies}]
    assert unchecked == []


def _url(path: str) -> str:
    # Any value of the right shape: the checks come before the route looks anything up.
    return re.sub(r"\{[^}]+\}", "1", path)


async def _call(client, method: str, path: str, token: str):  # type: ignore[no-untyped-def]
    if method == "GET":
        return await client.get(_url(path))
    return await client.request(method, _url(path), data={"csrf_token": token}, headers=ORIGIN)


async def test_every_console_route_refuses_strangers_and_staff_without_its_permission(shop, app):
    routes = _console_routes(app)
    assert len(routes) >= 15, routes  # the sweep really sees the console
    # Among them every coupon action (create, change, pause, issue, code batches and their CSV, level-up gifts).
    coupon_actions = {(m, p) for m, p, _ in routes if p.startswith(("/console/coupons", "/console/level-gifts"))}
    assert coupon_actions >= {
        ("GET", "/console/coupons"), ("GET", "/console/coupons/new"), ("POST", "/console/coupons"),
        ("GET", "/console/coupons/{coupon_id}"), ("POST", "/console/coupons/{coupon_id}"),
        ("POST", "/console/coupons/{coupon_id}/active"), ("POST", "/console/coupons/{coupon_id}/issue"),
        ("POST", "/console/coupons/{coupon_id}/code-batches"),
        ("GET", "/console/coupons/{coupon_id}/code-batches/{code_batch_id}/codes.csv"),
        ("GET", "/console/level-gifts"), ("POST", "/console/level-gifts/{level_code}")}, coupon_actions
    # And the registering forms are swept like every other action (and need what the admin API needs).
    assert {("GET", "/console/suppliers/new", ADMIN), ("POST", "/console/suppliers", ADMIN),
            ("POST", "/console/suppliers/{supplier_code}/settings", ADMIN),
            ("POST", "/console/resellers", ADMIN), ("POST", "/console/merchants", ADMIN),
            ("POST", "/console/enterprises", ADMIN), ("POST", "/console/risk-rules/{rule_id}/delete", ADMIN),
            } <= set(routes)
    unguarded = [(m, p) for m, p, permission in routes if permission is None]
    assert not unguarded, f"console routes without needs(permission): {unguarded}"
    unknown = {permission for _, _, permission in routes} - PERMISSIONS.keys() - {AUTHENTICATED}
    assert not unknown

    client = shop.client
    anonymous_token = csrf_token((await client.get("/console/login")).text)
    for method, path, _ in routes:
        response = await _call(client, method, path, anonymous_token)
        assert response.status_code == 303, (method, path, response.status_code)
        assert response.headers["location"].startswith("/console/login"), (method, path)

    everything_but_admin = sorted(PERMISSIONS.keys() - {ADMIN})
    await make_staff(shop, "sweeper", permissions=tuple(everything_but_admin))
    assert (await console_login(client, "sweeper")).status_code == 303
    token = csrf_token((await client.get("/console/account")).text)
    for method, path, permission in routes:
        if permission in (AUTHENTICATED, None):
            continue
        # Every permission but the route's own (and admin, which holds them all): refused, nothing run.
        async with shop.ctx.db.transaction() as session:
            await staff_service.revoke(session=session, username="sweeper", permissions=[permission])
        refused = await _call(client, method, path, token)
        assert refused.status_code == 403, (method, path, permission, refused.status_code)
        assert 'data-testid="forbidden"' in refused.text
        async with shop.ctx.db.transaction() as session:
            await staff_service.grant(session=session, username="sweeper", permissions=[permission])
        if method == "GET" and "{" not in path and not path.endswith("/export"):
            assert (await client.get(path)).status_code == 200, path  # with it, the page opens
        if permission == ADMIN:  # platform configuration pages: admin holds every permission, take it back
            async with shop.ctx.db.transaction() as session:
                await staff_service.revoke(session=session, username="sweeper", permissions=[ADMIN])

    # A form posted without this session's token is refused even with every permission.
    forged = await client.post("/console/account/second-factor/start", data={"csrf_token": anonymous_token},
                               headers=ORIGIN)
    assert forged.status_code == 403 and "csrf_failed" in forged.text


async def test_the_menu_shows_an_entry_only_with_the_permission_its_page_needs(shop, app):
    by_path = {path: permission for method, path, permission in _console_routes(app) if method == "GET"}
    for item in MENU.values():
        assert by_path.get(item.href) == item.permission, item
    await make_staff(shop, "viewer", permissions=("orders.read",))
    await console_login(shop.client, "viewer")
    page = (await shop.client.get("/console/orders")).text
    shown = set(re.findall(r'data-menu="([a-z_]+)"', page))
    assert shown == {"orders"}
    home = await shop.client.get("/console")
    assert home.status_code == 303 and home.headers["location"] == "/console/orders"
