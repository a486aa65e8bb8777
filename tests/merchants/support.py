"""Two merchants on one platform, each with one of everything a merchant owns, made through the real API as
each merchant's own staff (so creation under a merchant's scope is exercised too), plus the few rows that only
background work writes (dead messages, risk decisions), inserted directly."""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select, update

from helpers import Shop, random_code
from quanyi.catalog import service as catalog_service
from quanyi.catalog.schemas import CategoryCreate
from quanyi.inventory.models import CardKey
from quanyi.ledger import service as ledger_service
from quanyi.merchants import service as merchants_service
from quanyi.merchants import statements
from quanyi.merchants.schemas import MerchantCreate
from quanyi.notifications import service as notifications_service
from quanyi.notifications.models import Channel, Kind, OutboxMessage
from quanyi.orders.models import Order, OrderEvent
from quanyi.orders.state import OrderStatus
from quanyi.risk.models import ReviewAction, RiskDecisionLog
from quanyi.shoptime import shop_day, zone_of
from quanyi.staff import service as staff_service
from quanyi.staff.models import StaffSession, StaffUser
from quanyi.suppliers.adapter import ProductKind
from quanyi.suppliers.models import Supplier, SupplierProduct
from quanyi.suppliers.sync_models import PriceChangeAction, SkuPriceChange

PASSWORD = "correct horse battery"


@dataclass
class Tenant:
    """One merchant's objects, and its staff member's bearer header."""

    code: str
    merchant_id: int = 0
    headers: dict[str, str] = field(default_factory=dict)
    product_id: int = 0
    slug: str = ""
    sku_id: int = 0
    sku_code: str = ""
    batch_id: int = 0
    card_key_id: int = 0
    codes: list[str] = field(default_factory=list)
    order_no: str = ""
    held_order_no: str = ""
    refund_no: str = ""
    supplier_code: str = ""
    mapping_id: int = 0
    message_id: int = 0
    withdrawal_no: str = ""
    statement_no: str = ""
    coupon_id: int = 0
    coupon_batch_id: int = 0
    import_id: int = 0  # a streamed import job (the isolation sweep makes one)

    def markers(self) -> list[str]:
        """Strings that identify this merchant's objects in any listing."""
        return [self.slug, self.sku_code, self.order_no, self.held_order_no, self.refund_no, self.supplier_code,
                self.withdrawal_no, self.statement_no, f"{self.code}-staff", f"{self.code}-coupon",
                f'"merchant_id":{self.merchant_id}',
                f'"code":"{self.code}"']


async def admit(shop: Shop, code: str, *, commission_bps: int = 1000, permissions: tuple[str, ...] = ("admin",),
                username: str | None = None, hold_days: int | None = None) -> Tenant:
    """A merchant and one staff member of it with an open session (made directly: argon2 hashing and login are
    slow by design and are tested in tests/staff and test_merchant_staff_login)."""
    async with shop.ctx.db.transaction() as session:
        merchant = await merchants_service.create_merchant(session=session, data=MerchantCreate(
            code=code, name=f"Shop {code}", commission_bps=commission_bps, hold_days=hold_days))
        user = StaffUser(username=username or f"{code}-staff", password_hash="", merchant_id=merchant.id,
                         permissions=" ".join(permissions))
        session.add(user)
        await session.flush()
        token = "qs_" + secrets.token_urlsafe(32)
        now = dt.datetime.now(dt.UTC)
        session.add(StaffSession(token_hash=staff_service.hash_token(token), staff_id=user.id, created_at=now,
                                 expires_at=now + dt.timedelta(hours=1)))
    return Tenant(code=code, merchant_id=merchant.id, headers={"Authorization": f"Bearer {token}"})


async def login(shop: Shop, username: str) -> dict[str, str]:
    response = await shop.client.post("/api/staff/login", json={"username": username, "password": PASSWORD})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['token']}"}


async def shared_category(shop: Shop) -> int:
    async with shop.ctx.db.transaction() as session:
        category = await catalog_service.create_category(session=session, data=CategoryCreate(
            slug="shared-cards", name="Gift cards"))
        return category.id


async def stock_up(shop: Shop, tenant: Tenant, category_id: int, *, price_cents: int = 1000, keys: int = 6,
                   unit_cost_cents: int | None = None) -> None:
    """A product with one card-key SKU and `keys` imported keys, made by the merchant's own staff."""
    code = tenant.code.upper().replace("-", "")
    response = await shop.client.post("/api/admin/products", headers=tenant.headers, json={
        "category_id": category_id, "slug": f"{tenant.code}-card", "name": f"{tenant.code} card",
        "skus": [{"code": f"{code}-SKU", "name": "100", "price_cents": price_cents}]})
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["merchant_id"] == tenant.merchant_id
    tenant.product_id, tenant.slug = body["id"], body["slug"]
    tenant.sku_id, tenant.sku_code = body["skus"][0]["id"], body["skus"][0]["code"]
    tenant.codes = [random_code() for _ in range(keys)]
    data = {"source_name": f"{tenant.code} invoice"}
    if unit_cost_cents is not None:
        data["unit_cost_cents"] = str(unit_cost_cents)
    response = await shop.client.post(f"/api/admin/skus/{tenant.sku_id}/card-keys/import", headers=tenant.headers,
                                      files={"file": ("keys.txt", "\n".join(tenant.codes).encode())}, data=data)
    assert response.status_code == 201, response.text
    tenant.batch_id = response.json()["batch_id"]
    async with shop.ctx.db.read_session() as session:
        tenant.card_key_id = await session.scalar(select(CardKey.id).where(CardKey.batch_id == tenant.batch_id)
                                                  .order_by(CardKey.id.desc()).limit(1))


async def buy(shop: Shop, tenant: Tenant, quantity: int = 1, contact: str = "buyer@example.com", *,
              refundable: bool = False) -> dict[str, Any]:
    order = await shop.create_order(tenant.sku_id, quantity, contact=contact)
    if refundable:
        await shop.pay_via_cashier(order)  # the sandbox holds a real trade, so refunds of it can be paid out
    else:
        await shop.pay(order)
    return order


async def refund(shop: Shop, tenant: Tenant, order_no: str, **body: Any) -> dict[str, Any]:
    response = await shop.client.post(f"/api/admin/orders/{order_no}/refunds", headers=tenant.headers,
                                      json={"reason": "customer asked", **body})
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


async def furnish(shop: Shop, tenant: Tenant, category_id: int) -> Tenant:
    """Everything a merchant owns, one each: see Tenant."""
    await stock_up(shop, tenant, category_id)
    tenant.order_no = (await buy(shop, tenant))["order_no"]
    refunded = await buy(shop, tenant, refundable=True)
    tenant.refund_no = (await refund(shop, tenant, refunded["order_no"], quantity=1))["refund_no"]
    tenant.held_order_no = (await buy(shop, tenant))["order_no"]
    tenant.supplier_code = f"{tenant.code.upper()}-SUP"
    response = await shop.client.post("/api/admin/suppliers", headers=tenant.headers, json={
        "code": tenant.supplier_code, "name": f"{tenant.code} supplier", "dialect": "quanyi",
        "base_url": "http://127.0.0.1:9/", "credentials": {"app_id": "QY1", "secret": "s3cret-s3cret"}})
    assert response.status_code == 201, response.text
    assert response.json()["merchant_id"] == tenant.merchant_id
    now = dt.datetime.now(dt.UTC)
    async with shop.ctx.db.transaction() as session:
        supplier_id = await session.scalar(select(Supplier.id).where(Supplier.code == tenant.supplier_code))
        session.add(SupplierProduct(supplier_id=supplier_id, product_code="P100", name="card 100",
                                    kind=ProductKind.CARD_KEY, face_value_cents=10000, cost_cents=500, stock=50,
                                    last_synced_at=now))
        session.add(SkuPriceChange(sku_id=tenant.sku_id, action=PriceChangeAction.REPRICED, old_price_cents=1000,
                                   new_price_cents=1000, reason=f"{tenant.sku_code} test change", created_at=now))
        held = await session.scalar(select(Order).where(Order.order_no == tenant.held_order_no))
        session.add(OrderEvent(order_id=held.id, from_status=held.status.value, to_status="under_review",
                               reason="test hold", created_at=now))
        await session.execute(update(Order).where(Order.id == held.id).values(status=OrderStatus.UNDER_REVIEW))
        session.add(RiskDecisionLog(stage="payment", order_id=held.id, decision="review", score=90, rules_hit=[],
                                    signals={"sku_id": tenant.sku_id}, outcome="held", created_at=now))
        session.add(ReviewAction(order_id=held.id, action="approve", actor=f"{tenant.code}-staff",
                                 reason=f"{tenant.held_order_no} looked fine", created_at=now))
        await notifications_service.enqueue(
            session=session, channel=Channel.EMAIL, recipient="buyer@example.com", kind=Kind.ORDER_DELIVERED,
            locale="zh-CN", payload={"order_no": tenant.order_no}, dedupe_key=f"test:{tenant.order_no}",
            merchant_id=tenant.merchant_id)
        tenant.message_id = await session.scalar(select(OutboxMessage.id).where(
            OutboxMessage.dedupe_key == f"test:{tenant.order_no}"))
        await session.execute(update(OutboxMessage).where(OutboxMessage.id == tenant.message_id)
                              .values(status="dead"))
    response = await shop.client.post(f"/api/admin/skus/{tenant.sku_id}/supplier-mappings", headers=tenant.headers,
                                      json={"supplier_code": tenant.supplier_code, "product_code": "P100"})
    assert response.status_code == 201, response.text
    tenant.mapping_id = response.json()["id"]
    response = await shop.client.put(f"/api/admin/skus/{tenant.sku_id}/price-policy", headers=tenant.headers,
                                     json={"policy": "off_sale", "margin_floor_cents": 1})
    assert response.status_code == 200, response.text
    response = await shop.client.post(f"/api/admin/merchants/{tenant.code}/withdrawals", headers=tenant.headers,
                                      json={"amount_cents": 100})
    assert response.status_code == 201, response.text
    tenant.withdrawal_no = response.json()["withdrawal_no"]
    response = await shop.client.post("/api/admin/coupons", headers=tenant.headers, json={
        "name": f"{tenant.code}-coupon", "kind": "amount_off", "amount_off_cents": 100, "distribution": "codes",
        "starts_at": now.isoformat(), "ends_at": (now + dt.timedelta(days=30)).isoformat()})
    assert response.status_code == 201, response.text
    tenant.coupon_id = response.json()["id"]
    response = await shop.client.post(f"/api/admin/coupons/{tenant.coupon_id}/code-batches", headers=tenant.headers,
                                      json={"count": 2})
    assert response.status_code == 201, response.text
    tenant.coupon_batch_id = response.json()["id"]
    await ledger_service.post_all_deferred(shop.ctx.db)
    async with shop.ctx.db.transaction() as session:  # a statement of today, issued as if the day were over
        merchant = await merchants_service.get_merchant(session=session, code=tenant.code)
        # The shop's day, not UTC's: after 16:00 UTC it is already tomorrow in Asia/Shanghai.
        issued = await statements.issue_statements(session=session, merchant=merchant,
                                                   day=shop_day(now, zone_of(session)), cycle="daily",
                                                   actor="test", now=now + dt.timedelta(days=2))
        tenant.statement_no = issued[0].statement_no
    return tenant
