"""Gateways named by their classes in a real browser (Debian's chromium through Playwright): the buyer's payment
choices in English and Chinese, and the console's gateway list in English. Screenshots: test-artifacts/
screenshots/desktop-gateways-en.png, console-gateways-en.png."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from console.test_console_browser import PASSWORD, _log_in
from live_shop import LiveShop, serve_demo_shop
from quanyi.staff import service as staff_service
from web.test_browser import BUYER, DESKTOP, _new_context, _shoot, _watch, browser, shots

pytestmark = pytest.mark.browser
__all__ = ["browser", "shots"]


@pytest.fixture(scope="module")
def titled_shop(sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveShop]:
    async def setup(ctx: Any) -> None:
        async with ctx.db.transaction() as session:
            await staff_service.create_staff(session=session, username="gwen", password=PASSWORD, roles=["owner"])

    with serve_demo_shop(sqlite_template, tmp_path_factory.mktemp("gateway-titles"), setup=setup) as live:
        yield live


def test_gateways_are_named_in_the_pages_language(browser: Any, titled_shop: LiveShop, shots: Path) -> None:
    from playwright.sync_api import expect

    errors: list[str] = []
    context = _new_context(browser, titled_shop, viewport=DESKTOP)
    page = context.new_page()
    _watch(page, errors)
    page.goto("/p/star-video-vip")
    page.get_by_test_id("sku-option").filter(has_text="月卡").click()
    page.locator("#contact").fill(BUYER)
    page.get_by_test_id("buy").click()
    expect(page.get_by_test_id("order-status")).to_have_text("待支付")
    expect(page.locator(".gateways")).to_contain_text("Sandbox 模拟支付")
    page.goto(page.url.split("?")[0] + "?lang=en")
    expect(page.locator(".gateways label").first).to_have_text(re.compile(r"^\s*Sandbox\s*$"))
    _shoot(page, shots, "desktop-gateways-en")

    page.goto("/console/login")
    _log_in(page, "gwen")
    page.goto("/console/gateways?lang=en")
    expect(page.locator("tbody")).to_contain_text("Alipay")
    expect(page.locator("tbody")).to_contain_text("WeChat Pay")
    expect(page.locator("tbody")).to_contain_text("Sandbox sandbox")  # its class's title, as everywhere
    _shoot(page, shots, "console-gateways-en")
    page.goto("/console/gateways?lang=zh-CN")
    expect(page.locator("tbody")).to_contain_text("支付宝")
    assert errors == []
    context.close()
