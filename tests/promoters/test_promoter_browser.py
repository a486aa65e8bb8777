"""The promoter centre in a real browser (chromium through Playwright, a real uvicorn server): a member signs up,
applies (auto-approved) and gets a link and QR code; a buyer in another browser follows the link, buys and pays
at the sandbox cashier; the promoter's page then shows the commission (held for the refund window), also in
English and on a phone.

Screenshots land in test-artifacts/screenshots/ (promoter-*.png).
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from live_shop import LiveShop, serve_demo_shop
from web.test_browser import (  # noqa: F401 - browser and shots are fixtures
    DESKTOP,
    PHONE,
    _new_context,
    _shoot,
    _watch,
    browser,
    shots,
)

pytestmark = pytest.mark.browser
PROMOTER = "promoter@example.com"
BUYER = "friend@example.com"


@pytest.fixture(scope="module")
def promoter_shop(sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveShop]:
    """A demo shop with e-mail configured (sign-in codes wait in the outbox, where the test reads them)."""
    with serve_demo_shop(sqlite_template, tmp_path_factory.mktemp("promoter-browser"), smtp_host="127.0.0.1",
                         smtp_from="shop@example.com") as live:
        yield live


def _admin(live: LiveShop, method: str, path: str, body: dict) -> None:
    token = live.settings.admin_token.get_secret_value()
    response = httpx.request(method, f"{live.url}{path}", json=body, timeout=60,
                             headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.text


def test_promoter_applies_shares_the_link_and_sees_the_commission(browser, promoter_shop, shots: Path) -> None:  # noqa: F811
    from playwright.sync_api import expect

    live = promoter_shop
    _admin(live, "PUT", "/api/admin/promoter-program", {"auto_approve": True, "hold_days": 7})
    _admin(live, "PUT", "/api/admin/ledger/share-rules", {"sku_id": None, "distributor_bps": 1000})
    errors: list[str] = []

    # The promoter signs up by code and applies from the account page.
    context = _new_context(browser, live, viewport=DESKTOP)
    page = context.new_page()
    _watch(page, errors)
    page.goto("/account/login?next=/account")
    page.locator("#contact").fill(PROMOTER)
    page.get_by_test_id("send-code").click()
    page.locator("#code").fill(live.mailbox_code(PROMOTER))
    page.get_by_test_id("verify-submit").click()
    expect(page).to_have_url(re.compile(r"/account"))
    page.get_by_test_id("promoter-apply-link").click()
    page.locator("#promoter-name").fill("小王")
    page.locator("#promoter-note").fill("朋友圈")
    page.get_by_test_id("promoter-apply-submit").click()
    expect(page.get_by_test_id("promoter-notice")).to_be_visible()
    expect(page.get_by_test_id("promoter-status")).to_have_text("已通过")
    link = page.get_by_test_id("promoter-link-url").inner_text().strip()
    assert re.fullmatch(rf"{re.escape(live.url)}/r/[A-Z0-9]{{8}}", link), link
    expect(page.get_by_test_id("promoter-qr")).to_be_visible()
    qr = page.get_by_test_id("promoter-qr")
    expect(qr).to_have_js_property("complete", True)
    assert qr.evaluate("img => img.naturalWidth") > 0  # the QR code was drawn
    expect(page.get_by_test_id("promoter-balance")).to_have_text("¥0.00")
    _shoot(page, shots, "promoter-01-approved")

    # A friend follows the link in another browser, buys and pays.
    friend = _new_context(browser, live, viewport=DESKTOP)
    buyer = friend.new_page()
    _watch(buyer, errors)
    buyer.goto(f"{link}?next=/p/star-video-vip")
    expect(buyer).to_have_url(re.compile(r"/p/star-video-vip$"))
    buyer.get_by_test_id("sku-option").filter(has_text="月卡").click()
    buyer.locator("#contact").fill(BUYER)
    buyer.get_by_test_id("buy").click()
    expect(buyer).to_have_url(re.compile(r"/orders/\w+$"))
    order_no = buyer.get_by_test_id("order-no").inner_text().strip()
    buyer.get_by_test_id("pay").click()
    buyer.get_by_test_id("cashier-pay").click()
    expect(buyer.get_by_test_id("order-status")).to_have_text("已发货")
    with sqlite3.connect(live.db_path) as db:
        paid, code = db.execute("SELECT total_cents, distributor_code FROM orders_order WHERE order_no = ?",
                                (order_no,)).fetchone()
    assert link.endswith(f"/r/{code}")
    commission = f"¥{paid // 10 // 100}.{paid // 10 % 100:02d}"  # 10 % of what was paid
    friend.close()

    # The promoter's page shows it: balance, held for the refund window, the order in the statement.
    page.reload()
    expect(page.get_by_test_id("promoter-balance")).to_have_text(commission)
    expect(page.get_by_test_id("promoter-held")).to_have_text(commission)
    expect(page.get_by_test_id("promoter-available")).to_have_text("¥0.00")
    expect(page.get_by_test_id("promoter-orders")).to_have_text("1")
    expect(page.get_by_test_id("promoter-line").first).to_contain_text(order_no)
    expect(page.get_by_test_id("promoter-line").first).to_contain_text(commission)
    _shoot(page, shots, "promoter-02-commission")
    page.goto("/account")
    expect(page.get_by_test_id("promoter-card-balance")).to_have_text(commission)
    expect(page.get_by_test_id("points-balance")).to_contain_text("0")  # the points card (no orders of its own)
    _shoot(page, shots, "promoter-05-account")
    page.goto("/account/promoter?lang=en")
    expect(page.locator("h1")).to_have_text("Promoter centre")
    expect(page.get_by_test_id("promoter-status")).to_have_text("Approved")
    _shoot(page, shots, "promoter-03-en")
    page.goto("/account/promoter?lang=zh-CN")
    page.set_viewport_size(PHONE)
    _shoot(page, shots, "promoter-04-phone")
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    context.close()
    assert errors == [], errors
