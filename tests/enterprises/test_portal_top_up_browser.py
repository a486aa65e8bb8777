"""A top-up request in real browsers (Chromium through Playwright, a real server): the enterprise's admin asks for a
bank-transfer top-up in the portal (a bad amount is refused in Chinese first), the operator confirms it in the
console, and the admin sees the new balance, the request credited and the statement line. Screenshots land in
test-artifacts/screenshots/portal-top-up-*.png."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from live_shop import LiveShop, serve_demo_shop
from web.test_browser import DESKTOP, _new_context, _shoot, _watch, browser, shots

pytestmark = pytest.mark.browser
PASSWORD = "correct horse battery"
PAYEE = "收款单位：权益商城科技有限公司\n开户行：招商银行上海分行\n账号：1219 0880 0000 0001"
__all__ = ["browser", "shots"]  # the browser test's fixtures, used here too


async def _setup(ctx: Any) -> None:
    from quanyi.enterprises import service as enterprises_service
    from quanyi.enterprises import users
    from quanyi.staff import service as staff_service

    async with ctx.db.transaction() as session:
        await enterprises_service.create_enterprise(session=session, code="ACME", name="艾克米科技有限公司")
        await users.create_user(session=session, code="ACME", username="ada", password=PASSWORD, role="admin",
                                display_name="财务 Ada", actor="t")
        await staff_service.create_staff(session=session, username="op", password=PASSWORD, roles=["owner"])


@pytest.fixture(scope="module")
def top_up_shop(sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveShop]:
    with serve_demo_shop(sqlite_template, tmp_path_factory.mktemp("portal-top-up"), setup=_setup,
                         enterprise_top_up_payee=PAYEE) as live:
        yield live


def _admin_logged_in(browser: Any, live: LiveShop, errors: list[str], url: str) -> tuple[Any, Any]:
    """A desktop browser of the enterprise's admin, logged in on their way to `url`."""
    portal = _new_context(browser, live, viewport=DESKTOP)
    page = portal.new_page()
    _watch(page, errors)
    page.goto(url)
    page.locator("#enterprise").fill("ACME")
    page.locator("#username").fill("ada")
    page.locator("#password").fill(PASSWORD)
    page.get_by_test_id("login-submit").click()
    return portal, page


def test_an_admin_requests_a_top_up_and_sees_the_confirmed_balance(browser, top_up_shop, shots: Path) -> None:  # type: ignore[no-untyped-def]
    from playwright.sync_api import expect

    errors: list[str] = []
    portal, page = _admin_logged_in(browser, top_up_shop, errors, "/portal")
    expect(page.get_by_test_id("balance")).to_have_text("¥0.00")
    page.get_by_test_id("home-top-up").click()
    expect(page.get_by_test_id("payee")).to_contain_text("招商银行上海分行")

    page.get_by_test_id("top-up-amount").fill("8000.505")
    page.get_by_test_id("top-up-reference").fill("CMB-20261204-0042")
    page.get_by_test_id("top-up-submit").click()
    expect(page.get_by_test_id("flash")).to_contain_text("最多两位小数")
    expect(page.get_by_test_id("top-up-reference")).to_have_value("CMB-20261204-0042")  # what was typed stays
    expect(page.get_by_test_id("top-up-row")).to_have_count(0)
    _shoot(page, shots, "portal-top-up-1-refused")

    page.get_by_test_id("top-up-amount").fill("8,000.50")
    page.get_by_test_id("top-up-submit").click()
    expect(page.get_by_test_id("flash")).to_contain_text("已提交")
    expect(page.get_by_test_id("top-up-status")).to_contain_text("待确认")
    expect(page.get_by_test_id("balance")).to_have_text("¥0.00")
    _shoot(page, shots, "portal-top-up-2-requested")
    request_no = re.search(r"TU[A-Z0-9]{12}", page.get_by_test_id("top-up-row").inner_text()).group(0)  # type: ignore[union-attr]

    console = _new_context(browser, top_up_shop, viewport=DESKTOP)
    desk = console.new_page()
    _watch(desk, errors)
    desk.on("dialog", lambda dialog: dialog.accept())  # the confirm button asks first
    desk.goto("/console/enterprises/ACME")
    desk.locator("#username").fill("op")
    desk.locator("#password").fill(PASSWORD)
    desk.get_by_test_id("login-submit").click()
    row = desk.locator(f'[data-testid="top-up-request"][data-no="{request_no}"]')
    expect(row).to_have_attribute("data-status", "pending")
    _shoot(desk, shots, "portal-top-up-3-console-pending")
    row.get_by_test_id("top-up-confirm").click()
    expect(desk.get_by_test_id("flash")).to_contain_text("已入账")
    expect(desk.get_by_test_id("enterprise-balance")).to_have_text("¥8,000.50")
    _shoot(desk, shots, "portal-top-up-4-console-confirmed")

    page.goto("/portal")
    expect(page.get_by_test_id("balance")).to_have_text("¥8,000.50")
    expect(page.get_by_test_id("recent")).to_contain_text("CMB-20261204-0042")
    _shoot(page, shots, "portal-top-up-5-balance")
    page.locator('a[data-menu="top_ups"]').click()
    expect(page.get_by_test_id("top-up-status")).to_contain_text("已入账")
    page.locator('a[data-menu="statement"]').click()
    expect(page.get_by_test_id("total-in")).to_have_text("¥8,000.50")
    _shoot(page, shots, "portal-top-up-6-statement")
    assert errors == [], errors
    console.close()
    portal.close()


def test_an_admin_pays_a_top_up_online_and_sees_it_credited(browser, top_up_shop, shots: Path) -> None:  # type: ignore[no-untyped-def]
    from playwright.sync_api import expect

    errors: list[str] = []
    portal, page = _admin_logged_in(browser, top_up_shop, errors, "/portal/top-ups")
    before = page.get_by_test_id("balance").inner_text()
    page.get_by_test_id("top-up-amount").fill("1,200")
    page.get_by_test_id("top-up-method").select_option("online:sandbox")
    page.get_by_test_id("top-up-submit").click()
    expect(page.get_by_test_id("cashier-amount")).to_have_text("¥1,200.00")  # the gateway's cashier
    _shoot(page, shots, "portal-top-up-7-cashier")
    page.get_by_test_id("cashier-pay").click()  # the sandbox notifies the shop over HTTP, then sends us back
    expect(page).to_have_url(re.compile(r"/portal/top-ups\?m=top_up_paying"))
    expect(page.locator('[data-testid="top-up-row"]').first).to_have_attribute("data-status", "credited")
    cents = int(before.replace("¥", "").replace(",", "").replace(".", ""))
    expect(page.get_by_test_id("balance")).to_have_text(f"¥{(cents + 120_000) / 100:,.2f}")
    _shoot(page, shots, "portal-top-up-8-paid-online")
    assert errors == [], errors
    portal.close()
