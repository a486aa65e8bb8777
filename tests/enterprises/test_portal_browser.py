"""An enterprise's purchaser in the portal (Chromium through Playwright, a real server whose background job places
bulk purchases): logs in, buys codes in bulk, watches the progress (htmx), downloads the codes through the
expiring link; then the same on a phone (390x844) and in English. Screenshots land in
test-artifacts/screenshots/portal-*.png."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from helpers import random_code
from live_shop import LiveShop, serve_demo_shop
from web.test_browser import DESKTOP, PHONE, TIMEOUT_MS, _new_context, _shoot, _watch, browser, shots

pytestmark = pytest.mark.browser
PASSWORD = "correct horse battery"
__all__ = ["browser", "shots"]  # the browser test's fixtures, used here too


async def _enterprise(ctx: Any, found: dict[str, Any]) -> None:
    from quanyi.catalog import service as catalog_service
    from quanyi.catalog.schemas import CategoryCreate, ProductCreate, SkuCreate
    from quanyi.enterprises import pricing, users
    from quanyi.enterprises import service as enterprises_service
    from quanyi.inventory import service as inventory_service

    codes = [random_code() for _ in range(20)]
    async with ctx.db.transaction() as session:
        category = await catalog_service.create_category(session=session, data=CategoryCreate(
            slug="benefits", name="员工福利"))
        product = await catalog_service.create_product(session=session, data=ProductCreate(
            category_id=category.id, slug="jd-card", name="京东 E 卡",
            skus=[SkuCreate(code="JD-100", name="100 元面值", price_cents=10_000, delivery_type="card_key",
                            max_quantity=5)]))
        sku = await catalog_service.get_sku(session=session, sku_id=product.skus[0].id)
        await inventory_service.import_card_keys(session=session, cipher=ctx.cipher, sku=sku, text="\n".join(codes))
        await enterprises_service.create_enterprise(session=session, code="ACME", name="艾克米科技有限公司")
        await enterprises_service.add_contact(session=session, code="ACME", name="采购 李", role="purchasing",
                                              email="buy@acme.example")
        await enterprises_service.top_up(session=session, code="ACME", amount_cents=500_000, note="bank transfer",
                                         actor="t", reference="BANK-1")
        await pricing.set_tiers(session=session, code="ACME", sku_code="JD-100",
                                tiers=[pricing.Tier(1, 9_800), pricing.Tier(10, 9_500)])
        await users.create_user(session=session, code="ACME", username="pia", password=PASSWORD, role="purchaser",
                                display_name="采购 Pia", actor="t")
    found["codes"] = codes


@pytest.fixture(scope="module")
def portal_shop(sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveShop, dict]]:
    found: dict[str, Any] = {}
    # Background tasks on: the shop's own purchase job places the bulk purchase, as under `quanyi serve`.
    with serve_demo_shop(sqlite_template, tmp_path_factory.mktemp("portal-browser"), run_background_tasks=True,
                         setup=lambda ctx: _enterprise(ctx, found)) as live:
        yield live, found


def _log_in(page) -> None:  # type: ignore[no-untyped-def]
    page.goto("/portal")
    page.locator("#enterprise").fill("acme")
    page.locator("#username").fill("pia")
    page.locator("#password").fill(PASSWORD)
    page.get_by_test_id("login-submit").click()


def test_a_purchaser_logs_in_buys_in_bulk_and_downloads_the_codes(browser, portal_shop, shots: Path) -> None:  # type: ignore[no-untyped-def]
    from playwright.sync_api import expect

    live, found = portal_shop
    errors: list[str] = []
    context = _new_context(browser, live, viewport=DESKTOP, accept_downloads=True)
    page = context.new_page()
    _watch(page, errors)
    _log_in(page)
    expect(page.get_by_test_id("balance")).to_have_text("¥5,000.00")
    _shoot(page, shots, "portal-1-desktop-overview")

    page.locator('a[data-menu="purchases"]').click()
    page.get_by_test_id("purchase-sku").select_option("JD-100")
    page.get_by_test_id("purchase-quantity").fill("12")
    page.get_by_test_id("purchase-submit").click()
    expect(page.get_by_test_id("purchase-progress")).to_be_visible()
    # The background job places it in chunks of 5; htmx re-fetches the progress until it is done.
    expect(page.get_by_test_id("purchase-progress")).to_have_attribute("data-status", "completed", timeout=60_000)
    expect(page.get_by_test_id("purchase-total")).to_have_text("¥1,140.00")  # 12 x 95.00, the tier from 10
    _shoot(page, shots, "portal-2-desktop-purchase-done")

    page.get_by_test_id("purchase-link").click()
    expect(page.get_by_test_id("link-card")).to_be_visible()
    _shoot(page, shots, "portal-3-desktop-download-link")
    with page.expect_download() as info:
        page.get_by_test_id("download-csv").click()
    text = Path(info.value.path()).read_text(encoding="utf-8-sig")
    rows = list(csv.reader(io.StringIO(text)))
    downloaded = {row[4] for row in rows[1:]}
    assert len(rows) == 13 and downloaded <= set(found["codes"]) and len(downloaded) == 12

    page.locator('a[data-menu="statement"]').click()
    expect(page.get_by_test_id("closing")).to_have_text("¥3,860.00")
    _shoot(page, shots, "portal-4-desktop-statement")
    assert errors == [], errors
    context.close()


def test_the_portal_on_a_phone_and_in_english(browser, portal_shop, shots: Path) -> None:  # type: ignore[no-untyped-def]
    from playwright.sync_api import expect

    live, _ = portal_shop
    errors: list[str] = []
    context = _new_context(browser, live, viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True)
    page = context.new_page()
    _watch(page, errors)
    page.goto("/portal/login")
    _shoot(page, shots, "portal-5-phone-login")
    _log_in(page)
    expect(page.get_by_test_id("balance")).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    _shoot(page, shots, "portal-6-phone-overview")
    page.goto("/portal/purchases")
    expect(page.get_by_test_id("purchase-form")).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    _shoot(page, shots, "portal-7-phone-purchases")
    page.get_by_test_id("menu-toggle").click()
    expect(page.get_by_test_id("menu")).to_be_visible()
    page.wait_for_timeout(600)  # the slide-in has ended (the CSP forbids wait_for_function's eval)
    assert page.get_by_test_id("menu").bounding_box()["x"] >= 0
    _shoot(page, shots, "portal-8-phone-menu")
    page.get_by_test_id("nav-lang").click()  # the language switch is in the menu on a phone
    page.goto("/portal/prices")
    expect(page.get_by_test_id("price-row")).to_have_count(1)
    assert "Your price" in page.content()
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    _shoot(page, shots, "portal-9-phone-prices-english")
    assert errors == [], errors
    context.close()


def test_the_statement_month_is_typed_the_chinese_way_in_an_english_browser(browser, portal_shop,  # type: ignore[no-untyped-def]
                                                                           shots: Path) -> None:
    """An English browser draws <input type=month> as "December 2026": the month is a text field like the other
    dates (2026-12, 2026/12, 2026年12月), and a month that cannot be read is refused in words."""
    import datetime as dt

    from playwright.sync_api import expect

    live, _ = portal_shop
    errors: list[str] = []
    context = browser.new_context(base_url=live.url, locale="en-US", viewport=DESKTOP)
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    _watch(page, errors)
    _log_in(page)
    expect(page.get_by_test_id("balance")).to_be_visible()
    page.goto("/portal/statement")
    month = page.get_by_test_id("month")
    this_month = dt.datetime.now(dt.timezone(dt.timedelta(hours=8))).date()
    assert month.get_attribute("type") in (None, "text")
    expect(month).to_have_value(f"{this_month:%Y-%m}")
    _shoot(page, shots, "portal-statement-1-month-field")

    month.fill(f"{this_month.year}年{this_month.month}月")
    page.get_by_role("button", name="查看").click()
    expect(month).to_have_value(f"{this_month:%Y-%m}")
    expect(page.get_by_test_id("statement")).to_be_visible()  # this month's top-up and purchases
    month.fill(f"{this_month.year - 1}/{this_month.month}")
    page.get_by_role("button", name="查看").click()
    expect(month).to_have_value(f"{this_month.year - 1}-{this_month.month:02d}")
    expect(page.get_by_test_id("statement")).to_have_count(0)  # nothing then

    refused = page.goto("/portal/statement?month=December+2026")
    assert refused is not None and refused.status == 422
    expect(page.get_by_test_id("flash")).to_have_text("请按 2026-12 的格式填写月份（也可以写 2026/12 或 2026年12月）")
    expect(month).to_have_value("December 2026")
    expect(page.get_by_test_id("totals")).to_have_count(0)
    _shoot(page, shots, "portal-statement-2-bad-month")
    assert errors == [], errors
    context.close()


def test_a_refund_on_the_statement_shows_no_internal_account_number(browser, portal_shop, shots: Path) -> None:  # type: ignore[no-untyped-def]
    """A purchase's order refunded back to the balance: the statement's refund line names the refund, never the
    shop's internal account number (the books' memo says "credited to customer account <id>")."""
    import sqlite3
    import time

    import httpx
    from playwright.sync_api import expect

    live, _ = portal_shop
    admin = {"Authorization": f"Bearer {live.settings.admin_token.get_secret_value()}"}
    bought = httpx.post(f"{live.url}/api/admin/enterprises/ACME/purchases", headers=admin, timeout=60,
                        json={"sku_code": "JD-100", "quantity": 1})
    assert bought.status_code == 202, bought.text
    url = f"{live.url}/api/admin/enterprises/ACME/purchases/{bought.json()['purchase_no']}"
    deadline = time.monotonic() + TIMEOUT_MS / 1000
    while httpx.get(url, headers=admin, timeout=60).json()["status"] != "completed":  # the shop's own job
        assert time.monotonic() < deadline
        time.sleep(0.2)
    with sqlite3.connect(live.db_path) as db:
        order_no = db.execute("SELECT o.order_no FROM orders_order o JOIN enterprises_purchase_order b "
                              "ON b.order_id = o.id ORDER BY o.id DESC LIMIT 1").fetchone()[0]
    refund = httpx.post(f"{live.url}/api/admin/orders/{order_no}/refunds", headers=admin, timeout=60,
                        json={"quantity": 1, "reason": "卡密无法使用"})
    assert refund.status_code == 201, refund.text

    errors: list[str] = []
    context = _new_context(browser, live, viewport=DESKTOP)
    page = context.new_page()
    _watch(page, errors)
    _log_in(page)
    page.goto("/portal/statement")
    line = page.get_by_test_id("statement-memo").filter(has_text=refund.json()["refund_no"])
    expect(line).to_have_text(f"退款单 {refund.json()['refund_no']}，已退回预存款余额")
    expect(page.locator("main")).not_to_contain_text("客户账户")
    _shoot(page, shots, "portal-statement-3-refund")
    assert errors == []
    context.close()
