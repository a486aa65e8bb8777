"""The console's answer to a refused refund in a real browser (Debian's chromium through Playwright) against the
demo shop on a real port: finance staff follow the dashboard's open refunds to 退款待处理 and on to the order, see
the refund flagged with its two actions, withdraw it
with a reason (the page asks first), and the buyer has the card key back.

Screenshots land in test-artifacts/screenshots/refund-recovery-*.png.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from console.test_console_browser import PASSWORD, _log_in, _order
from live_shop import LiveShop, serve_demo_shop
from quanyi.orders import service as orders_service
from quanyi.payments.gateway import GatewayRegistry, RefundRequest, RefundResult
from quanyi.payments.sandbox.gateway import SandboxGateway
from quanyi.refunds import service as refunds_service
from quanyi.staff import service as staff_service
from web.test_browser import DESKTOP, _new_context, _shoot, _watch, browser, shots

pytestmark = pytest.mark.browser
__all__ = ["browser", "shots"]  # module-scoped fixtures shared with the storefront's browser test


class _Refusing(SandboxGateway):
    async def refund(self, request: RefundRequest) -> RefundResult:
        return RefundResult(refund_no=request.refund_no, state="failed", amount_cents=request.amount_cents,
                            detail="ACQ.SELLER_BALANCE_NOT_ENOUGH: 卖家余额不足")


@pytest.fixture(scope="module")
def refused_shop(sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveShop, dict]]:
    facts: dict[str, Any] = {}

    async def setup(ctx: Any) -> None:
        async with ctx.db.transaction() as session:
            await staff_service.create_staff(session=session, username="fina", password=PASSWORD, roles=["finance"])
        order_no = await _order(ctx, "STAR-VIP-1M", contact="refund.buyer@example.com")
        async with ctx.db.transaction() as session:
            order = await orders_service.get_order(session=session, order_no=order_no)
            refund, _ = await refunds_service.request_refund(session=session, order_id=order.id,
                                                             reason="买家申请退款", requested_by="fina")
        refusing = _Refusing(secret=ctx.settings.sandbox_secret.get_secret_value(), http=ctx.http,
                             api_base_url=ctx.settings.public_base_url)
        assert await refunds_service.execute_refund(db=ctx.db, gateways=GatewayRegistry([refusing]),
                                                    refund_id=refund.id) == "failed"
        facts.update(order_no=order_no, refund_no=refund.refund_no)

    with serve_demo_shop(sqlite_template, tmp_path_factory.mktemp("refund-browser"), setup=setup,
                         sandbox_here=True) as live:
        yield live, facts


def test_finance_withdraws_a_refused_refund_and_the_buyer_has_the_key_again(
        browser: Any, refused_shop: tuple[LiveShop, dict], shots: Path) -> None:
    from playwright.sync_api import expect

    shop, facts = refused_shop
    errors: list[str] = []
    context = _new_context(browser, shop, viewport=DESKTOP)
    page = context.new_page()
    _watch(page, errors)
    page.goto("/console/login")
    _log_in(page, "fina")
    page.goto("/console/dashboard")
    page.get_by_test_id("open-refunds-link").click()  # 失败 1: where is it?
    queued = page.locator(f'tr[data-refund="{facts["refund_no"]}"]')
    expect(queued).to_contain_text("ACQ.SELLER_BALANCE_NOT_ENOUGH")
    _shoot(page, shots, "refund-recovery-00-queue")
    queued.get_by_test_id("refunds-open").click()
    expect(page).to_have_url(re.compile(f"/console/orders/{facts['order_no']}#refund-{facts['refund_no']}$"))
    expect(page.get_by_test_id("refund-attention")).to_contain_text("支付渠道拒绝了退款")
    row = page.locator(f'tr[data-refund="{facts["refund_no"]}"]')
    expect(row).to_contain_text("失败")
    expect(row.get_by_test_id("refund-error")).to_contain_text("ACQ.SELLER_BALANCE_NOT_ENOUGH")
    expect(row.get_by_test_id("refund-retry")).to_have_text("重新退款")
    expect(row.get_by_test_id("refund-withdraw")).to_have_text("撤回退款")
    _shoot(page, shots, "refund-recovery-01-refused")

    asked: list[str] = []
    page.on("dialog", lambda dialog: (asked.append(dialog.message), dialog.accept()))
    row.get_by_test_id("refund-withdraw-reason").fill("买家改为要货")
    row.get_by_test_id("refund-withdraw").click()
    expect(page.get_by_test_id("flash")).to_contain_text(f"退款 {facts['refund_no']} 已撤回（归还卡密 1 个）")
    assert asked and "确认撤回这笔被拒绝的退款" in asked[0]
    row = page.locator(f'tr[data-refund="{facts["refund_no"]}"]')
    expect(row).to_contain_text("已撤回")
    expect(row.get_by_test_id("refund-withdraw")).to_have_count(0)
    expect(page.get_by_test_id("refund-attention")).to_have_count(0)
    expect(page.get_by_test_id("timeline")).to_contain_text("买家改为要货")
    _shoot(page, shots, "refund-recovery-02-withdrawn")
    assert len(shop.api_keys(facts["order_no"])) == 1  # the buyer can reveal the key again
    context.close()
    assert errors == []
