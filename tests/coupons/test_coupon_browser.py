"""In a real browser (chromium, Playwright) against a real server: a buyer signs up by e-mail code, claims a
coupon in the claim centre, picks it at checkout, sees the server's price preview, pays the discounted amount at
the sandbox cashier and gets the goods. Screenshots: test-artifacts/screenshots/coupons-*.png."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from live_shop import LiveShop, serve_demo_shop
from quanyi.catalog.models import Product
from quanyi.coupons import service as coupons_service
from quanyi.db import utcnow
from web.test_browser import DESKTOP, PHONE, _new_context, _shoot, _watch, browser, shots  # noqa: F401 - the fixtures, shared with the buyer visit test

pytestmark = pytest.mark.browser
BUYER = "coupon.buyer@example.com"


async def _claimable_coupon(ctx) -> None:  # type: ignore[no-untyped-def]
    async with ctx.db.transaction() as session:
        product_id = await session.scalar(select(Product.id).where(Product.slug == "star-video-vip"))
        now = utcnow()
        await coupons_service.create_coupon(session=session, owner=1, fields={
            "name": "星影月卡立减5元", "description": "星影视频会员专享", "kind": "amount_off", "amount_off_cents": 500,
            "threshold_cents": 1000, "currency": "CNY", "starts_at": now - dt.timedelta(days=1),
            "ends_at": now + dt.timedelta(days=30), "total_quantity": 100, "per_member_limit": 1,
            "distribution": "claim"}, targets=[("product", product_id)])


@pytest.fixture(scope="module")
def coupon_shop(sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveShop]:
    # E-mail configured but no worker: sign-in codes wait in the outbox, where the test reads them.
    with serve_demo_shop(sqlite_template, tmp_path_factory.mktemp("browser-coupons"), setup=_claimable_coupon,
                         smtp_host="127.0.0.1", smtp_from="shop@example.com") as live:
        yield live


def test_buyer_claims_a_coupon_and_buys_with_it(browser, coupon_shop, shots: Path) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    from playwright.sync_api import expect

    live_shop = coupon_shop
    errors: list[str] = []
    context = _new_context(browser, live_shop, viewport=DESKTOP)
    page = context.new_page()
    _watch(page, errors)

    # The claim centre asks a guest to sign in first.
    page.goto("/coupons")
    expect(page.locator("h1")).to_have_text("领券中心")
    coupon = page.get_by_test_id("claimable-coupon").filter(has_text="星影月卡立减5元")
    expect(coupon).to_contain_text("满¥10.00减¥5.00")
    coupon.get_by_test_id("login-to-claim").click()

    # Sign up by e-mail code and come back to the claim centre.
    page.locator("#contact").fill(BUYER)
    page.get_by_test_id("send-code").click()
    expect(page.get_by_test_id("code-sent")).to_be_visible()
    page.locator("#code").fill(live_shop.mailbox_code(BUYER))
    page.get_by_test_id("verify-submit").click()
    expect(page).to_have_url(re.compile(r"/coupons$"))
    _shoot(page, shots, "coupons-01-claim-centre")

    page.get_by_test_id("claimable-coupon").filter(has_text="星影月卡立减5元").get_by_test_id("claim").click()
    expect(page.get_by_test_id("coupons-notice")).to_be_visible()
    expect(page.get_by_test_id("my-coupon").filter(has_text="星影月卡立减5元")).to_have_attribute("data-status",
                                                                                               "available")
    _shoot(page, shots, "coupons-02-claimed")
    page.set_viewport_size(PHONE)
    _shoot(page, shots, "coupons-mobile-claim-centre")
    page.set_viewport_size(DESKTOP)

    # Checkout: choose the coupon, preview the price (the server's breakdown), buy.
    page.goto("/p/star-video-vip")
    page.get_by_test_id("sku-option").filter(has_text="月卡").click()
    page.get_by_test_id("member-coupon").select_option(label="星影月卡立减5元 · 满¥10.00减¥5.00")
    page.locator("#contact").fill(BUYER)
    page.get_by_test_id("apply-coupon").click()
    expect(page.get_by_test_id("coupon-discount")).to_have_text("−¥5.00")
    expect(page.get_by_test_id("total")).to_have_text("¥14.80")
    _shoot(page, shots, "coupons-03-checkout-preview")
    page.get_by_test_id("buy").click()
    expect(page).to_have_url(re.compile(r"/orders/\w+$"))
    expect(page.get_by_test_id("order-status")).to_have_text("待支付")

    page.get_by_test_id("pay").click()
    expect(page.get_by_test_id("cashier-amount")).to_have_text("¥14.80")
    page.get_by_test_id("cashier-pay").click()
    expect(page.get_by_test_id("order-status")).to_have_text("已发货")
    _shoot(page, shots, "coupons-04-paid-with-coupon")

    # The coupon is used now: the claim centre says so, and it cannot be claimed again.
    page.goto("/coupons")
    expect(page.get_by_test_id("my-coupon").filter(has_text="星影月卡立减5元")).to_have_attribute("data-status", "used")
    expect(page.get_by_test_id("claimable-coupon").filter(has_text="星影月卡立减5元").get_by_test_id("claimed")) \
        .to_be_visible()
    assert errors == [], errors
    context.close()
