"""A buyer's account in a real browser (chromium through Playwright, real uvicorn server): buy as a guest and pay,
then sign up by a one-time code with the same e-mail, find the order under "my orders", open it and reveal its
card key (audited like every buyer reveal); the account page in English and on a phone.

Screenshots land in test-artifacts/screenshots/ (member-*.png).
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from live_shop import LiveShop, serve_demo_shop
from web.test_browser import (  # noqa: F401 - browser and shots are fixtures
    DEMO_CODE,
    DESKTOP,
    PHONE,
    _new_context,
    _shoot,
    _watch,
    browser,
    shots,
)

pytestmark = pytest.mark.browser
BUYER = "member-buyer@example.com"


@pytest.fixture(scope="module")
def member_shop(sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveShop]:
    """A demo shop with e-mail configured (codes go to the outbox; no worker sends them: the test reads the
    outbox as the buyer reads their mailbox)."""
    with serve_demo_shop(sqlite_template, tmp_path_factory.mktemp("member-browser"), smtp_host="127.0.0.1",
                         smtp_from="shop@example.com") as live:
        yield live


def _reveals(db_path: Path, order_no: str) -> list[str]:
    with sqlite3.connect(db_path) as db:
        return [r[0] for r in db.execute(
            "SELECT r.channel FROM inventory_key_reveal r JOIN orders_order o ON o.id = r.order_id "
            "WHERE o.order_no = ? ORDER BY r.id", (order_no,))]


def test_sign_up_by_code_see_my_orders_and_reveal_a_key(browser, member_shop, shots: Path) -> None:  # noqa: F811
    from playwright.sync_api import expect

    live = member_shop
    errors: list[str] = []
    context = _new_context(browser, live, viewport=DESKTOP)
    page = context.new_page()
    _watch(page, errors)

    # A guest buys and pays (no account yet).
    page.goto("/p/star-video-vip")
    page.get_by_test_id("sku-option").filter(has_text="月卡").click()
    page.locator("#contact").fill(BUYER)
    page.get_by_test_id("buy").click()
    expect(page).to_have_url(re.compile(r"/orders/\w+$"))
    order_no = page.get_by_test_id("order-no").inner_text().strip()
    page.get_by_test_id("pay").click()
    page.get_by_test_id("cashier-pay").click()
    expect(page.get_by_test_id("order-status")).to_have_text("已发货")
    page.context.clear_cookies()  # another day, another browser session: only the e-mail is left

    # Sign up by code from the top bar.
    page.goto("/")
    page.get_by_test_id("nav-account").click()
    expect(page).to_have_url(re.compile(r"/account/login\?next=/account$"))
    expect(page.locator("h1")).to_have_text("登录 / 注册")
    page.locator("#contact").fill(BUYER.upper())
    _shoot(page, shots, "member-01-login")
    page.get_by_test_id("send-code").click()
    expect(page.get_by_test_id("code-sent")).to_contain_text("m***@example.com")
    page.locator("#code").fill(live.mailbox_code(BUYER))
    _shoot(page, shots, "member-02-code")
    page.get_by_test_id("verify-submit").click()

    # My account: the guest order joined it.
    expect(page).to_have_url(re.compile(r"/account\?attached=1$"))
    expect(page.get_by_test_id("account-notice")).to_contain_text("1 个")
    expect(page.get_by_test_id("account-contact")).to_contain_text(BUYER)
    mine = page.get_by_test_id("account-order")
    expect(mine).to_have_count(1)
    expect(mine.first).to_contain_text("星影视频 VIP 会员")
    expect(mine.first).to_contain_text("已发货")
    _shoot(page, shots, "member-03-account")

    # Open it and reveal the key: audited as a buyer reveal of the web page.
    mine.first.locator("a").click()
    expect(page).to_have_url(re.compile(rf"/orders/{order_no}$"))
    page.get_by_test_id("reveal").click()
    code = page.get_by_test_id("card-code").inner_text().strip()
    assert DEMO_CODE.match(code), code
    assert live.api_keys(order_no) == [code]
    _shoot(page, shots, "member-04-key-revealed")
    assert _reveals(live.db_path, order_no)[0] == "web"

    # English, and a phone.
    page.goto("/account?lang=en")
    expect(page.locator("h1")).to_have_text("My account")
    expect(page.get_by_test_id("account-order").first).to_contain_text("Delivered")
    _shoot(page, shots, "member-05-account-en")
    page.goto("/account?lang=zh-CN")
    page.set_viewport_size(PHONE)
    _shoot(page, shots, "member-06-account-phone")
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]

    # Log out everywhere: the account asks for a login again.
    page.set_viewport_size(DESKTOP)
    page.get_by_test_id("logout-everywhere").click()
    expect(page).to_have_url(re.compile(r"/account/login\?out=everywhere$"))
    page.goto("/account")
    expect(page).to_have_url(re.compile(r"/account/login"))
    context.close()
    assert errors == [], errors
