"""In chromium against a real server: a refused coupon form and a refused product delete say what is wrong in
Chinese next to the field / at the top of the page (console/said.py), never the API's English; times and days on
forms read the Chinese way (2026-12-31 14:30), not in the browser's locale (12/31/2026, 02:30 PM), in the console
and the enterprise portal. Screenshots: test-artifacts/screenshots/console-said-*.png."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from console.test_console_browser import PASSWORD, _log_in
from live_shop import LiveShop, serve_demo_shop
from quanyi.catalog.models import Product
from quanyi.coupons import service as coupons_service
from quanyi.db import utcnow
from quanyi.enterprises import service as enterprises_service
from quanyi.enterprises import users as enterprise_users
from quanyi.staff import service as staff_service
from web.test_browser import DESKTOP, _new_context, _shoot, _watch, browser, shots

pytestmark = pytest.mark.browser
__all__ = ["browser", "shots"]

_ENGLISH = re.compile(r"[A-Za-z]{3,} [a-z]{2,} [a-z]{2,}")


@pytest.fixture(scope="module")
def said_shop(sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveShop, int]]:
    facts: dict[str, int] = {}

    async def setup(ctx: Any) -> None:
        import datetime as dt

        async with ctx.db.transaction() as session:
            await staff_service.create_staff(session=session, username="marketer", password=PASSWORD,
                                             roles=["operator"])
            product_id = await session.scalar(select(Product.id).where(Product.slug == "star-video-vip"))
            now = utcnow()
            await coupons_service.create_coupon(session=session, owner=1, targets=[("product", product_id)], fields={
                "name": "星影立减3元", "kind": "amount_off", "amount_off_cents": 300, "currency": "CNY",
                "starts_at": now, "ends_at": now + dt.timedelta(days=30), "distribution": "claim"})
            facts["product_id"] = product_id
            await enterprises_service.create_enterprise(session=session, code="ACME", name="艾克米科技")
            await enterprise_users.create_user(session=session, code="ACME", username="hana", password=PASSWORD,
                                               role="admin", actor="test")

    with serve_demo_shop(sqlite_template, tmp_path_factory.mktemp("console-said"), setup=setup) as live:
        yield live, facts["product_id"]


def test_refusals_are_said_in_chinese(browser: Any, said_shop: tuple[LiveShop, int], shots: Path) -> None:
    from playwright.sync_api import expect

    shop, product_id = said_shop
    errors: list[str] = []
    context = _new_context(browser, shop, viewport=DESKTOP)
    page = context.new_page()
    _watch(page, errors)
    page.on("dialog", lambda dialog: dialog.accept())  # the delete button asks first
    page.goto("/console/coupons/new")
    _log_in(page, "marketer")
    expect(page.get_by_test_id("coupon-form")).to_be_visible()
    page.get_by_test_id("coupon-name").fill("满10减3")
    page.get_by_test_id("coupon-amount-off").fill("abc")
    page.get_by_test_id("coupon-threshold").fill("1.234")
    page.get_by_test_id("coupon-distribution").select_option("claim")
    page.get_by_test_id("coupon-create").click()
    expect(page.get_by_test_id("amount_off-error")).to_have_text("请填写金额，如 12.34")
    expect(page.get_by_test_id("threshold-error")).to_have_text("金额最多 2 位小数")
    expect(page.get_by_test_id("flash")).to_contain_text("表单填写有误")
    page.evaluate("window.scrollTo(0, 0)")
    _shoot(page, shots, "console-said-01-coupon-form")

    page.goto(f"/console/catalog/products/{product_id}")
    page.get_by_test_id("delete-product").click()
    flash = page.get_by_test_id("flash")
    expect(flash).to_contain_text("不能删除")
    expect(flash).to_contain_text("卡密")
    said = flash.inner_text()
    assert not _ENGLISH.search(said), said
    page.evaluate("window.scrollTo(0, 0)")
    _shoot(page, shots, "console-said-02-product-delete")

    for field in ("coupon-starts", "coupon-ends"):  # 24-hour, year first, whatever the browser's locale
        page.goto("/console/coupons/new")
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}", page.get_by_test_id(field).input_value())
    portal = context.new_page()
    _watch(portal, errors)
    portal.goto("/portal/login")
    portal.locator("#enterprise").fill("ACME")
    portal.locator("#username").fill("hana")
    portal.locator("#password").fill(PASSWORD)
    portal.get_by_test_id("login-submit").click()
    portal.goto("/portal/campaigns")
    starts = portal.get_by_test_id("campaign-starts")
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", starts.input_value())
    portal.locator("#c-name").fill("新年福利")
    portal.locator("#c-skus").fill("STAR-VIP-1M")
    starts.fill("2026年13月1日")  # not a day: the browser's own check (the field's pattern) passes, ours refuses
    portal.get_by_test_id("campaign-create").click()
    expect(portal.get_by_test_id("flash")).to_contain_text("请按 2026-12-31 的格式填写日期")
    portal.evaluate("window.scrollTo(0, 0)")
    _shoot(portal, shots, "console-said-03-portal-campaign-days")
    assert errors == []
    context.close()
