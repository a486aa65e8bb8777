"""The zh console's audit log in a real browser (Debian's chromium through Playwright): actions, objects and the
summaries actions wrote in Chinese, the code in the action's tooltip; and a merchant application's page with its
shop code in full-width brackets. Screenshots: test-artifacts/screenshots/console-audit-zh.png,
desktop-application-zh.png."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from console.test_console_browser import PASSWORD, _log_in
from live_shop import LiveShop, serve_demo_shop
from quanyi.staff import service as staff_service
from quanyi.staff.audit import Actor, record_action
from web.test_browser import DESKTOP, _new_context, _shoot, _watch, browser, shots

pytestmark = pytest.mark.browser
__all__ = ["browser", "shots"]


@pytest.fixture(scope="module")
def audit_shop(sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveShop]:
    async def setup(ctx: Any) -> None:
        async with ctx.db.transaction() as session:
            await staff_service.create_staff(session=session, username="auditor", password=PASSWORD,
                                             roles=["owner"])
            kim = Actor(name="kim", staff_id=None, ip="203.0.113.9")
            # What these actions write (console/staff_routes.py, coupons/routes.py, console/key_routes.py).
            for action, kind, object_id, summary in (
                    ("staff_created", "staff", "olga", "merchant=platform roles=support"),
                    ("coupon_codes_made", "coupon", "3", "合作方券: batch 1 of 2 codes"),
                    ("batch_voided", "batch", "7", "10 keys: 供应商召回"),
                    ("leaks_traced", "leak_report", "2", "1 submitted, 1 found, 1 withdrawn, batches voided")):
                await record_action(session=session, actor=kim, action=action, object_type=kind,
                                    object_id=object_id, summary=summary)

    with serve_demo_shop(sqlite_template, tmp_path_factory.mktemp("audit-said"), setup=setup) as live:
        yield live


def test_the_audit_log_and_an_application_page_read_in_chinese(browser: Any, audit_shop: LiveShop,
                                                               shots: Path) -> None:
    from playwright.sync_api import expect

    errors: list[str] = []
    context = _new_context(browser, audit_shop, viewport=DESKTOP)
    page = context.new_page()
    _watch(page, errors)
    page.goto("/console/login")
    _log_in(page, "auditor")
    expect(page).to_have_url(re.compile(r"/console/dashboard$"))
    page.goto("/console/audit")
    rows = page.get_by_test_id("audit-row")
    expect(rows.nth(0)).to_contain_text("登录")
    expect(rows.nth(1)).to_contain_text("提交 1 个，找到 1 个，下架 1 个，并作废相关批次")
    expect(rows.nth(3)).to_contain_text("合作方券：批次 1，2 个券码")
    expect(rows.nth(4)).to_contain_text("员工 olga")
    expect(rows.nth(4)).to_contain_text("商户：平台；角色：客服")
    expect(rows.nth(4).get_by_test_id("audit-action")).to_have_attribute("title", "staff_created")
    _shoot(page, shots, "console-audit-zh")
    rows.nth(2).get_by_test_id("audit-action").click()
    expect(page).to_have_url(re.compile(r"/console/audit\?action=batch_voided$"))
    expect(page.get_by_test_id("audit-row")).to_have_count(1)

    page.goto("/merchants/apply")
    for field, value in (("code", "browser-shop"), ("name", "浏览器小铺"), ("contact_email", "a@example.com"),
                         ("owner_username", "browser.owner"), ("owner_password", "correct horse battery")):
        page.locator(f"#{field}").fill(value)
    page.get_by_test_id("apply-submit").click()
    expect(page.get_by_test_id("application-status")).to_have_attribute("data-status", "pending")
    expect(page.locator("main")).to_contain_text("浏览器小铺（browser-shop）")
    _shoot(page, shots, "desktop-application-zh")
    assert errors == []
    context.close()
