"""Registering partners in a real browser (chromium through Playwright) against a real uvicorn server with the demo
shop: on a desktop the owner registers a supplier (picks its API, a refused form keeps nothing secret, the secret is
typed again) and later changes its endpoint, on a 390x844 phone a reseller (its API secret shown that once, gone
when the page is opened again); no page wider than the phone.

Screenshots land in test-artifacts/screenshots/creates-*.png.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from console.test_console_browser import PASSWORD, _log_in
from live_shop import LiveShop, serve_demo_shop
from quanyi.staff import service as staff_service
from web.test_browser import DESKTOP, PHONE, _new_context, _shoot, _watch, browser, shots

pytestmark = pytest.mark.browser
__all__ = ["browser", "shots"]  # module-scoped fixtures shared with the storefront's browser test

SUPPLIER_SECRET = "kp-" + "7f3a9c" * 6


@pytest.fixture(scope="module")
def creates_shop(sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveShop]:
    async def setup(ctx: Any) -> None:
        async with ctx.db.transaction() as session:
            await staff_service.create_staff(session=session, username="maker", password=PASSWORD, roles=["owner"])

    with serve_demo_shop(sqlite_template, tmp_path_factory.mktemp("creates-browser"), setup=setup) as live:
        yield live


def _fits(page: Any) -> None:
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"], page.url


def test_owner_registers_a_supplier_on_a_desktop_and_a_reseller_on_a_phone(
        browser: Any, creates_shop: LiveShop, shots: Path) -> None:
    from playwright.sync_api import expect

    errors: list[str] = []
    context = _new_context(browser, creates_shop, viewport=DESKTOP)
    page = context.new_page()
    _watch(page, errors)
    page.goto("/console/suppliers")
    _log_in(page, "maker")
    expect(page).to_have_url(re.compile(r"/console/suppliers$"))
    page.get_by_test_id("new-supplier").click()
    expect(page.get_by_test_id("cred-app_id")).to_be_visible()  # the quanyi protocol's fields first
    page.get_by_test_id("dialect-card_platform").click()
    expect(page.get_by_test_id("cred-customer_id")).to_be_visible()
    expect(page.get_by_test_id("cred-app_id")).to_have_count(0)
    expect(page.get_by_test_id("cred-secret")).to_have_attribute("type", "password")

    page.get_by_test_id("supplier-code").fill("kami-demo")
    page.get_by_test_id("supplier-name").fill("卡密批发平台")
    page.get_by_test_id("supplier-base-url").fill("ftp://kami.example")  # not http(s): refused
    page.get_by_test_id("cred-customer_id").fill("C-2088")
    page.get_by_test_id("cred-secret").fill(SUPPLIER_SECRET)
    page.get_by_test_id("supplier-credit").fill("2000")
    page.get_by_test_id("supplier-cycle").select_option("weekly")
    page.get_by_test_id("create-supplier").click()
    expect(page.get_by_test_id("flash")).to_contain_text("base_url")
    expect(page.get_by_test_id("supplier-code")).to_have_value("kami-demo")  # what was typed stays
    expect(page.get_by_test_id("cred-customer_id")).to_have_value("C-2088")
    expect(page.get_by_test_id("cred-secret")).to_have_value("")  # the secret is never sent back
    assert SUPPLIER_SECRET not in page.content()
    _shoot(page, shots, "creates-01-supplier-refused")

    page.get_by_test_id("supplier-base-url").fill("https://kami.example/api")
    page.get_by_test_id("cred-secret").fill(SUPPLIER_SECRET)
    page.get_by_test_id("create-supplier").click()
    expect(page).to_have_url(re.compile(r"/console/suppliers/KAMI-DEMO\?m=created$"))
    expect(page.get_by_test_id("flash")).to_contain_text("供应商已创建")
    expect(page.locator("main")).to_contain_text("customer_id, secret")
    expect(page.get_by_test_id("supplier-status")).to_contain_text("启用")
    assert SUPPLIER_SECRET not in page.content() and "C-2088" not in page.content()
    _shoot(page, shots, "creates-02-supplier-created")
    # Its endpoint changes later; credentials left blank stay as they are.
    page.get_by_test_id("settings-card").locator("summary").click()
    expect(page.get_by_test_id("settings-cred-secret")).to_have_value("")
    page.get_by_test_id("settings-base-url").fill("https://api2.kami.example")
    page.get_by_test_id("settings-save").click()
    expect(page.get_by_test_id("flash")).to_contain_text("已保存")
    expect(page.locator("main")).to_contain_text("https://api2.kami.example")
    expect(page.locator("main")).to_contain_text("customer_id, secret")
    page.goto("/console/suppliers")
    expect(page.get_by_test_id("supplier-row").filter(has_text="KAMI-DEMO")).to_have_count(1)
    page.goto("/console/resellers")
    _shoot(page, shots, "creates-03-resellers-desktop")
    context.close()

    phone = _new_context(browser, creates_shop, viewport=PHONE, is_mobile=True, has_touch=True)
    page = phone.new_page()
    _watch(page, errors)
    page.goto("/console/resellers")
    _log_in(page, "maker")
    expect(page).to_have_url(re.compile(r"/console/resellers$"))
    _fits(page)
    page.get_by_test_id("reseller-code").fill("SHOP-API")
    page.get_by_test_id("reseller-name").fill("下游小店")
    page.get_by_test_id("reseller-email").fill("api@xiaodian.example")
    page.get_by_test_id("reseller-credit").fill("500")
    _shoot(page, shots, "creates-04-reseller-form-phone")
    page.get_by_test_id("create-reseller").click()
    card = page.get_by_test_id("new-secret-card")
    expect(card).to_be_visible()
    secret = page.get_by_test_id("new-secret").inner_text().strip()
    app_id = page.get_by_test_id("new-app-id").inner_text().strip()
    assert len(secret) >= 20 and app_id.startswith("qy")
    _fits(page)
    _shoot(page, shots, "creates-05-reseller-secret-phone")
    page.goto("/console/resellers/SHOP-API")
    expect(page.get_by_test_id("reseller-balance")).to_be_visible()
    expect(page.get_by_test_id("new-secret-card")).to_have_count(0)
    expect(page.locator("main")).to_contain_text("正常")  # its status, in words
    assert secret not in page.content() and app_id in page.content()  # the secret was shown that once
    _fits(page)
    page.goto("/console/suppliers/new")
    _fits(page)
    _shoot(page, shots, "creates-06-supplier-form-phone")
    page.goto("/console/suppliers/KAMI-DEMO")
    page.get_by_test_id("settings-card").locator("summary").click()
    expect(page.get_by_test_id("settings-form")).to_be_visible()
    _fits(page)
    _shoot(page, shots, "creates-08-supplier-settings-phone")
    for path in ("/console/merchants", "/console/enterprises"):
        page.goto(path)
        _fits(page)
    _shoot(page, shots, "creates-07-enterprises-phone")
    phone.close()
    assert errors == [], errors
