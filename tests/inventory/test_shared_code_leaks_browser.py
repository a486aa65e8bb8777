"""A leak trace that only voids batches, in a real browser (Debian's chromium through Playwright): a found 循环卡密
(shared code) is stopped and the report says so, with a link to the code's page. Screenshot: test-artifacts/
screenshots/console-leak-trace-shared-code.png."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from console.test_console_browser import PASSWORD, _log_in
from live_shop import LiveShop, serve_demo_shop
from quanyi.catalog import service as catalog_service
from quanyi.demo_modes import SHARED_SKU
from quanyi.inventory import shared_codes
from quanyi.scope import PLATFORM_MERCHANT_ID
from quanyi.staff import service as staff_service
from web.test_browser import DESKTOP, _new_context, _shoot, _watch, browser, shots

pytestmark = pytest.mark.browser
__all__ = ["browser", "shots"]
LEAKED = "STARTRIAL-LEAKED01"


@pytest.fixture(scope="module")
def leak_shop(sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveShop]:
    async def setup(ctx: Any) -> None:
        async with ctx.db.transaction() as session:
            await staff_service.create_staff(session=session, username="tracer", password=PASSWORD,
                                             roles=["operator"])
            sku = await catalog_service.get_sku_by_code(session=session, code=SHARED_SKU)
            await shared_codes.add_shared_code(session=session, cipher=ctx.cipher, sku_id=sku.id,
                                               merchant_id=PLATFORM_MERCHANT_ID, text=LEAKED, sale_limit=20,
                                               actor="demo")

    with serve_demo_shop(sqlite_template, tmp_path_factory.mktemp("shared-leak"), setup=setup) as live:
        yield live


def test_a_leak_trace_voiding_batches_stops_the_shared_code_and_says_so(
        browser: Any, leak_shop: LiveShop, shots: Path) -> None:
    from playwright.sync_api import expect

    errors: list[str] = []
    context = _new_context(browser, leak_shop, viewport=DESKTOP)
    page = context.new_page()
    _watch(page, errors)
    page.goto("/console/login")
    _log_in(page, "tracer")
    expect(page).to_have_url(re.compile(r"/console/dashboard$"))

    page.goto("/console/keys/leaks")
    page.locator("#codes").fill(LEAKED)
    page.locator('input[name="mark"]').uncheck()
    page.locator('input[name="void_batches"]').check()
    page.get_by_test_id("trace").click()
    expect(page.get_by_test_id("stopped-shared")).to_contain_text("已停售循环卡密 1 个")
    expect(page.get_by_test_id("leak-item")).to_have_count(1)
    _shoot(page, shots, "console-leak-trace-shared-code")
    page.get_by_test_id("sale-stopped").click()
    expect(page).to_have_url(re.compile(r"/console/catalog/shared/\d+$"))
    rows = page.get_by_test_id("shared-row")
    expect(rows.nth(0).locator("td").nth(5)).to_have_text("销售中")  # the demo's own code sells on
    expect(rows.nth(1).locator("td").nth(5)).to_have_text("已停售")
    _shoot(page, shots, "console-leak-trace-shared-code-page")
    assert errors == []
    context.close()
