"""The demo's 循环卡密 SKU on the console's stock pages in a real browser (Debian's chromium through Playwright):
units sold and held, nothing negative, and its batch offers no void. Screenshot: test-artifacts/screenshots/
console-shared-code-stock.png."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from console.test_console_browser import PASSWORD, _log_in, _order
from live_shop import LiveShop, serve_demo_shop
from quanyi.catalog import service as catalog_service
from quanyi.demo_modes import SHARED_SKU
from quanyi.orders import service as orders_service
from quanyi.staff import service as staff_service
from web.test_browser import DESKTOP, _new_context, _shoot, _watch, browser, shots

pytestmark = pytest.mark.browser
__all__ = ["browser", "shots"]


@pytest.fixture(scope="module")
def stock_shop(sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveShop]:
    async def setup(ctx: Any) -> None:
        async with ctx.db.transaction() as session:
            await staff_service.create_staff(session=session, username="stocker", password=PASSWORD,
                                             roles=["operator"])
            sku = await catalog_service.get_sku_by_code(session=session, code=SHARED_SKU)
            await orders_service.create_order(session=session, sku_id=sku.id, quantity=1, contact="late@example.com",
                                              reservation_ttl=dt.timedelta(minutes=15), ip="203.0.113.9")
        for n in range(2):
            await _order(ctx, SHARED_SKU, contact=f"trial{n}@example.com")

    with serve_demo_shop(sqlite_template, tmp_path_factory.mktemp("shared-stock"), setup=setup,
                         sandbox_here=True) as live:
        yield live


def test_the_demo_shared_code_stock_page_counts_units_and_offers_no_void(
        browser: Any, stock_shop: LiveShop, shots: Path) -> None:
    from playwright.sync_api import expect

    errors: list[str] = []
    context = _new_context(browser, stock_shop, viewport=DESKTOP)
    page = context.new_page()
    _watch(page, errors)
    page.goto("/console/login")
    _log_in(page, "stocker")
    expect(page).to_have_url(re.compile(r"/console/dashboard$"))

    page.goto("/console/keys")
    row = page.locator(f'[data-testid="stock-row"][data-sku="{SHARED_SKU}"]')
    expect(row.get_by_test_id("available")).to_have_text("497")  # a limit of 500: 2 sold, 1 held
    row.get_by_role("link", name=SHARED_SKU).click()
    for kpi, value in (("available", "497"), ("reserved", "1"), ("sold", "2"), ("voided", "0"), ("expired", "0")):
        expect(page.get_by_test_id(f"sku-{kpi}")).to_have_text(value)
    expect(page.get_by_test_id("shared-units")).to_be_visible()
    expect(page.get_by_test_id("batch-row")).to_have_count(1)
    expect(page.get_by_test_id("shared-batch")).to_be_visible()
    expect(page.get_by_test_id("void-batch")).to_have_count(0)
    expect(page.get_by_test_id("import-keys")).to_have_count(0)
    _shoot(page, shots, "console-shared-code-stock")
    page.get_by_test_id("shared-batch").get_by_role("link").click()
    expect(page).to_have_url(re.compile(r"/console/catalog/shared/\d+$"))
    expect(page.get_by_test_id("shared-sold")).to_have_text("3")  # sold or held, as the code's counter says
    assert errors == []
    context.close()
