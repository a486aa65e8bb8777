"""The console half of the isolation sweep: every /console route of the app, tried by merchant A's staff (logged in
to the console) against merchant B's objects. Called by test_isolation_sweep with the same two merchants.

- A route with a path parameter answers A for B's object exactly as for one that does not exist.
- A page without one shows A nothing of B's (listings, dashboard, exports, the audit log).
- A leak trace of B's codes finds nothing and marks nothing.
- A platform-only page (platform configuration: gateways, risk rules, the platform's books, merchants, resellers)
  refuses A's staff outright (403), whatever they hold.
Routes about the staff member themself (login, logout, their account and second factor) hold no merchant data.
"""

from __future__ import annotations

import re
from typing import Any

import httpx
from fastapi.routing import iter_route_contexts
from sqlalchemy import select

from merchants.support import Tenant
from quanyi.staff import sessions as console_sessions
from quanyi.staff.audit import Actor, record_action
from quanyi.staff.models import StaffUser

# The staff member's own login and account: no merchant's objects behind them.
SELF = ("/console/login", "/console/logout", "/console/account")
# Platform configuration: a merchant's staff are refused (403) whatever they ask for.
PLATFORM_ONLY = ("/console/catalog/categories",)
VALUES = {"order_no": ("held_order_no", "261231ZZZZZZZZ"), "sku_id": ("sku_id", "2147480000"),
          "product_id": ("product_id", "2147480000"),
          "batch_id": ("batch_id", "2147480000"), "card_key_id": ("card_key_id", "2147480000"),
          "supplier_code": ("supplier_code", "NO-SUCH-SUP"), "mapping_id": ("mapping_id", "2147480000"),
          "message_id": ("message_id", "2147480000"), "username": ("@staff", "no-such-staff"),
          "import_id": ("import_id", "2147480000"), "coupon_id": ("coupon_id", "2147480000"),
          "code_batch_id": ("coupon_batch_id", "2147480000"), "refund_no": ("refund_no", "RF" + "Z" * 18)}
FORMS: dict[str, dict[str, str]] = {
    "/console/orders/{order_no}/deliver": {"codes": "SWEEP-CONSOLE-1", "note": "by A"},
    "/console/orders/{order_no}/refund": {"reason": "by A", "amount": "0.01"},
    "/console/orders/{order_no}/refunds/{refund_no}/withdraw": {"reason": "by A"},
    "/console/reviews/{order_no}/approve": {"reason": "by A"},
    "/console/reviews/{order_no}/reject": {"reason": "by A"},
    "/console/keys/batches/{batch_id}/void": {"reason": "by A"},
    "/console/keys/{card_key_id}/reveal": {"reason": "ticket 4711: sweep test"},
    "/console/catalog/products/{product_id}": {"name": "by A", "slug": "by-a", "category_id": "1"},
    "/console/catalog/products/{product_id}/skus": {"code": "BY-A-1", "name": "by A", "price": "0.01"},
    "/console/catalog/skus/{sku_id}": {"name": "by A", "price": "0.01"},
    "/console/suppliers/{supplier_code}/status": {"status": "disabled"},
    "/console/suppliers/{supplier_code}/settings": {"name": "by A", "base_url": "https://a.example",
                                                    "timeout_ms": "5000", "credit_limit": "0",
                                                    "settlement_cycle": "daily", "cred_app_id": "a",
                                                    "cred_secret": "by-a"},
    "/console/suppliers/{supplier_code}/top-up": {"amount": "1.00", "request_key": "sweep-by-a"},
    "/console/suppliers/{supplier_code}/mappings/{mapping_id}": {"priority": "1"},
    "/console/notifications/{message_id}/discard": {"reason": "by A"},
    "/console/staff/{username}/roles": {"roles": "merchant_support"},
    "/console/coupons/{coupon_id}": {"name": "by A", "starts_at": "2026-01-01T00:00", "ends_at": "2036-01-01T00:00"},
    "/console/coupons/{coupon_id}/active": {"active": "on"},
    "/console/coupons/{coupon_id}/issue": {"members": "1"},
    "/console/coupons/{coupon_id}/code-batches": {"count": "1"},
}


async def console_client(shop: Any, tenant: Tenant) -> httpx.AsyncClient:
    """A browser of `tenant`'s staff member, logged in to the console (session made directly: login is tested
    by the console's own tests)."""
    async with shop.ctx.db.read_session() as session:
        user = await session.scalar(select(StaffUser).where(StaffUser.username == f"{tenant.code}-staff"))
    token = await console_sessions.open_console_session(db=shop.ctx.db, user=user, hours=1, ip="", user_agent="",
                                                        second_factor_pending=False)
    client = httpx.AsyncClient(transport=shop.client._transport, base_url="http://test")  # noqa: SLF001
    client.cookies.set("qy_console", token, path="/console")
    return client


async def leave_audit_trail(shop: Any, tenant: Tenant) -> None:
    async with shop.ctx.db.transaction() as session:
        user = await session.scalar(select(StaffUser).where(StaffUser.username == f"{tenant.code}-staff"))
        await record_action(session=session, actor=Actor(name=user.username, staff_id=user.id), action="test",
                            object_type="order", object_id=tenant.order_no, summary=f"{tenant.sku_code} sweep")


async def _owner_of_product(shop: Any, slug: str) -> int | None:
    from quanyi.catalog.models import Product

    async with shop.ctx.db.read_session() as session:
        return await session.scalar(select(Product.merchant_id).where(Product.slug == slug))  # type: ignore[no-any-return]


async def _owner_of_supplier(shop: Any, code: str) -> int | None:
    from quanyi.suppliers.models import Supplier

    async with shop.ctx.db.read_session() as session:
        return await session.scalar(select(Supplier.merchant_id).where(Supplier.code == code))  # type: ignore[no-any-return]


def platform_only(route: Any) -> bool:
    """Does the route's console user dependency (auth.needs) refuse a merchant's staff?"""
    stack = list(route.dependant.dependencies)
    while stack:
        dependency = stack.pop()
        if getattr(dependency.call, "console_platform_only", False):
            return True
        stack.extend(dependency.dependencies)
    return False


def _url(path: str, owner: Tenant | None) -> str:
    def value(match: re.Match[str]) -> str:
        attribute, missing = VALUES[match.group(1)]
        if owner is None:
            return missing
        return f"{owner.code}-staff" if attribute == "@staff" else str(getattr(owner, attribute))
    return re.sub(r"\{(\w+)\}", value, path)


async def sweep_console(shop: Any, app: Any, a: Tenant, b: Tenant) -> int:
    """Every console route; returns how many were checked."""
    client = await console_client(shop, a)
    checked = 0
    try:
        token_page = await client.get("/console/account")
        assert token_page.status_code == 200, "A's staff member can use the console"
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', token_page.text).group(1)  # type: ignore[union-attr]
        routes = [r for r in iter_route_contexts(app.routes) if (r.path or "").startswith("/console")
                  and getattr(r, "dependant", None) is not None]
        assert len(routes) > 20
        swept = {r.path for r in routes}
        assert {"/console/coupons", "/console/coupons/{coupon_id}/issue", "/console/coupons/{coupon_id}/code-batches",
                "/console/coupons/{coupon_id}/code-batches/{code_batch_id}/codes.csv",
                "/console/level-gifts/{level_code}"} <= swept  # the coupon actions are among them
        for route in routes:
            if route.path.startswith(SELF):
                continue
            if route.path.startswith(PLATFORM_ONLY) or platform_only(route):
                for method in sorted(route.methods or ()):
                    extra = {"data": {"csrf_token": csrf, "name": "by A", "slug": "by-a"},
                             "headers": {"Origin": "http://test"}} if method == "POST" else {}
                    refused = await client.request(method, re.sub(r"\{\w+\}", "1", route.path), **extra)
                    assert refused.status_code == 403, (route.path, method, refused.status_code)
                    assert 'data-testid="forbidden"' in refused.text
                    checked += 1
                continue
            unknown = set(re.findall(r"\{(\w+)\}", route.path)) - VALUES.keys()
            assert not unknown, f"the console sweep does not know path parameter(s) {unknown} ({route.path})"
            for method in sorted(route.methods or ()):
                form = {**FORMS.get(route.path, {}), "csrf_token": csrf}
                extra = {"data": form, "headers": {"Origin": "http://test"}} if method == "POST" else {}
                if route.param_convertors:
                    theirs = await client.request(method, _url(route.path, b), **extra)
                    nothing = await client.request(method, _url(route.path, None), **extra)
                    assert theirs.status_code == nothing.status_code, (route.path, theirs.status_code,
                                                                        nothing.status_code)
                    assert theirs.status_code in (404, 422), (route.path, theirs.status_code, theirs.text[:300])
                    for marker in b.markers():
                        assert marker not in theirs.text, (route.path, marker)
                elif method == "GET":
                    page = await client.get(route.path)
                    assert page.status_code in (200, 303), (route.path, page.status_code)  # /console: a redirect
                    for marker in b.markers():
                        assert marker not in page.text, (route.path, marker)
                elif route.path == "/console/catalog/products":
                    made = await client.post(route.path, data={**form, "name": "by A", "slug": "made-by-a",
                                                               "category_id": "1", "merchant_code": b.code},
                                             headers={"Origin": "http://test"})
                    assert made.status_code in (303, 404), made.status_code  # never B's product
                    if made.status_code == 303:
                        owner = await _owner_of_product(shop, "made-by-a")
                        assert owner == a.merchant_id, owner
                elif route.path == "/console/staff":  # a staff member for B: refused like an unknown merchant
                    made = await client.post(route.path, data={**form, "username": "a-for-b", "merchant_code": b.code,
                                                               "password": "correct horse battery"},
                                             headers={"Origin": "http://test"})
                    assert made.status_code == 404, made.status_code
                elif route.path == "/console/coupons":  # a coupon for B: refused like an unknown merchant
                    made = await client.post(route.path, data={
                        **form, "name": "by A", "kind": "amount_off", "amount_off": "1", "distribution": "claim",
                        "starts_at": "2026-01-01T00:00", "ends_at": "2036-01-01T00:00", "merchant_code": b.code},
                        headers={"Origin": "http://test"})
                    assert made.status_code == 404, made.status_code
                elif route.path == "/console/suppliers":  # a supplier naming B: always A's own
                    made = await client.post(route.path, data={
                        **form, "dialect": "quanyi", "code": "MADE-BY-A", "name": "by A",
                        "base_url": "https://a.example", "cred_app_id": "a", "cred_secret": "a-secret",
                        "settlement_cycle": "daily", "status": "active", "currency": "CNY",
                        "merchant_code": b.code}, headers={"Origin": "http://test"})
                    assert made.status_code == 303, made.status_code
                    owner = await _owner_of_supplier(shop, "MADE-BY-A")
                    assert owner == a.merchant_id, owner
                elif route.path == "/console/catalog/guide-preview":
                    shown = await client.post(route.path, data={**form, "redemption_guide": "x"},
                                              headers={"Origin": "http://test"})
                    assert shown.status_code == 200  # renders the text it is given; reads nothing
                else:
                    assert route.path == "/console/keys/leaks", f"add a create-under-B check for {route.path}"
                    traced = await client.post(route.path, data={**form, "codes": "\n".join(b.codes), "mark": "on"},
                                               headers={"Origin": "http://test"})
                    assert traced.status_code == 200 and b.codes[0] not in traced.text
                checked += 1
    finally:
        await client.aclose()
    return checked
