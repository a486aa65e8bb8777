"""The pages an operator of merchants and resellers reads, in chromium against the demo shop after a reseller's
purchase and refund: the merchants' list and one merchant (status, commission in full-width brackets), the
reseller order's timeline, the trial balance's gateway accounts, a 循环卡密's key batch, and the enterprise portal's
statement (its memos said as the console says them). Every record in Chinese. Screenshots:
test-artifacts/screenshots/partner-*.png."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from console.test_console_browser import PASSWORD, _log_in
from live_shop import LiveShop, serve_demo_shop
from quanyi.catalog.models import Sku
from quanyi.demo_modes import DEMO_ENTERPRISE, SHARED_SKU
from quanyi.enterprises import users as enterprise_users
from quanyi.openapi_client import OpenApiClient
from quanyi.staff import service as staff_service
from web.test_browser import DESKTOP, _new_context, _shoot, _watch, browser, shots

pytestmark = pytest.mark.browser
__all__ = ["browser", "shots"]


@pytest.fixture(scope="module")
def partner_shop(sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveShop, dict]]:
    facts: dict[str, Any] = {}

    async def setup(ctx: Any) -> None:
        async with ctx.db.transaction() as session:
            await staff_service.create_staff(session=session, username="partners", password=PASSWORD,
                                             roles=["owner"])
            await enterprise_users.create_user(session=session, code=DEMO_ENTERPRISE, username="hana",
                                               password=PASSWORD, role="admin", actor="test")
            facts["shared_sku_id"] = await session.scalar(select(Sku.id).where(Sku.code == SHARED_SKU))

    with serve_demo_shop(sqlite_template, tmp_path_factory.mktemp("partner-browser"), setup=setup,
                         refund_revealed_keys=True) as live:
        admin = {"Authorization": f"Bearer {live.settings.admin_token.get_secret_value()}"}
        with httpx.Client(base_url=live.url, timeout=60) as http:
            made = http.post("/api/admin/resellers", headers=admin, json={
                "code": "R-TEA", "name": "茶饮分销", "contact_email": "ops@tea.example"})
            assert made.status_code == 201, made.text
            topped = http.post("/api/admin/resellers/R-TEA/top-ups", headers=admin,
                               json={"amount_cents": 50_000, "note": "对公转账"})
            assert topped.status_code == 201, topped.text
            client = OpenApiClient(f"{live.url}/api/open", app_id=made.json()["app_id"], secret=made.json()["secret"],
                                   http=http)
            order = client.buy_card_keys("TEA-1", "STAR-VIP-1M", quantity=2, max_unit_cost_cents=10_000)
            refunded = http.post(f"/api/admin/orders/{order['order_no']}/refunds", headers=admin,
                                 json={"quantity": 1, "reason": "卡密无法使用"})
            assert refunded.status_code == 201, refunded.text
        facts["order_no"] = order["order_no"]
        yield live, facts


def test_merchant_reseller_and_portal_pages_say_their_records_in_chinese(
        browser: Any, partner_shop: tuple[LiveShop, dict], shots: Path) -> None:
    from playwright.sync_api import expect

    shop, facts = partner_shop
    errors: list[str] = []
    context = _new_context(browser, shop, viewport=DESKTOP)
    page = context.new_page()
    _watch(page, errors)
    page.goto("/console/merchants")
    _log_in(page, "partners")
    expect(page.get_by_test_id("merchant-status").first).to_have_text("营业中")
    _shoot(page, shots, "partner-1-merchants")

    page.goto("/console/merchants/moonlight")
    expect(page.get_by_test_id("terms-form")).to_contain_text("佣金比例（%）")
    _shoot(page, shots, "partner-2-merchant")

    page.goto(f"/console/orders/{facts['order_no']}")
    timeline = page.get_by_test_id("timeline")
    for said in ("下单", "发起支付", "（预存款，", "→ 退款申请中", "→ 成功", "渠道已退款",
                 "通知 发货通知（回调）：待发送", "通知 退款回调（回调）：待发送"):
        expect(timeline).to_contain_text(said)
    for english in ("order placed", "refunded by the gateway", "requested", "succeeded", "webhook", "pending",
                    "balance"):
        assert english not in timeline.inner_text(), english
    expect(page.get_by_test_id("payment-gateway")).to_have_text("预存款 balance")  # the code small beside it
    _shoot(page, shots, "partner-3-reseller-order")

    page.goto("/console/ledger")
    expect(page.locator("body")).to_contain_text("渠道清算（渠道待结算） · 预存款")
    _shoot(page, shots, "partner-4-trial-balance")
    page.goto("/console/ledger/accounts/customer_liability")
    expect(page.get_by_test_id("memo").filter(has_text=re.compile("^预存款 支付单"))).to_have_count(1)
    _shoot(page, shots, "partner-5-ledger-memos")

    page.goto(f"/console/keys/skus/{facts['shared_sku_id']}")
    expect(page.locator("body")).to_contain_text("循环卡密")
    assert "shared code" not in page.locator("body").inner_text()
    _shoot(page, shots, "partner-6-shared-code-batch")

    portal = context.new_page()
    _watch(portal, errors)
    portal.goto("/portal/login")
    portal.locator("#enterprise").fill(DEMO_ENTERPRISE.lower())
    portal.locator("#username").fill("hana")
    portal.locator("#password").fill(PASSWORD)
    portal.get_by_test_id("login-submit").click()
    portal.goto("/portal/statement")
    memos = portal.get_by_test_id("statement-memo")
    expect(memos.filter(has_text=re.compile(r"^福利活动 \S+ 的预算$"))).to_have_count(1)
    assert "benefit campaign" not in portal.locator("body").inner_text()
    _shoot(portal, shots, "partner-7-portal-statement")
    context.close()
    assert errors == []
