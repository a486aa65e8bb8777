"""The merchant and reseller pages an operator reads after a purchase, a refund and a payout say their records in
Chinese: a merchant's status, a supplier product's kind and sync, a reseller order's timeline (why it moved, the
refund's status and why, its callbacks, where the keys were viewed, the prepaid balance as the payment's gateway),
the ledger's memos and accounts; machine codes (account codes, order and refund numbers) stay beside them.
Data staff typed (names, reasons) is shown as typed."""

from __future__ import annotations

import html
import re

import pytest
from sqlalchemy import select

from console.support import logged_in
from helpers import make_settings
from merchants.support import admit, furnish, shared_category
from quanyi.ledger.models import LedgerAccount
from quanyi.orders.models import Order
from quanyi.suppliers.adapter import ProductKind
from quanyi.suppliers.attempt_state import AttemptState
from quanyi.suppliers.fulfilment_models import FulfilmentJob, JobStatus, SupplierAttempt
from quanyi.suppliers.models import SupplierProduct
from resellers.support import add_reseller

# Three English words in a row: a sentence the console did not say in Chinese.
_ENGLISH = re.compile(r"\b[A-Za-z]{3,} [a-z]{2,} [a-z]{2,}\b")
# What the tests' own staff typed (merchants.support.furnish), shown as typed.
_TYPED = ("customer asked", "test change", "looked fine")


@pytest.fixture
def settings(database_url: str):  # type: ignore[no-untyped-def]
    return make_settings(database_url, refund_revealed_keys=True)  # a reseller's viewed keys can be refunded


def _visible(page: str) -> list[str]:
    """The page's text nodes and the attributes a reader sees (placeholders, tooltips)."""
    page = re.sub(r"(?s)<(script|style)\b.*?</\1>", " ", page)
    found = [html.unescape(m.group(1)).strip() for m in re.finditer(r">([^<>]+)<", page)]
    found += [html.unescape(m.group(1)) for m in re.finditer(r'(?:placeholder|aria-label)="([^"]+)"', page)]
    return [text for text in found if text]


def _english(page: str) -> list[str]:
    return [text for text in _visible(page) if _ENGLISH.search(text) and not any(t in text for t in _TYPED)]


async def test_merchant_and_reseller_pages_say_their_records_in_chinese(shop):
    tenant = await furnish(shop, await admit(shop, "tea-house", hold_days=0), await shared_category(shop))
    for step, body in (("approve", {"reason": "资料齐全"}), ("pay", {"payout_reference": "ICBC-0001"})):
        paid = await shop.client.post(f"/api/admin/merchant-withdrawals/{tenant.withdrawal_no}/{step}",
                                      headers=shop.admin, json=body)
        assert paid.status_code == 200, paid.text
    sku = await shop.make_sku(code="GIFT-9", price_cents=900)
    await shop.stock(sku, 3)
    reseller = await add_reseller(shop, top_up_cents=5000)
    order = (await reseller.client.buy_card_keys("RF-1", "GIFT-9", quantity=2, max_unit_cost_cents=900))["order_no"]
    refunded = await shop.client.post(f"/api/admin/orders/{order}/refunds", headers=shop.admin,
                                      json={"quantity": 1, "reason": "卡密无法使用"})
    assert refunded.status_code == 201, refunded.text
    async with shop.ctx.db.transaction() as session:  # a supplier purchase for the held order, still unclear
        held = await session.scalar(select(Order).where(Order.order_no == tenant.held_order_no))
        product = await session.scalar(select(SupplierProduct).where(SupplierProduct.product_code == "P100"))
        job = FulfilmentJob(order_id=held.id, kind=ProductKind.CARD_KEY, status=JobStatus.OPEN,
                            last_error="supplier timeout")
        session.add(job)
        await session.flush()
        session.add(SupplierAttempt(job_id=job.id, order_id=held.id, supplier_id=product.supplier_id,
                                    supplier_product_id=product.id, product_code="P100", kind=ProductKind.CARD_KEY,
                                    idempotency_key="ATT-TEA-1", state=AttemptState.UNKNOWN, quantity=1,
                                    max_unit_cost_cents=500))
    client = await logged_in(shop, "olga", roles=("owner",))
    async with shop.ctx.db.read_session() as session:
        accounts = (await session.scalars(select(LedgerAccount.code))).all()

    pages = {path: await client.get(path) for path in (
        "/console/merchants", f"/console/merchants/{tenant.code}", "/console/merchants/withdrawals",
        "/console/merchants/applications", "/console/resellers", "/console/resellers/R001", f"/console/orders/{order}",
        f"/console/orders/{tenant.order_no}", f"/console/orders/{tenant.held_order_no}",
        f"/console/suppliers/{tenant.supplier_code}",
        f"/console/ledger/suppliers/{tenant.supplier_code}", f"/console/keys/batches/{tenant.batch_id}",
        "/console/ledger", *(f"/console/ledger/accounts/{code}" for code in accounts))}
    assert {path: page.status_code for path, page in pages.items() if page.status_code != 200} == {}
    assert {path: _english(page.text) for path, page in pages.items() if _english(page.text)} == {}

    def text(path: str) -> str:
        return " ".join(_visible(pages[path].text))

    assert "营业中" in text("/console/merchants") and ">active<" not in pages["/console/merchants"].text
    assert "佣金比例（%）" in text(f"/console/merchants/{tenant.code}")
    supplier = pages[f"/console/suppliers/{tenant.supplier_code}"].text
    assert 'data-testid="product-kind">卡密<' in supplier and 'data-testid="sync-source">拉取<' in supplier
    timeline = text(f"/console/orders/{order}")
    for said in ("状态 - → 待支付 下单", "（预存款，¥18.00）", "→ 退款申请中，操作人 admin 卡密无法使用",
                 "→ 成功，操作人 system 渠道已退款", "通知 发货通知（回调）：待发送", "通知 退款回调（回调）：待发送",
                 "买家查看卡密（开放接口）"):
        assert said in timeline, (said, timeline)
    # a merchant's held order: its risk decision by stage, decision and outcome (was "风控 payment：review（…，held）")
    held_page = text(f"/console/orders/{tenant.held_order_no}")
    assert "风控 支付：人工审核（分数 90，已拦截）" in held_page
    assert f"供应商 {tenant.supplier_code} 采购 ATT-TEA-1：结果未知，待查询（收到 0 个卡密）" in held_page
    assert "供应商履约任务：进行中" in held_page
    assert "渠道清算（渠道待结算） · 预存款" in text("/console/ledger")
    assert "预存款 支付单" in text("/console/ledger/accounts/customer_liability")
    assert "退款 " in text("/console/ledger/accounts/gateway_clearing:balance")
    assert "已由 预存款 退给买家" in text("/console/ledger/accounts/gateway_clearing:balance")
    payable = text(f"/console/ledger/accounts/merchant_payable:{tenant.code}")
    assert f"商户 {tenant.code} 的提现 {tenant.withdrawal_no} 已打款（ICBC-0001）" in payable


async def test_a_merchants_own_staff_read_their_pages_in_chinese(shop):
    """The same records as the merchant's owner sees them in the console (their own orders, stock, suppliers,
    notifications, staff, dashboard)."""
    from console.support import console_login
    from quanyi.staff import service as staff_service

    tenant = await furnish(shop, await admit(shop, "tea-house", hold_days=0), await shared_category(shop))
    async with shop.ctx.db.transaction() as session:
        await staff_service.create_staff(session=session, username="tea-owner", password="correct horse battery",
                                         roles=["merchant_owner"], merchant_id=tenant.merchant_id)
    assert (await console_login(shop.client, "tea-owner")).status_code == 303
    paths = ("/console/dashboard", "/console/orders", f"/console/orders/{tenant.order_no}",
             f"/console/orders/{tenant.held_order_no}", "/console/keys", f"/console/keys/skus/{tenant.sku_id}",
             f"/console/keys/batches/{tenant.batch_id}", "/console/suppliers",
             f"/console/suppliers/{tenant.supplier_code}", f"/console/ledger/suppliers/{tenant.supplier_code}",
             "/console/notifications", "/console/reviews",
             "/console/staff", "/console/audit", "/console/catalog", "/console/coupons")
    pages = {path: await shop.client.get(path) for path in paths}
    assert {path: page.status_code for path, page in pages.items() if page.status_code != 200} == {}
    assert {path: _english(page.text) for path, page in pages.items() if _english(page.text)} == {}
