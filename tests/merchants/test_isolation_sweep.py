"""Tenant isolation sweep (租户隔离): EVERY admin route of the app, found by walking the app's routes, is tried by
merchant A's staff against merchant B's objects (and every console page, see console_sweep.py).

- Platform-only routes (they depend on PlatformAdminDep) answer A with 403 `platform_only`.
- Every other admin route must take the caller's scope (ScopeDep) or be listed in SHARED with a reason.
- A route with a path parameter answers A exactly as it answers for an object that does not exist (404, same
  code): B's ids are never confirmed. The platform, asking the same read routes, finds B's objects (200), so the
  404 is the scope at work and not a broken URL.
- A listing shows A none of B's objects; a create naming B is refused like an unknown merchant.
- Afterwards B's objects are as they were: nothing A sent changed them.

A new admin route fails this test until it is scoped and has an example request below (REQUESTS / CREATES).
"""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import pytest
from fastapi.routing import iter_route_contexts
from sqlalchemy import func, select

from merchants.console_sweep import leave_audit_trail, sweep_console
from merchants.support import Tenant, admit, furnish, shared_category
from quanyi import deps
from quanyi.catalog.models import Product, Sku
from quanyi.coupons.models import Coupon
from quanyi.inventory.models import CardKey, ImportBatch
from quanyi.merchants.models import CommissionRule, MerchantStatement, Withdrawal
from quanyi.notifications.models import OutboxMessage
from quanyi.orders.models import Order
from quanyi.refunds.models import Refund
from quanyi.staff.models import StaffUser
from quanyi.suppliers.models import SkuSupplierMapping, Supplier
from quanyi.suppliers.sync_models import SkuPricePolicy

ADMIN_PREFIXES = ("/api/admin/",)
# Admin routes that read only what every merchant shares (platform categories); nothing owned to leak.
SHARED = {("GET", "/api/admin/categories")}
TODAY = dt.date.today().isoformat()

# Example request parts per route, so a request reaches the service (an invalid body would stop at 422 first).
REQUESTS: dict[tuple[str, str], dict[str, Any]] = {
    ("PATCH", "/api/admin/products/{product_id}"): {"json": {"name": "renamed by A"}},
    ("POST", "/api/admin/products/{product_id}/skus"): {"json": {"code": "SWEEP-NEW", "name": "x", "price_cents": 1}},
    ("PATCH", "/api/admin/skus/{sku_id}"): {"json": {"price_cents": 1}},
    ("POST", "/api/admin/skus/{sku_id}/card-keys/import"): {"files": {"file": ("k.txt", b"SWEEP-CODE-0001\n")}},
    ("POST", "/api/admin/skus/{sku_id}/shared-codes"): {"json": {"code": "SWEEP-SHARED-01", "sale_limit": 2}},
    ("PATCH", "/api/admin/skus/{sku_id}/shared-codes/{shared_code_id}"): {"json": {"sale_limit": 9}},
    ("POST", "/api/admin/batches/{batch_id}/void"): {"json": {"reason": "voided by A"}},
    ("POST", "/api/admin/card-keys/{card_key_id}/reveal"): {"json": {"reason": "ticket 4711: sweep test"}},
    ("POST", "/api/admin/orders/{order_no}/refunds"): {"json": {"reason": "by A", "amount_cents": 1}},
    ("POST", "/api/admin/refunds/{refund_no}/withdraw"): {"json": {"reason": "by A"}},
    ("PATCH", "/api/admin/suppliers/{code}"): {"json": {"name": "renamed by A"}},
    ("POST", "/api/admin/skus/{sku_id}/supplier-mappings"): {"json": {"supplier_code": "<A>", "product_code": "P100"}},
    ("PATCH", "/api/admin/supplier-mappings/{mapping_id}"): {"json": {"priority": 1, "enabled": False}},
    ("PUT", "/api/admin/skus/{sku_id}/price-policy"): {"json": {"policy": "reprice", "margin_floor_cents": 5000}},
    ("POST", "/api/admin/ledger/suppliers/{code}/top-ups"): {"json": {"amount_cents": 100, "note": "by A"}},
    ("GET", "/api/admin/ledger/suppliers/{code}/statement"): {"params": {"period": TODAY}},
    ("GET", "/api/admin/ledger/suppliers/{code}/statement.csv"): {"params": {"period": TODAY}},
    ("GET", "/api/admin/ledger/suppliers/{code}/reconciliation"): {"params": {"period": TODAY}},
    ("POST", "/api/admin/risk/reviews/{order_no}/approve"): {"json": {"reason": "approved by A"}},
    ("POST", "/api/admin/risk/reviews/{order_no}/reject"): {"json": {"reason": "rejected by A"}},
    ("PATCH", "/api/admin/merchants/{code}"): {"json": {"commission_bps": 0}},
    ("POST", "/api/admin/merchants"): {"json": {"code": "sweep-new", "name": "x"}},
    ("PUT", "/api/admin/payment-gateways/{gateway_name}"): {"json": {"enabled": False, "config": {}}},
    ("GET", "/api/admin/reconciliation"): {"params": {"date": TODAY}},
    ("POST", "/api/admin/categories"): {"json": {"slug": "sweep", "name": "x"}},
    ("PATCH", "/api/admin/categories/{category_id}"): {"json": {"name": "x"}},
    ("PUT", "/api/admin/ledger/share-rules"): {"json": {"merchant_code": "", "merchant_bps": 0, "distributor_bps": 0}},
    ("POST", "/api/admin/risk/rules"): {"json": {"name": "x", "kind": "new_account", "params": {}, "action": "allow"}},
    ("PATCH", "/api/admin/risk/rules/{rule_id}"): {"json": {"enabled": False}},
    ("PUT", "/api/admin/risk/policy"): {"json": {"challenge_at": 50, "review_at": 80, "deny_at": 120}},
    ("PUT", "/api/admin/merchants/{code}/commission-rules"): {"json": {"category_id": 1, "commission_bps": 0}},
    ("POST", "/api/admin/merchants/{code}/withdrawals"): {"json": {"amount_cents": 1}},
    ("POST", "/api/admin/merchants/{code}/statements"): {"json": {"period": "2026-01-01", "cycle": "daily"}},
    ("POST", "/api/admin/merchant-withdrawals/{withdrawal_no}/approve"): {"json": {"reason": "by A"}},
    ("POST", "/api/admin/merchant-withdrawals/{withdrawal_no}/reject"): {"json": {"reason": "by A"}},
    ("POST", "/api/admin/merchant-withdrawals/{withdrawal_no}/pay"): {"json": {"payout_reference": "by A"}},
    ("POST", "/api/admin/merchant-applications/{application_no}/approve"): {"json": {"reason": "x",
                                                                                     "commission_bps": 0}},
    ("POST", "/api/admin/merchant-applications/{application_no}/reject"): {"json": {"reason": "x"}},
    ("PUT", "/api/admin/staff/{username}/roles"): {"json": {"roles": []}},
    ("PATCH", "/api/admin/coupons/{coupon_id}"): {"json": {"active": False}},
    ("POST", "/api/admin/coupons/{coupon_id}/issue"): {"json": {"member_ids": [1]}},
    ("POST", "/api/admin/coupons/{coupon_id}/code-batches"): {"json": {"count": 1}},
}


def creates(a: Tenant, b: Tenant) -> dict[tuple[str, str], tuple[dict[str, Any], int]]:
    """Admin routes without path parameters that write: a request naming B's things, and the expected status."""
    return {
        ("POST", "/api/admin/products"): ({"json": {"merchant_code": b.code, "category_id": 1, "slug": "a-for-b",
                                                    "name": "x", "skus": []}}, 404),
        ("POST", "/api/admin/suppliers"): ({"json": {"merchant_code": b.code, "code": "A-FOR-B", "name": "x",
                                                     "dialect": "quanyi", "base_url": "http://127.0.0.1:9/",
                                                     "credentials": {"app_id": "x", "secret": "y"}}}, 404),
        ("POST", "/api/admin/staff"): ({"json": {"username": "a-for-b", "password": "correct horse battery",
                                                 "merchant_code": b.code}}, 404),
        ("POST", "/api/admin/coupons"): ({"json": {"merchant_code": b.code, "name": "x", "kind": "amount_off",
                                                   "amount_off_cents": 1, "distribution": "claim",
                                                   "starts_at": "2026-01-01T00:00:00Z",
                                                   "ends_at": "2036-01-01T00:00:00Z"}}, 404),
        # A streamed import into B's SKU: the SKU is not found (before a byte of the file is read).
        ("POST", "/api/admin/imports"): ({"params": {"sku_id": b.sku_id}, "content": b"SWEEP-CODE-0002\n"}, 404),
        # A trace finds only A's keys: B's codes are "not found", and are not marked leaked.
        ("POST", "/api/admin/leaks/trace"): ({"json": {"codes": b.codes[:2]}}, 200),
    }


def _calls(dependant: Any) -> set[Any]:
    found = {dependant.call}
    for sub in dependant.dependencies:
        found |= _calls(sub)
    return found


def admin_routes(app: Any) -> list[Any]:
    """Every admin route of the app, with its full path and dependency tree (through included routers)."""
    return [r for r in iter_route_contexts(app.routes)
            if (r.path or "").startswith(ADMIN_PREFIXES) and getattr(r, "dependant", None) is not None]


def _value(route: str, name: str, owner: Tenant, *, missing: bool = False) -> str:
    if name == "code":
        if route.startswith("/api/admin/merchants/{code}"):
            return "no-such-shop" if missing else owner.code
        return "NO-SUCH-SUP" if missing else owner.supplier_code
    if name == "order_no":
        return "261231ZZZZZZZZ" if missing else owner.order_no if "/refunds" in route else owner.held_order_no
    if name == "refund_no":
        return "RF" + "Z" * 18 if missing else owner.refund_no
    if name == "withdrawal_no":
        return "WD" + "Z" * 16 if missing else owner.withdrawal_no
    if name == "statement_no":
        return "ST" + "Z" * 14 if missing else owner.statement_no
    if name == "application_no":
        return "MA" + "Z" * 16
    if name == "username":
        return "no-such-staff" if missing else f"{owner.code}-staff"
    if name == "batch_id" and route.startswith("/api/admin/coupons/"):
        return str(2_147_480_000 if missing else owner.coupon_batch_id)
    ids = {"product_id": owner.product_id, "sku_id": owner.sku_id, "batch_id": owner.batch_id,
           "coupon_id": owner.coupon_id, "import_id": owner.import_id,
           "card_key_id": owner.card_key_id, "mapping_id": owner.mapping_id, "message_id": owner.message_id,
           "category_id": 1, "rule_id": 1}
    if name in ids:
        return str(2_147_480_000 if missing else ids[name])
    if name == "purchase_no":  # enterprise purchases (platform-only routes)
        return "EP" + "Z" * 16
    if name == "link_id":
        return "2147480000"
    if name == "shared_code_id":  # under {sku_id}: B's SKU is not found first
        return "2147480000"
    if name == "contact_id":
        return "2147480000"
    if name == "member_id":  # members' points and level (platform-only routes; members are platform-wide)
        return "2147480000"
    if name == "campaign_no":  # enterprise benefit campaigns (platform-only routes)
        return "BC" + "Z" * 12
    if name == "request_no":  # enterprise top-up requests (platform-only routes)
        return "TU" + "Z" * 12
    if name == "provider":  # an enterprise's WeCom / DingTalk sign-in app
        return "wecom"
    if name == "gateway_name":
        return "sandbox"
    if name == "sku_code":  # reseller price lists (platform-only routes)
        return "NO-SUCH-SKU" if missing else "SWEEP-SKU"
    raise AssertionError(f"the isolation sweep does not know path parameter {name!r} ({route}): teach _value")


def _url(route: Any, owner: Tenant, *, missing: bool = False) -> str:
    names = route.param_convertors.keys()
    return route.path.format(**{n: _value(route.path, n, owner, missing=missing) for n in names})


def _request(route: Any, method: str, a: Tenant) -> dict[str, Any]:
    parts = dict(REQUESTS.get((method, route.path), {}))
    if "json" in parts and parts["json"].get("supplier_code") == "<A>":
        parts["json"] = {**parts["json"], "supplier_code": a.supplier_code}
    return parts


@pytest.fixture
async def world(shop):
    category = await shared_category(shop)
    a = await furnish(shop, await admit(shop, "merchant-a", hold_days=0), category)
    b = await furnish(shop, await admit(shop, "merchant-b", hold_days=0), category)
    await leave_audit_trail(shop, b)
    for tenant in (a, b):  # a finished streamed import job each
        answer = await shop.client.post("/api/admin/imports", headers=tenant.headers, params={"sku_id": tenant.sku_id},
                                        content=f"{tenant.code}-streamed-0001\n".encode())
        assert answer.status_code == 202, answer.text
        tenant.import_id = answer.json()["id"]
        while (await shop.client.get(f"/api/admin/imports/{tenant.import_id}",
                                     headers=tenant.headers)).json()["status"] in ("queued", "running"):
            await asyncio.sleep(0.01)
    return a, b


async def _state(shop, b: Tenant) -> dict[str, Any]:
    async with shop.ctx.db.read_session() as session:
        return {
            "product": await session.scalar(select(Product.name).where(Product.id == b.product_id)),
            "sku": await session.scalar(select(Sku.price_cents).where(Sku.id == b.sku_id)),
            "batch": await session.scalar(select(ImportBatch.voided_at).where(ImportBatch.id == b.batch_id)),
            "keys": (await session.execute(select(CardKey.status, func.count()).where(
                CardKey.merchant_id == b.merchant_id, CardKey.leaked_at.is_(None)).group_by(CardKey.status))).all(),
            "supplier": (await session.execute(select(Supplier.name, Supplier.balance_cents).where(
                Supplier.code == b.supplier_code))).one(),
            "mapping": (await session.execute(select(SkuSupplierMapping.priority, SkuSupplierMapping.enabled).where(
                SkuSupplierMapping.id == b.mapping_id))).one(),
            "policy": await session.scalar(select(SkuPricePolicy.margin_floor_cents).where(
                SkuPricePolicy.sku_id == b.sku_id)),
            "message": await session.scalar(select(OutboxMessage.status).where(OutboxMessage.id == b.message_id)),
            "orders": (await session.execute(select(Order.order_no, Order.status).where(
                Order.merchant_id == b.merchant_id).order_by(Order.id))).all(),
            "refunds": await session.scalar(select(func.count()).select_from(Refund).join(
                Order, Order.id == Refund.order_id).where(Order.merchant_id == b.merchant_id)),
            "skus": await session.scalar(select(func.count()).select_from(Sku).where(Sku.merchant_id == b.merchant_id)),
            "withdrawals": (await session.execute(select(Withdrawal.withdrawal_no, Withdrawal.status).where(
                Withdrawal.merchant_id == b.merchant_id))).all(),
            "statements": await session.scalar(select(func.count()).select_from(MerchantStatement).where(
                MerchantStatement.merchant_id == b.merchant_id)),
            "commission": await session.scalar(select(func.count()).select_from(CommissionRule)),
            "coupon": (await session.execute(select(Coupon.active, Coupon.taken_count).where(
                Coupon.id == b.coupon_id))).one(),
            "staff": (await session.execute(select(StaffUser.username, StaffUser.roles, StaffUser.active).where(
                StaffUser.merchant_id == b.merchant_id))).all(),
        }


async def test_merchant_staff_get_404_for_every_other_merchants_object_on_every_admin_route(shop, app, world):
    a, b = world
    before = await _state(shop, b)
    routes = admin_routes(app)
    assert len(routes) > 40  # the walk found the admin API
    unclassified, checked = [], 0
    for route in routes:
        calls = _calls(route.dependant)
        for method in sorted(route.methods or ()):
            key = (method, route.path)
            platform_only = deps._require_platform_admin in calls
            if not platform_only and deps._scope not in calls and key not in SHARED:
                unclassified.append(key)
                continue
            parts = _request(route, method, a)
            if platform_only:
                url = _url(route, b) if route.param_convertors else route.path
                answer = await shop.client.request(method, url, headers=a.headers, **parts)
                assert answer.status_code == 403 and answer.json()["code"] == "platform_only", (key, answer.text)
            elif route.param_convertors:
                theirs = await shop.client.request(method, _url(route, b), headers=a.headers, **parts)
                nothing = await shop.client.request(method, _url(route, b, missing=True), headers=a.headers, **parts)
                assert theirs.status_code == 404, (key, theirs.status_code, theirs.text)
                assert (theirs.status_code, theirs.json()["code"]) == (nothing.status_code, nothing.json()["code"]), key
                if method == "GET":  # the platform sees B's object at the same URL: the 404 is the scope
                    seen = await shop.client.request(method, _url(route, b), headers=shop.admin, **parts)
                    assert seen.status_code == 200, (key, seen.text)
            elif method == "GET":
                listing = await shop.client.get(route.path, headers=a.headers, **parts)
                assert listing.status_code == 200, (key, listing.text)
                for marker in b.markers():
                    assert marker not in listing.text.replace(" ", ""), (key, marker)
            else:
                request, status = creates(a, b).get(key, (None, None))
                assert request is not None, f"add a create-under-B request for {key} to the isolation sweep"
                answer = await shop.client.request(method, route.path, headers=a.headers, **request)
                assert answer.status_code == status, (key, answer.text)
                if key == ("POST", "/api/admin/leaks/trace"):
                    assert answer.json()["found"] == 0
            checked += 1
    assert not unclassified, f"admin routes that neither take ScopeDep nor are platform-only: {unclassified}"
    assert checked == sum(len(r.methods or ()) for r in routes)
    assert await sweep_console(shop, app, a, b) > 15  # the console pages too (tests/merchants/console_sweep.py)
    assert await _state(shop, b) == before
    await _platform_sees_all_and_merchants_their_own(shop, a, b)


async def _platform_sees_all_and_merchants_their_own(shop, a: Tenant, b: Tenant) -> None:
    everything = (await shop.client.get("/api/admin/products", headers=shop.admin)).json()
    assert {p["merchant_id"] for p in everything} >= {a.merchant_id, b.merchant_id}
    mine = (await shop.client.get("/api/admin/products", headers=a.headers)).json()
    assert {p["merchant_id"] for p in mine} == {a.merchant_id}
    merchants = (await shop.client.get("/api/admin/merchants", headers=a.headers)).json()
    assert [m["code"] for m in merchants] == [a.code]
    for tenant in (a, b):  # each merchant's staff do see and work on their own objects
        stock = await shop.client.get(f"/api/admin/skus/{tenant.sku_id}/stock", headers=tenant.headers)
        assert stock.status_code == 200 and stock.json()["sold"] >= 2
        refunds = await shop.client.get(f"/api/admin/orders/{tenant.order_no}/refunds", headers=tenant.headers)
        assert refunds.status_code == 200
