"""The gateway settlements page in a real browser (chromium through Playwright) against a real uvicorn server with
the demo shop: the owner sees what the sandbox gateway owes after two paid orders, records its settlement (net +
fee = the balance, so nothing is owed after), is refused in Chinese when recording it again; the page fits a phone.

Screenshots land in test-artifacts/screenshots/payouts-*.png.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from console.test_console_browser import PASSWORD, _log_in, _order
from live_shop import LiveShop, serve_demo_shop
from quanyi.shoptime import shop_day, shop_zone
from quanyi.staff import service as staff_service
from web.test_browser import DESKTOP, PHONE, _new_context, _shoot, _watch, browser, shots

pytestmark = pytest.mark.browser
__all__ = ["browser", "shots"]  # module-scoped fixtures shared with the storefront's browser test


@pytest.fixture(scope="module")
def payout_shop(sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveShop, dict]]:
    facts: dict[str, Any] = {}

    async def setup(ctx: Any) -> None:
        async with ctx.db.transaction() as session:
            await staff_service.create_staff(session=session, username="cashboss", password=PASSWORD,
                                             roles=["owner"])
        for i, code in enumerate(("STAR-VIP-1M", "CLOUD-MUSIC-12M")):
            await _order(ctx, code, contact=f"payout{i}@example.com")
        facts["today"] = shop_day(dt.datetime.now(dt.UTC), shop_zone(ctx.settings.shop_timezone)).isoformat()

    with serve_demo_shop(sqlite_template, tmp_path_factory.mktemp("payout-browser"), setup=setup,
                         sandbox_here=True) as live:
        yield live, facts


def _cents(text: str) -> int:
    found = re.search(r"([\d,]+)\.(\d\d)", text)
    assert found, text
    return int(found.group(1).replace(",", "")) * 100 + int(found.group(2))


def test_owner_records_a_gateway_settlement_and_a_repeat_is_refused(
        browser: Any, payout_shop: tuple[LiveShop, dict], shots: Path) -> None:
    from playwright.sync_api import expect

    shop, facts = payout_shop
    errors: list[str] = []
    context = _new_context(browser, shop, viewport=DESKTOP)
    page = context.new_page()
    _watch(page, errors)
    page.goto("/console/gateway-payouts")
    _log_in(page, "cashboss")
    expect(page).to_have_url(re.compile(r"/console/gateway-payouts$"))
    expect(page.get_by_test_id("menu").get_by_role("link", name="渠道结算")).to_be_visible()
    sandbox = page.locator('[data-testid="clearing-row"][data-gateway="sandbox"]')
    owed = _cents(sandbox.get_by_test_id("owed").inner_text())
    assert owed > 100, owed
    expect(page.get_by_test_id("no-payouts")).to_be_visible()
    _shoot(page, shots, "payouts-before")

    def fill(settlement: str, net_cents: int) -> None:
        page.get_by_test_id("payout-gateway").select_option("sandbox")
        page.get_by_test_id("payout-settlement").fill(settlement)
        page.get_by_test_id("payout-from").fill(facts["today"])
        page.get_by_test_id("payout-to").fill(facts["today"])
        page.get_by_test_id("payout-net").fill(f"{net_cents // 100}.{net_cents % 100:02d}")
        page.get_by_test_id("payout-fee").fill("0.60")
        page.get_by_test_id("payout-note").fill("招商银行入账 0001")
        page.get_by_test_id("payout-submit").click()

    fill("2088BROWSER01", owed - 60)
    expect(page.get_by_test_id("flash")).to_contain_text("已记录 sandbox 结算单 2088BROWSER01")
    row = page.locator('[data-testid="payout-row"][data-settlement="2088BROWSER01"]')
    expect(row).to_be_visible()
    expect(row.get_by_test_id("payout-difference")).to_have_text("相符")
    expect(sandbox.get_by_test_id("owed")).to_have_text(re.compile(r"0\.00$"))
    _shoot(page, shots, "payouts-recorded")

    fill("2088BROWSER01", 100)
    expect(page.get_by_test_id("flash")).to_contain_text(
        "这张结算单已经记录过，没有重复入账（sandbox 的结算单 2088BROWSER01")
    assert not re.search(r"[()]", page.get_by_test_id("flash").inner_text())  # full-width brackets in Chinese
    expect(page.locator('[data-testid="payout-row"]')).to_have_count(1)
    expect(page.get_by_test_id("payout-settlement")).to_have_value("2088BROWSER01")  # drawn again as typed
    _shoot(page, shots, "payouts-refused")

    phone = _new_context(browser, shop, viewport=PHONE)
    small = phone.new_page()
    _watch(small, errors)
    small.goto("/console/gateway-payouts")
    _log_in(small, "cashboss")
    expect(small.locator('[data-testid="payout-row"]')).to_have_count(1)
    assert small.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    _shoot(small, shots, "payouts-phone")
    phone.close()
    context.close()
    assert errors == []
