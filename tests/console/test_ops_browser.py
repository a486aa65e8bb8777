"""The operations pages in a real browser (chromium through Playwright) against a real uvicorn server with the demo
shop: the owner edits a risk rule, sends a dead letter again and reads the ledger down to an account's statement;
then the order page and every page of the owner's menu on a 390x844 phone: none wider than the screen, none
with a server or script error, a request outside the shop or an unlabelled field.

Screenshots land in test-artifacts/screenshots/ops-*.png.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update

from console.test_console_browser import PASSWORD, _log_in, _order
from live_shop import LiveShop, serve_demo_shop
from quanyi.notifications import service as notifications_service
from quanyi.notifications.models import Channel, Kind, OutboxMessage
from quanyi.risk import ruleset
from quanyi.staff import service as staff_service
from web.test_browser import DESKTOP, PHONE, _new_context, _shoot, _watch, browser, shots

pytestmark = pytest.mark.browser
__all__ = ["browser", "shots"]  # module-scoped fixtures shared with the storefront's browser test


@pytest.fixture(scope="module")
def ops_shop(sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveShop, dict]]:
    facts: dict[str, Any] = {}

    async def setup(ctx: Any) -> None:
        async with ctx.db.transaction() as session:
            await staff_service.create_staff(session=session, username="opsboss", password=PASSWORD,
                                             roles=["owner"])
            rule = await ruleset.create_rule(session=session, name="quick repeat buyers", kind="velocity",
                                             params={"dimension": "contact", "window_seconds": 600, "max_count": 3},
                                             stages=["order"], action="challenge", score=20,
                                             reason_code="contact_velocity")
            facts["rule_id"] = rule.id
        for i, code in enumerate(("STAR-VIP-1M", "CLOUD-MUSIC-12M")):
            facts.setdefault("orders", []).append(await _order(ctx, code, contact=f"ops{i}@example.com"))
        async with ctx.db.transaction() as session:
            await notifications_service.enqueue(
                session=session, channel=Channel.EMAIL, recipient="lost.mailbox@example.com",
                kind=Kind.ORDER_DELIVERED, locale="zh-CN", payload={"order_no": facts["orders"][0]},
                dedupe_key="browser:dead-letter")
            message_id = await session.scalar(select(OutboxMessage.id).where(
                OutboxMessage.dedupe_key == "browser:dead-letter"))
            await session.execute(update(OutboxMessage).where(OutboxMessage.id == message_id).values(
                status="dead", attempts=8, last_error="550 5.1.1 mailbox unavailable"))
            facts["message_id"] = message_id

    with serve_demo_shop(sqlite_template, tmp_path_factory.mktemp("ops-browser"), setup=setup,
                         sandbox_here=True) as live:
        yield live, facts


SHOT = {"/console/reviews": "reviews", "/console/notifications": "notifications", "/console/ledger": "ledger",
        "/console/risk-rules": "risk-rules", "/console/suppliers": "suppliers", "/console/staff": "staff",
        "/console/merchants": "merchants", "/console/merchants/withdrawals": "withdrawals",
        "/console/resellers": "resellers", "/console/gateways": "gateways", "/console/merchants/platform": "merchant"}


def _fits(page: Any) -> None:
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"], page.url


def test_owner_edits_a_risk_rule_retries_a_dead_letter_and_reads_the_ledger(
        browser: Any, ops_shop: tuple[LiveShop, dict], shots: Path) -> None:
    from playwright.sync_api import expect

    shop, facts = ops_shop
    errors: list[str] = []
    context = _new_context(browser, shop, viewport=DESKTOP)
    page = context.new_page()
    _watch(page, errors)
    page.goto("/console/risk-rules")
    _log_in(page, "opsboss")
    expect(page).to_have_url(re.compile(r"/console/risk-rules$"))
    menu = page.get_by_test_id("menu")
    for entry in ("风控规则", "通知与死信", "总账", "渠道对账", "支付渠道", "员工与角色", "供应商"):
        expect(menu.get_by_role("link", name=entry)).to_be_visible()
    _shoot(page, shots, "ops-01-risk-rules")

    # Edit the rule: a parameter that does not fit its kind is refused on the page, then a good edit is saved.
    page.locator('[data-rule="quick repeat buyers"]').get_by_test_id("rule-link").click()
    expect(page.get_by_test_id("rule-kind")).to_have_text("velocity")
    page.get_by_test_id("rule-params").fill(json.dumps({"dimension": "contact", "window_seconds": -5,
                                                        "max_count": 3}))
    page.get_by_test_id("rule-save").click()
    expect(page.get_by_test_id("flash")).to_contain_text("规则参数不符合")
    _shoot(page, shots, "ops-02-risk-rule-refused")
    page.get_by_test_id("rule-params").fill(json.dumps({"dimension": "contact", "window_seconds": 900,
                                                        "max_count": 2}))
    page.get_by_test_id("rule-score").fill("35")
    page.get_by_test_id("rule-action").select_option("review")
    page.get_by_test_id("rule-save").click()
    expect(page.get_by_test_id("flash")).to_contain_text("已保存")
    row = page.locator('[data-rule="quick repeat buyers"]')
    expect(row).to_contain_text("人工审核")
    expect(row).to_contain_text("35")
    _shoot(page, shots, "ops-03-risk-rule-saved")

    # The dead letter: listed with its error, sent again, gone from the dead-letter list.
    menu.get_by_role("link", name="通知与死信").click()
    expect(page.get_by_test_id("notification-row")).to_have_count(1)
    expect(page.get_by_test_id("notification-row")).to_contain_text("550 5.1.1 mailbox unavailable")
    _shoot(page, shots, "ops-04-dead-letters")
    page.get_by_test_id("retry").click()
    expect(page.get_by_test_id("flash")).to_contain_text(f"消息 {facts['message_id']} 已重新加入发送队列")
    expect(page.get_by_test_id("no-notifications")).to_be_visible()
    page.get_by_test_id("tab-pending").click()
    expect(page.locator(f'[data-id="{facts["message_id"]}"]')).to_be_visible()
    _shoot(page, shots, "ops-05-dead-letter-retried")

    # The ledger: balanced, and the sandbox clearing account's statement lists the two payments.
    menu.get_by_role("link", name="总账").click()
    expect(page.get_by_test_id("ledger-balanced")).to_have_text("平衡")
    _shoot(page, shots, "ops-06-trial-balance")
    page.get_by_role("link", name="gateway_clearing:sandbox").click()
    expect(page.get_by_test_id("account-line")).to_have_count(2)
    for order_no in facts["orders"]:
        expect(page.get_by_test_id("account-lines")).to_contain_text(order_no)
    _shoot(page, shots, "ops-07-account-statement")
    context.close()
    assert errors == [], errors


def test_order_review_and_operations_pages_fit_a_phone(browser: Any, ops_shop: tuple[LiveShop, dict],
                                                       shots: Path) -> None:
    from playwright.sync_api import expect

    shop, facts = ops_shop
    errors: list[str] = []
    context = _new_context(browser, shop, viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True)
    page = context.new_page()
    _watch(page, errors)
    page.goto("/console/orders")
    _log_in(page, "opsboss")
    expect(page.get_by_test_id("order-row").first).to_be_visible()
    _fits(page)
    _shoot(page, shots, "ops-10-orders-phone")
    page.get_by_test_id("order-link").first.click()
    expect(page.locator("h1")).to_be_visible()
    _fits(page)
    _shoot(page, shots, "ops-11-order-phone")
    # Every page of the owner's menu (read from the menu itself, so pages added later are swept too) and the
    # merchant page: no server error, no script or CSP error (_watch), nothing loaded from outside the shop,
    # not wider than the phone, every field labelled.
    menu = page.eval_on_selector_all("[data-testid=menu] a[href^='/console/']", "els => els.map(e => e.pathname)")
    assert len(menu) >= 20 and "/console/audit" in menu, menu
    for path in [*dict.fromkeys(menu), "/console/merchants/platform", "/console/merchants/withdrawals",
                 "/console/notifications?status=all", "/console/catalog/products/1"]:
        response = page.goto(path)
        assert response is not None and response.status == 200, (path, response and response.status)
        expect(page.locator("h1")).to_be_visible()
        _fits(page)
        assert _unlabelled(page) == [], path
        # A check box keeps its own size: stretched like a text field it squeezed its label ("在\n售").
        assert page.evaluate("""() => Math.max(0, ...[...document.querySelectorAll('input[type=checkbox]')]
            .map(e => e.getBoundingClientRect().width))""") <= 30, path
        # What a field holds is drawn in the text colour, never the labels' grey (it read as a placeholder).
        assert page.evaluate("""() => [...document.querySelectorAll('input:not([type=hidden]), select')]
            .filter(e => e.value && getComputedStyle(e).color === 'rgb(102, 112, 133)').map(e => e.name)""") == [], path
        if path in SHOT:  # a full-page shot costs as much as the visit: the pages most used on a phone
            _shoot(page, shots, f"ops-12-{SHOT[path]}-phone")
    context.close()
    assert errors == [], errors


def _unlabelled(page: Any) -> list[str]:
    """Form fields a screen reader cannot name: no <label> around or for them, no aria-label(ledby), no title."""
    return page.evaluate("""() => [...document.querySelectorAll('input, select, textarea')].filter(e =>
        !['hidden', 'submit', 'button'].includes(e.type) && !e.closest('label')
        && !(e.id && document.querySelector(`label[for="${e.id}"]`))
        && !e.getAttribute('aria-label') && !e.getAttribute('aria-labelledby') && !e.title
    ).map(e => `${e.tagName.toLowerCase()}[name=${e.name}]`)""")
