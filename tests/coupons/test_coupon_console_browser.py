"""In chromium against a real server: an operator creates a coupon in the console (a refused form first: the error
shows next to its field and nothing is made) and sees it listed; a buyer claims it in the claim centre and pays the
discounted amount at checkout; the operator sees the use and pauses it. The level-up gift page: a coupon chosen for
a level. A batch of single-use codes made and downloaded. Desktop and phone (390x844) screenshots:
test-artifacts/screenshots/console-coupons-*.png."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from console.test_console_browser import PASSWORD, _log_in
from live_shop import LiveShop, serve_demo_shop
from quanyi.coupons import service as coupons_service
from quanyi.db import utcnow
from quanyi.loyalty import levels as loyalty_levels
from quanyi.members.models import LoginMethod, Member
from quanyi.members.sessions import open_member_session
from quanyi.staff import service as staff_service
from web.test_browser import DESKTOP, PHONE, _new_context, _shoot, _watch, browser, shots

pytestmark = pytest.mark.browser
__all__ = ["browser", "shots"]  # module-scoped fixtures shared with the storefront's browser test
BUYER = "coupon.fan@example.com"


@pytest.fixture(scope="module")
def coupon_console_shop(sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[
        tuple[LiveShop, dict[str, Any]]]:
    facts: dict[str, Any] = {}

    async def setup(ctx: Any) -> None:
        async with ctx.db.transaction() as session:
            await staff_service.create_staff(session=session, username="marketer", password=PASSWORD,
                                             roles=["operator"])
            await loyalty_levels.set_level(session=session, code="SILVER", name="白银会员", min_paid_cents=10_000)
            now = utcnow()
            gift = await coupons_service.create_coupon(session=session, owner=1, fields={
                "name": "白银升级礼", "kind": "percent_off", "percent_off_bps": 1000, "max_discount_cents": 1000,
                "currency": "CNY", "starts_at": now, "ends_at": now + dt.timedelta(days=90),
                "distribution": "issued"})
            facts["gift_id"] = gift.id
            partner = await coupons_service.create_coupon(session=session, owner=1, fields={
                "name": "合作方立减2元", "kind": "amount_off", "amount_off_cents": 200, "currency": "CNY",
                "starts_at": now, "ends_at": now + dt.timedelta(days=90), "total_quantity": 1000,
                "distribution": "codes"})
            facts["partner_id"] = partner.id
            member = Member(email=BUYER)
            session.add(member)
            await session.flush()
            facts["token"] = await open_member_session(session=session, member=member, method=LoginMethod.CODE,
                                                       days=30, ip="203.0.113.7", user_agent="browser")

    with serve_demo_shop(sqlite_template, tmp_path_factory.mktemp("console-coupons"), setup=setup,
                         sandbox_here=True) as live:
        yield live, facts


def _both(page: Any, shots: Path, name: str) -> None:
    """A desktop and a phone screenshot of the page; on the phone nothing may stick out sideways."""
    page.evaluate("window.scrollTo(0, 0)")  # the sticky top bar is drawn where the page was scrolled to
    _shoot(page, shots, f"console-coupons-{name}")
    page.set_viewport_size(PHONE)
    page.wait_for_timeout(300)  # the menu slides out of view (a .2 s transition) when the page gets narrow
    page.evaluate("window.scrollTo(0, 0)")
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"], page.url
    _shoot(page, shots, f"console-coupons-{name}-phone")
    page.set_viewport_size(DESKTOP)
    page.wait_for_timeout(300)


def test_operator_creates_a_coupon_and_a_buyer_claims_it_and_pays_less(
        browser: Any, coupon_console_shop: tuple[LiveShop, dict[str, Any]], shots: Path) -> None:
    from playwright.sync_api import expect

    shop, facts = coupon_console_shop
    errors: list[str] = []
    context = _new_context(browser, shop, viewport=DESKTOP)
    page = context.new_page()
    _watch(page, errors)
    page.goto("/console/coupons")
    _log_in(page, "marketer")
    expect(page).to_have_url(re.compile(r"/console/coupons$"))
    page.get_by_test_id("new-coupon").click()
    expect(page.get_by_test_id("coupon-form")).to_be_visible()
    # Only the chosen kind's fields show: 满减 first; switching the kind swaps them.
    expect(page.get_by_test_id("coupon-amount-off")).to_be_visible()
    expect(page.get_by_test_id("coupon-percent-off")).to_be_hidden()
    expect(page.get_by_test_id("coupon-fixed-price")).to_be_hidden()
    page.get_by_test_id("coupon-kind").select_option("percent_off")
    expect(page.get_by_test_id("coupon-percent-off")).to_be_visible()
    expect(page.get_by_test_id("coupon-amount-off")).to_be_hidden()
    page.get_by_test_id("coupon-kind").select_option("amount_off")
    _both(page, shots, "01-new")

    # A form without its amount is refused: the error is next to the field, what was typed is kept.
    page.get_by_test_id("coupon-name").fill("星影立减3元")
    page.get_by_test_id("coupon-threshold").fill("10")
    page.get_by_test_id("coupon-distribution").select_option("claim")
    page.get_by_test_id("coupon-per-member").fill("1")
    page.get_by_test_id("coupon-total").fill("50")
    page.get_by_test_id("scope-some").check()
    page.get_by_test_id("coupon-products").fill("star-video-vip")
    page.get_by_test_id("coupon-create").click()
    expect(page.get_by_test_id("amount_off-error")).to_be_visible()
    expect(page.get_by_test_id("flash")).to_contain_text("表单填写有误")
    expect(page.get_by_test_id("coupon-name")).to_have_value("星影立减3元")
    _both(page, shots, "02-refused")

    page.get_by_test_id("coupon-amount-off").fill("3.00")
    page.get_by_test_id("coupon-create").click()
    expect(page.get_by_test_id("flash")).to_have_text("优惠券已创建")
    expect(page.get_by_test_id("coupon-summary")).to_have_text("满¥10.00减¥3.00")
    expect(page.get_by_test_id("coupon-taken")).to_have_text("0 / 50")
    _both(page, shots, "03-coupon")

    page.goto("/console/coupons")
    expect(page.get_by_test_id("coupon-row")).to_have_count(3)  # and the two made at setup
    _both(page, shots, "04-list")
    page.goto("/console/level-gifts")
    expect(page.get_by_test_id("level-gift")).to_have_count(1)
    page.get_by_test_id(f"gift-SILVER-{facts['gift_id']}").check()
    page.get_by_test_id("level-gift-save").click()
    expect(page.get_by_test_id("flash")).to_contain_text("SILVER")
    expect(page.get_by_test_id("level-gives")).to_contain_text("白银升级礼")
    _both(page, shots, "05-level-gifts")

    # The buyer (signed in) claims it in the claim centre and uses it at checkout.
    buyer = _new_context(browser, shop, viewport=PHONE, is_mobile=True, has_touch=True)
    buyer.add_cookies([{"name": "qy_member", "value": facts["token"], "url": shop.url}])
    shop_page = buyer.new_page()
    _watch(shop_page, errors)
    shop_page.goto("/coupons")
    offer = shop_page.get_by_test_id("claimable-coupon").filter(has_text="星影立减3元")
    expect(offer).to_contain_text("满¥10.00减¥3.00")
    offer.get_by_test_id("claim").click()
    expect(shop_page.get_by_test_id("my-coupon").filter(has_text="星影立减3元")).to_have_attribute(
        "data-status", "available")
    shop_page.goto("/p/star-video-vip")
    shop_page.get_by_test_id("sku-option").filter(has_text="月卡").click()
    shop_page.get_by_test_id("member-coupon").select_option(label="星影立减3元 · 满¥10.00减¥3.00")
    shop_page.locator("#contact").fill(BUYER)
    shop_page.get_by_test_id("apply-coupon").click()
    expect(shop_page.get_by_test_id("coupon-discount")).to_have_text("−¥3.00")
    expect(shop_page.get_by_test_id("total")).to_have_text("¥16.80")
    shop_page.get_by_test_id("buy").click()
    expect(shop_page).to_have_url(re.compile(r"/orders/\w+$"))
    shop_page.get_by_test_id("pay").click()
    expect(shop_page.get_by_test_id("cashier-amount")).to_have_text("¥16.80")
    shop_page.get_by_test_id("cashier-pay").click()
    expect(shop_page.get_by_test_id("order-status")).to_have_text("已发货")
    buyer.close()

    # The operator sees the use on the coupon's page.
    page.goto("/console/coupons")
    page.get_by_test_id("coupon-link").filter(has_text="星影立减3元").click()
    expect(page.get_by_test_id("coupon-taken")).to_have_text("1 / 50")
    expect(page.get_by_test_id("coupon-used")).to_have_text("1")
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_test_id("pause-coupon").click()
    expect(page.get_by_test_id("coupon-state")).to_have_text("已停用")
    _both(page, shots, "06-used-and-paused")

    # Single-use codes for a partner: a batch made on the coupon's page, downloaded as CSV.
    page.goto(f"/console/coupons/{facts['partner_id']}")
    page.get_by_test_id("batch-count").fill("100")
    page.get_by_test_id("batch-note").fill("合作方 A")
    page.get_by_test_id("batch-submit").click()
    expect(page.get_by_test_id("flash")).to_contain_text("已生成券码批次")
    expect(page.get_by_test_id("batch-row")).to_have_count(1)
    expect(page.get_by_test_id("coupon-taken")).to_have_text("100 / 1000")
    with page.expect_download() as download:
        page.get_by_test_id("batch-download").click()
    rows = Path(download.value.path()).read_text(encoding="utf-8-sig").splitlines()
    assert rows[0] == "code,coupon,status" and len(rows) == 101 and len({r.split(",")[0] for r in rows[1:]}) == 100
    _both(page, shots, "07-code-batch")
    context.close()
    assert errors == [], errors
