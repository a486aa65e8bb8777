"""The console in a real browser (Debian's chromium through Playwright) against a real uvicorn server with the demo
shop: the owner logs in with a second factor and reads the dashboard (a chart really drawn), finds an order whose
payment notification was lost and 补单s it, and a reviewer approves a held order on a phone.

Screenshots of every step land in test-artifacts/screenshots/console-*.png (desktop and a 390x844 phone).
"""

from __future__ import annotations

import datetime as dt
import re
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlparse

import pytest

from live_shop import LiveShop, serve_demo_shop
from quanyi.catalog import service as catalog_service
from quanyi.orders import service as orders_service
from quanyi.payments import service as payments_service
from quanyi.payments.sandbox import server as sandbox_server
from quanyi.risk import ruleset
from quanyi.staff import second_factor, totp
from quanyi.staff import service as staff_service
from web.test_browser import DESKTOP, PHONE, TIMEOUT_MS, _new_context, _shoot, _watch, browser, shots

pytestmark = pytest.mark.browser
PASSWORD = "correct horse battery"
__all__ = ["browser", "shots"]  # module-scoped fixtures shared with the storefront's browser test


async def _order(ctx: Any, sku_code: str, *, contact: str, quantity: int = 1, notify: bool = True) -> str:
    """An order paid at the sandbox; without `notify` the sandbox has the money and the shop does not know."""
    async with ctx.db.transaction() as session:
        sku = await catalog_service.get_sku_by_code(session=session, code=sku_code)
        order = await orders_service.create_order(session=session, sku_id=sku.id, quantity=quantity, contact=contact,
                                                  reservation_ttl=dt.timedelta(minutes=15), ip="203.0.113.9")
        order_no = order.order_no
    base = ctx.settings.public_base_url
    started = await payments_service.start_payment(
        db=ctx.db, order_no=order_no, gateway=ctx.gateways.get("sandbox"), notify_url=f"{base}/payments/sandbox/notify",
        return_url=f"{base}/orders/{order_no}")
    token = parse_qs(urlparse(started.checkout.cashier_url or "").query)["t"][0]
    ticket = sandbox_server.read_ticket(token, secret=ticket_secret(ctx))
    async with ctx.db.transaction() as session:
        trade = await sandbox_server.pay(session=session, ticket=ticket)  # paid at the gateway
    if notify:  # its signed notification, through the shop's notification handling (the server is not up yet)
        body = urlencode(sandbox_server.signed_notification(trade, secret=ticket_secret(ctx))).encode()
        async with ctx.db.transaction() as session:
            await payments_service.handle_notification(
                session=session, gateway=ctx.gateways.get("sandbox"), body=body,
                headers={"content-type": "application/x-www-form-urlencoded"})
    return order_no


def ticket_secret(ctx: Any) -> str:
    return str(ctx.settings.sandbox_secret.get_secret_value())


@pytest.fixture(scope="module")
def console_shop(sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveShop, dict]]:
    facts: dict[str, Any] = {}

    async def setup(ctx: Any) -> None:
        async with ctx.db.transaction() as session:
            owner = await staff_service.create_staff(session=session, username="boss", password=PASSWORD,
                                                     roles=["owner"])
            await staff_service.create_staff(session=session, username="rita", password=PASSWORD,
                                             roles=["risk_reviewer"])
            await staff_service.create_staff(session=session, username="cata", password=PASSWORD,
                                             roles=["operator"])
            enrolment = second_factor.start_enrolment(cipher=ctx.cipher, staff_id=owner.id, account="boss",
                                                      issuer="shop")
            # Enrolled a minute ago: the login's code (this time step) has not been used yet.
            before = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)
            await second_factor.confirm_enrolment(session=session, cipher=ctx.cipher, staff_id=owner.id,
                                                  sealed=enrolment.sealed, now=before,
                                                  code=totp.totp(enrolment.secret, before.timestamp()))
            await ruleset.create_rule(session=session, name="two or more need a look", kind="amount_limit",
                                      params={"scope": "order", "max_quantity": 1}, stages=["payment"],
                                      action="review", score=0, reason_code="big_order")
        facts["secret"] = enrolment.secret
        for i, code in enumerate(("STAR-VIP-1M", "STAR-VIP-12M", "CLOUD-MUSIC-12M", "STAR-VIP-1M")):
            await _order(ctx, code, contact=f"fan{i}@example.com")
        facts["lost"] = await _order(ctx, "STAR-VIP-3M", contact="lost.buyer@example.com", notify=False)
        facts["held"] = await _order(ctx, "ZEN-OFFICE-LIFE", contact="bulk@example.com", quantity=2)

    with serve_demo_shop(sqlite_template, tmp_path_factory.mktemp("console-browser"), setup=setup,
                         sandbox_here=True) as live:
        yield live, facts


def _log_in(page: Any, username: str) -> None:
    page.locator("#username").fill(username)
    page.locator("#password").fill(PASSWORD)
    page.get_by_test_id("login-submit").click()


def _wait_until(page: Any, expression: str) -> None:
    """Poll a page expression from here (page.wait_for_function evaluates strings in the page, which the
    console's CSP, rightly, refuses)."""
    deadline = time.monotonic() + TIMEOUT_MS / 1000
    while not page.evaluate(expression):
        assert time.monotonic() < deadline, f"still false: {expression}"
        page.wait_for_timeout(50)


def _chart_has_ink(page: Any, testid: str) -> bool:
    """The chart's canvas exists and has painted pixels (ECharts really drew, not an empty box)."""
    return bool(page.evaluate("""(id) => {
        const canvas = document.querySelector(`[data-testid="${id}"] canvas`);
        if (!canvas || canvas.width === 0) return false;
        const pixels = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
        let painted = 0;
        for (let i = 3; i < pixels.length; i += 4) if (pixels[i] > 0) painted++;
        return painted > 500;
    }""", testid))


def test_owner_logs_in_with_a_second_factor_reads_the_dashboard_and_recovers_a_lost_payment(
        browser: Any, console_shop: tuple[LiveShop, dict], shots: Path) -> None:
    from playwright.sync_api import expect

    shop, facts = console_shop
    errors: list[str] = []
    context = _new_context(browser, shop, viewport=DESKTOP)
    page = context.new_page()
    _watch(page, errors)

    page.goto("/console")
    expect(page).to_have_url(re.compile(r"/console/login$"))
    _shoot(page, shots, "console-01-login")
    _log_in(page, "boss")
    expect(page).to_have_url(re.compile(r"/console/login/verify"))
    _shoot(page, shots, "console-02-second-factor")
    page.locator("#code").fill(totp.totp(facts["secret"], dt.datetime.now(dt.UTC).timestamp()))
    page.get_by_test_id("verify-submit").click()

    # The dashboard: figures and charts drawn by ECharts in the browser.
    expect(page).to_have_url(re.compile(r"/console/dashboard$"))
    expect(page.get_by_test_id("kpi-paid").locator(".c-kpi-value")).to_have_text("5")
    expect(page.get_by_test_id("kpi-reviews").locator(".c-kpi-value")).to_have_text("1")
    expect(page.get_by_test_id("chart-by-hour").locator("canvas")).to_have_count(1)
    expect(page.get_by_test_id("chart-by-sku").locator("canvas")).to_have_count(1)
    _wait_until(page, "document.querySelector('[data-testid=chart-by-sku]').dataset.drawn === 'true'")
    assert _chart_has_ink(page, "chart-by-hour") and _chart_has_ink(page, "chart-by-sku")
    expect(page.get_by_test_id("stock-alerts")).to_contain_text("COFFEE-M")
    _shoot(page, shots, "console-03-dashboard")
    page.get_by_role("link", name="近 30 天").click()
    expect(page.get_by_test_id("chart-by-day").locator("canvas")).to_have_count(1)
    _shoot(page, shots, "console-04-dashboard-30-days")

    # Find the order by its buyer's contact and 补单 it: the gateway has the payment, the shop did not know.
    page.get_by_test_id("menu").get_by_role("link", name="订单管理").click()
    page.get_by_test_id("filter-contact").fill("lost.buyer@example.com")
    page.get_by_test_id("search").click()
    expect(page.get_by_test_id("order-row")).to_have_count(1)
    expect(page.get_by_test_id("order-row").get_by_test_id("status-badge")).to_have_text("待支付")
    _shoot(page, shots, "console-05-orders-found")
    page.get_by_test_id("order-link").click()
    expect(page.locator("h1")).to_contain_text(facts["lost"])
    _shoot(page, shots, "console-06-order-before-recheck")
    page.get_by_test_id("recheck").click()
    expect(page.get_by_test_id("flash")).to_contain_text("补单成功")
    expect(page.locator("h1").get_by_test_id("status-badge")).to_have_text("已发货")
    expect(page.get_by_test_id("timeline")).to_contain_text("发放卡密 1 个")
    _shoot(page, shots, "console-07-order-after-recheck")

    # The same order on a phone; nothing overflows sideways.
    page.set_viewport_size(PHONE)
    page.reload()
    _shoot(page, shots, "console-08-order-phone")
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    page.set_viewport_size(DESKTOP)

    # English, and the audit log of what the owner did.
    page.goto("/console/audit?lang=en")
    expect(page.locator("h1")).to_have_text("Staff audit log")
    expect(page.get_by_test_id("audit-row").first).to_contain_text("Payment rechecked")
    _shoot(page, shots, "console-09-audit-en")
    context.close()
    assert errors == [], errors


def test_a_reviewer_approves_a_held_order_on_a_phone(browser: Any, console_shop: tuple[LiveShop, dict],
                                                    shots: Path) -> None:
    from playwright.sync_api import expect

    shop, facts = console_shop
    errors: list[str] = []
    context = _new_context(browser, shop, viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True)
    page = context.new_page()
    _watch(page, errors)
    page.goto("/console/reviews")
    _log_in(page, "rita")
    expect(page).to_have_url(re.compile(r"/console/reviews$"))
    expect(page.get_by_test_id("held-order")).to_have_count(1)
    _shoot(page, shots, "console-10-review-queue-phone")
    menu_left = "document.querySelector('[data-testid=menu]').getBoundingClientRect().left"
    assert page.evaluate(menu_left) < 0  # folded away on a phone
    page.get_by_test_id("menu-toggle").click()
    _wait_until(page, f"{menu_left} === 0")  # slid in
    expect(page.get_by_test_id("menu").get_by_role("link", name="风控审核")).to_be_visible()
    _shoot(page, shots, "console-11-menu-phone")
    page.get_by_test_id("menu-toggle").click()
    _wait_until(page, f"{menu_left} < 0")

    page.get_by_test_id("held-order").click()
    expect(page.get_by_test_id("review-decisions")).to_contain_text("two or more need a look")
    page.get_by_test_id("review-reason").fill("bulk buyer, confirmed by phone")
    _shoot(page, shots, "console-12-review-phone")
    page.get_by_test_id("approve").click()
    expect(page.get_by_test_id("flash")).to_contain_text("已通过审核")
    expect(page.locator("h1").get_by_test_id("status-badge")).to_have_text("已发货")
    _shoot(page, shots, "console-13-review-approved-phone")
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    page.goto("/console/reviews")
    expect(page.get_by_test_id("queue-empty")).to_be_visible()
    context.close()
    assert errors == [], errors


def test_operator_edits_a_product_with_a_live_guide_preview_and_a_buyer_picks_a_key(
        browser: Any, console_shop: tuple[LiveShop, dict], shots: Path) -> None:
    """Catalog: edit a product (the redemption guide's preview follows the typing), turn on 自选卡密 for a SKU and
    label three keys; then a buyer picks one of them by its label on the storefront, pays the surcharge at the
    sandbox cashier and gets exactly that key."""
    from playwright.sync_api import expect

    shop, _facts = console_shop
    errors: list[str] = []
    context = _new_context(browser, shop, viewport=DESKTOP)
    page = context.new_page()
    _watch(page, errors)
    page.goto("/console/login")
    _log_in(page, "cata")
    page.get_by_test_id("menu").get_by_role("link", name="商品管理").click()
    expect(page.locator('[data-testid=product-row][data-slug="cloud-music-vinyl"]')).to_have_count(1)
    _shoot(page, shots, "catalog-01-products")
    page.locator('[data-testid=product-row][data-slug="cloud-music-vinyl"]').get_by_test_id("product-link").click()

    # The guide's preview is drawn by the shop's renderer while the operator types.
    guide = page.get_by_test_id("product-guide")
    guide.fill("### 新的兑换步骤\n1. 打开 **云听音乐** App\n2. 粘贴卡密 <b>不会变粗</b>")
    preview = page.get_by_test_id("guide-preview")
    expect(preview.locator("h3")).to_have_text("新的兑换步骤")
    expect(preview.locator("strong")).to_have_text("云听音乐")
    expect(preview).to_contain_text("<b>不会变粗</b>")  # raw HTML shows as text, never as markup
    page.get_by_test_id("product-name").fill("云听音乐 黑胶会员（新版）")
    _shoot(page, shots, "catalog-02-edit-guide-preview")
    page.get_by_test_id("save-product").click()
    expect(page.get_by_test_id("flash")).to_have_text("已保存")

    # 自选卡密 on the monthly card: a surcharge, then labels for three keys (codes masked on the page).
    sku_form = page.locator('[data-testid=sku-form][data-sku="CLOUD-MUSIC-1M"]')
    sku_form.get_by_test_id("sku-pick-surcharge").fill("2.00")
    sku_form.get_by_test_id("save-sku").click()
    expect(page.get_by_test_id("flash")).to_have_text("已保存")
    sku_form = page.locator('[data-testid=sku-form][data-sku="CLOUD-MUSIC-1M"]')
    expect(sku_form.get_by_test_id("sku-type")).to_have_text("自选卡密")
    _shoot(page, shots, "catalog-03-sku-pick-surcharge")
    sku_form.get_by_test_id("pick-labels-link").click()
    inputs = page.get_by_test_id("label-input")
    for n, label in enumerate(("靓号 8888 · 年费绿钻", "靓号 6666 · 送三个月", "普通号 · 1 个月")):
        inputs.nth(n).fill(label)
    _shoot(page, shots, "catalog-04-pick-labels")
    page.get_by_test_id("save-labels").click()
    expect(page.get_by_test_id("flash")).to_contain_text("3")
    context.close()

    # The buyer: the labels (never codes) on the product page; the picked key costs 2.00 more.
    buyer = _new_context(browser, shop, viewport=DESKTOP)
    buyer.set_default_timeout(TIMEOUT_MS)
    page = buyer.new_page()
    _watch(page, errors)
    page.goto("/p/cloud-music-vinyl")
    expect(page.locator("h1")).to_have_text("云听音乐 黑胶会员（新版）")
    expect(page.get_by_test_id("pick-option")).to_have_count(3)
    expect(page.locator("section.guide")).to_contain_text("新的兑换步骤")
    picked = page.get_by_test_id("pick-option").filter(has_text="靓号 6666").locator("input")
    picked_id = int(picked.get_attribute("value") or 0)
    picked.check()
    expect(page.get_by_test_id("total")).to_have_text("¥14.00")  # ¥12.00 + ¥2.00
    page.locator("#contact").fill("picker@example.com")
    _shoot(page, shots, "catalog-05-storefront-pick")
    page.get_by_test_id("buy").click()
    expect(page).to_have_url(re.compile(r"/orders/\w+$"))
    order_no = page.get_by_test_id("order-no").inner_text().strip()
    page.get_by_test_id("pay").click()
    expect(page.get_by_test_id("cashier-amount")).to_have_text("¥14.00")
    page.get_by_test_id("cashier-pay").click()
    expect(page.get_by_test_id("order-status")).to_have_text("已发货")
    page.get_by_test_id("reveal").click()
    expect(page.get_by_test_id("card-code")).to_have_count(1)
    code = page.get_by_test_id("card-code").inner_text().strip()
    _shoot(page, shots, "catalog-06-picked-key-revealed")
    assert shop.api_keys(order_no) == [code]
    with sqlite3.connect(shop.settings.database_url.removeprefix("sqlite:///")) as db:  # exactly the picked key
        assert db.execute("SELECT o.order_no FROM inventory_card_key k JOIN orders_order o ON o.id = k.order_id "
                          "WHERE k.id = ?", (picked_id,)).fetchall() == [(order_no,)]
    page.goto("/p/cloud-music-vinyl")
    expect(page.get_by_test_id("pick-option")).to_have_count(2)  # the picked key is gone from the list
    assert "靓号 6666" not in page.get_by_test_id("pick-list").inner_text()
    page.set_viewport_size(PHONE)
    _shoot(page, shots, "catalog-07-storefront-pick-phone")
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    buyer.close()
    assert errors == [], errors
