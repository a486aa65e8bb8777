"""A buyer's whole visit in a real browser (Debian's chromium driven by Playwright) against a real uvicorn
server: browse, pick a SKU, fix a bad contact, pay at the sandbox cashier (which notifies the shop over real
HTTP), reveal and copy the card key, then find the order again from a fresh browser with no cookies.

Full-page screenshots of every step land in test-artifacts/screenshots/ (desktop and a 390x844 phone).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from live_shop import LiveShop, listening_socket, serve_demo_shop
from quanyi.testpeers.demo import configure_shop, run_demo_peers
from quanyi.testpeers.runner import free_port

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-dev-shm-usage", "--no-first-run", "--disable-component-update", "--disable-sync"]
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
DEMO_CODE = re.compile(r"^[A-HJ-NP-Z2-9]{4}(-[A-HJ-NP-Z2-9]{4}){3}$")  # demo._code(): 4 groups of 4
BUYER = "buyer@example.com"
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 860}
TIMEOUT_MS = 30_000  # every wait and expect(): generous, a loaded machine may stall


# ---------------------------------------------------------------- the demo shop on a real port (live_shop.py)

@pytest.fixture(scope="module")
def live_shop(sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveShop]:
    with serve_demo_shop(sqlite_template, tmp_path_factory.mktemp("browser")) as live:
        yield live


@pytest.fixture(scope="module")
def peer_shop(sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveShop]:
    """A demo shop whose Alipay / WeChat Pay / Stripe accounts point at the simulators (test peers), all on
    real ports: the browser, the shop and the simulators talk over real HTTP, notifications included."""
    bound = listening_socket()
    ports = {name: free_port() for name in ("alipay", "wechat", "stripe")}
    with run_demo_peers(shop_url=bound[1], ports=ports) as peers, serve_demo_shop(
            sqlite_template, tmp_path_factory.mktemp("browser-peers"), bound=bound,
            setup=lambda ctx: configure_shop(ctx, peers.accounts, enabled=True)) as live:
        yield live


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    problem = None
    if not (CHROMIUM.exists() and os.access(CHROMIUM, os.X_OK)):
        problem = f"{CHROMIUM} is not installed (Debian package `chromium`); the browser test cannot run"
    else:
        try:
            from playwright.sync_api import expect, sync_playwright
        except ImportError:
            problem = "the `playwright` Python package is not installed (pip install -e '.[dev]')"
    if problem:
        if IN_CI:
            pytest.fail(problem)
        pytest.skip(problem)
    expect.set_options(timeout=TIMEOUT_MS)  # expect() waits 5 s unless told: too little on a loaded machine
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture(scope="module")
def shots() -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS


def _new_context(browser, live_shop: LiveShop, **options):  # type: ignore[no-untyped-def]
    context = browser.new_context(base_url=live_shop.url, locale="zh-CN", **options)
    context.set_default_timeout(TIMEOUT_MS)
    return context


def _watch(page, errors: list[str]) -> None:  # type: ignore[no-untyped-def]
    """Collect script errors, CSP violations, failed sub-resources (a 422 form page is expected) and any request
    that leaves this machine: the shop, its simulators and the sandbox all listen on loopback, and a page
    loads everything from the shop itself (no CDN)."""
    page.on("pageerror", lambda exc: errors.append(f"script error: {exc}"))
    page.on("request", lambda r: errors.append(f"outside the shop: {r.url}")
            if urlsplit(r.url).scheme in ("http", "https", "ws", "wss")
            and urlsplit(r.url).hostname not in ("127.0.0.1", "localhost", "::1") else None)
    page.on("console", lambda msg: errors.append(f"console: {msg.text}")
            if msg.type == "error" and not msg.text.startswith("Failed to load resource") else None)
    page.on("response", lambda r: errors.append(f"{r.status} {r.url}")
            if r.status >= 400 and r.request.resource_type != "document" else None)
    # A sub-resource still loading when the page navigates away (the favicon, typically) is aborted by the
    # browser: that is not a broken resource. Any other network failure is.
    page.on("requestfailed", lambda r: errors.append(f"failed {r.url}: {r.failure}")
            if "ERR_ABORTED" not in (r.failure or "") else None)


def _shoot(page, shots: Path, name: str) -> None:  # type: ignore[no-untyped-def]
    page.screenshot(path=str(shots / f"{name}.png"), full_page=True)


# ---------------------------------------------------------------- the buyer's visit

def test_buyer_pays_reveals_copies_and_finds_order_again(browser, live_shop: LiveShop, shots: Path) -> None:
    from playwright.sync_api import expect

    errors: list[str] = []
    context = _new_context(browser, live_shop, viewport=DESKTOP)
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_shop.url)
    page = context.new_page()
    _watch(page, errors)

    # Home: categories and product cards.
    page.goto("/")
    expect(page.locator(".chips .chip")).to_have_count(4)
    expect(page.get_by_test_id("product-card").first).to_be_visible()
    _shoot(page, shots, "desktop-01-home")

    # Product: choose the monthly card; the live total follows the choice.
    page.get_by_test_id("product-card").filter(has_text="星影视频 VIP 会员").click()
    expect(page).to_have_url(re.compile(r"/p/star-video-vip$"))
    expect(page.locator("h1")).to_have_text("星影视频 VIP 会员")
    page.get_by_test_id("sku-option").filter(has_text="季卡").click()
    expect(page.get_by_test_id("total")).to_have_text("¥54.00")
    page.get_by_test_id("sku-option").filter(has_text="月卡").click()
    expect(page.get_by_test_id("sku-option").filter(has_text="月卡").locator("input")).to_be_checked()
    expect(page.get_by_test_id("total")).to_have_text("¥19.80")
    _shoot(page, shots, "desktop-02-product")

    # A contact that is neither an e-mail nor a mobile number is refused, with the choice kept.
    page.locator("#contact").fill("not-a-contact")
    page.get_by_test_id("buy").click()
    expect(page.get_by_test_id("contact-error")).to_have_text("请填写有效的邮箱或手机号")
    expect(page.get_by_test_id("sku-option").filter(has_text="月卡").locator("input")).to_be_checked()
    _shoot(page, shots, "desktop-03-product-invalid-contact")

    page.locator("#contact").fill(BUYER)
    page.locator("#quantity").fill("1")
    expect(page.get_by_test_id("total")).to_have_text("¥19.80")
    page.get_by_test_id("buy").click()

    # Order page: awaiting payment.
    expect(page).to_have_url(re.compile(r"/orders/\w+$"))
    expect(page.get_by_test_id("order-status")).to_have_text("待支付")
    order_no = page.get_by_test_id("order-no").inner_text().strip()
    assert re.fullmatch(r"\d{6}[0-9A-Z]{8}", order_no), order_no
    _shoot(page, shots, "desktop-04-order-pending")
    page.set_viewport_size(PHONE)
    _shoot(page, shots, "mobile-order-pending")
    page.set_viewport_size(DESKTOP)

    # Pay at the sandbox cashier, which notifies the shop and sends the buyer back.
    page.get_by_test_id("pay").click()
    expect(page).to_have_url(re.compile(r"/sandbox/cashier\?t="))
    expect(page.get_by_test_id("cashier-amount")).to_have_text("¥19.80")
    _shoot(page, shots, "desktop-05-cashier")
    page.get_by_test_id("cashier-pay").click()
    expect(page).to_have_url(re.compile(rf"/orders/{order_no}\?from=cashier$"))
    expect(page.get_by_test_id("order-status")).to_have_text("已发货")
    expect(page.get_by_test_id("card-code")).to_have_count(0)
    _shoot(page, shots, "desktop-06-order-delivered")

    # Reveal: the key shown is the one the API hands out for this order.
    page.get_by_test_id("reveal").click()
    code_cell = page.get_by_test_id("card-code")
    expect(code_cell).to_have_count(1)
    code = code_cell.inner_text().strip()
    assert DEMO_CODE.match(code), code
    assert live_shop.api_keys(order_no) == [code]
    expect(page.get_by_test_id("guide")).to_contain_text("兑换步骤")
    _shoot(page, shots, "desktop-07-keys-revealed")

    copy = page.get_by_test_id("copy-code")
    copy.click()
    expect(copy).to_have_text("已复制")
    assert page.evaluate("navigator.clipboard.readText()") == code
    _shoot(page, shots, "desktop-08-key-copied")

    # The same pages on a phone (the order's access cookie comes along).
    phone = _new_context(browser, live_shop, viewport=PHONE, device_scale_factor=2, is_mobile=True,
                         has_touch=True, storage_state=context.storage_state())
    mobile = phone.new_page()
    _watch(mobile, errors)
    for path, name in (("/", "home"), ("/p/star-video-vip", "product"), (f"/orders/{order_no}", "order")):
        mobile.goto(path)
        expect(mobile.locator("h1").first).to_be_visible()
        _shoot(mobile, shots, f"mobile-{name}")
    mobile.get_by_test_id("reveal").click()
    expect(mobile.get_by_test_id("card-code")).to_have_text(code)
    _shoot(mobile, shots, "mobile-order-keys")
    # Nothing overflows sideways on a phone.
    assert mobile.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    phone.close()
    context.close()

    # A different device, no cookies: find the order by number + contact.
    fresh = _new_context(browser, live_shop, viewport=DESKTOP)
    page = fresh.new_page()
    _watch(page, errors)
    page.goto(f"/orders/{order_no}")
    expect(page).to_have_url(re.compile(r"/lookup\?order_no="))
    page.goto("/lookup")
    page.locator("#order_no").fill(order_no)
    page.locator("#contact").fill("Buyer@Example.com")
    _shoot(page, shots, "desktop-09-lookup")
    page.get_by_test_id("lookup-submit").click()
    expect(page).to_have_url(re.compile(rf"/orders/{order_no}$"))
    expect(page.get_by_test_id("order-status")).to_have_text("已发货")
    _shoot(page, shots, "desktop-10-lookup-found")

    # English: one switch, remembered by cookie.
    page.goto(f"/orders/{order_no}?lang=en")
    expect(page.get_by_test_id("order-status")).to_have_text("Delivered")
    expect(page.get_by_test_id("reveal")).to_have_text("Show card keys")
    _shoot(page, shots, "desktop-11-order-en")
    page.goto("/")
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.locator(".hero h1")).to_have_text("Digital goods, delivered instantly")
    _shoot(page, shots, "desktop-12-home-en")
    page.goto("/p/star-video-vip")
    expect(page.get_by_test_id("buy")).to_have_text("Buy now")
    page.get_by_test_id("sku-option").filter(has_text="年卡").click()
    expect(page.locator("#quantity-hint")).to_have_text("1–5 per order")
    page.get_by_role("button", name="More").click()
    expect(page.locator("#quantity")).to_have_value("2")
    expect(page.get_by_test_id("total")).to_have_text("¥396.00")

    # Nothing left to sell: the buy button says so; unknown pages get the shop's own 404 page.
    page.goto("/p/coffee-voucher?lang=zh-CN")
    expect(page.get_by_test_id("buy")).to_be_disabled()
    expect(page.get_by_test_id("stock-badge")).to_have_text("已售罄")
    _shoot(page, shots, "desktop-13-sold-out")
    response = page.goto("/p/no-such-product")
    assert response is not None and response.status == 404
    expect(page.locator("h1")).to_have_text("页面不存在")
    _shoot(page, shots, "desktop-14-not-found")
    fresh.close()

    assert errors == [], errors


# ---------------------------------------------------------------- merchants (商户入驻) in a real browser

def test_merchant_shop_page_and_application_form_in_both_languages(browser, live_shop: LiveShop,
                                                                  shots: Path) -> None:
    """The demo platform's merchant: its goods on the home page, the product naming the shop, the shop's page;
    then someone applies to sell, in English, and lands on the status page."""
    from playwright.sync_api import expect

    context = _new_context(browser, live_shop)
    page = context.new_page()
    errors: list[str] = []
    _watch(page, errors)
    page.goto("/p/moonlight-game-card")
    expect(page.get_by_test_id("sold-by")).to_contain_text("月光数码")
    page.get_by_test_id("sold-by").get_by_role("link").click()
    expect(page).to_have_url(re.compile(r"/m/moonlight$"))
    expect(page.get_by_test_id("merchant-head")).to_contain_text("月光数码")
    expect(page.get_by_test_id("product-card")).to_have_count(1)
    _shoot(page, shots, "desktop-20-merchant-page")
    page.goto("/m/moonlight?lang=en")
    expect(page.get_by_test_id("product-card")).to_contain_text("In stock")
    page.goto("/merchants/apply")
    expect(page.locator("h1")).to_have_text("Apply to sell on this platform")
    for field, value in (("code", "browser-shop"), ("name", "Browser Shop"), ("contact_email", "a@example.com"),
                         ("owner_username", "browser.owner"), ("owner_password", "correct horse battery")):
        page.locator(f"#{field}").fill(value)
    page.get_by_test_id("apply-submit").click()
    expect(page.get_by_test_id("application-status")).to_have_attribute("data-status", "pending")
    expect(page.get_by_test_id("application-status")).to_contain_text("Under review")
    _shoot(page, shots, "desktop-21-application-en")
    page.goto(page.url + "&lang=zh-CN")
    expect(page.get_by_test_id("application-status")).to_contain_text("审核中")
    context.close()
    assert errors == [], errors


# ---------------------------------------------------------------- real gateways (simulated) in a real browser

def _order_for_payment(page) -> str:  # type: ignore[no-untyped-def]
    from playwright.sync_api import expect

    page.goto("/p/star-video-vip")
    page.get_by_test_id("sku-option").filter(has_text="月卡").click()
    page.locator("#contact").fill(BUYER)
    page.get_by_test_id("buy").click()
    expect(page.get_by_test_id("order-status")).to_have_text("待支付")
    return page.get_by_test_id("order-no").inner_text().strip()


def test_buyer_pays_with_wechat_alipay_and_stripe_simulators(browser, peer_shop: LiveShop, shots: Path) -> None:
    from playwright.sync_api import expect

    errors: list[str] = []
    context = _new_context(browser, peer_shop, viewport=DESKTOP)
    page = context.new_page()
    _watch(page, errors)

    # WeChat Pay (Native): the shop shows a QR code; the "phone" scans it on the simulator's page.
    order_no = _order_for_payment(page)
    for title in ("Sandbox", "支付宝", "微信支付", "Stripe"):
        expect(page.locator(".gateways")).to_contain_text(title)
    _shoot(page, shots, "desktop-20-order-gateways")
    page.locator("input[name=gateway][value=wechat]").check()
    page.get_by_test_id("pay").click()
    expect(page).to_have_url(re.compile(rf"/orders/{order_no}/scan\?gateway=wechat$"))
    expect(page.get_by_test_id("qr").locator("svg")).to_be_visible()
    expect(page.get_by_test_id("scan-amount")).to_have_text("¥19.80")
    _shoot(page, shots, "desktop-21-wechat-scan")
    phone = context.new_page()
    phone.goto(page.get_by_test_id("demo-scan").get_attribute("href"))
    phone.get_by_role("button").click()
    expect(phone.locator("h1")).to_contain_text("支付成功")
    phone.close()
    # The scan page refreshes itself and moves on to the order once the notification has landed.
    expect(page).to_have_url(re.compile(rf"/orders/{order_no}$"), timeout=TIMEOUT_MS)
    expect(page.get_by_test_id("order-status")).to_have_text("已发货")
    _shoot(page, shots, "desktop-22-wechat-delivered")

    # Alipay (page pay): off to the gateway's cashier and back.
    order_no = _order_for_payment(page)
    page.locator("input[name=gateway][value=alipay]").check()
    page.get_by_test_id("pay").click()
    expect(page).to_have_url(re.compile(r"/cashier\?out_trade_no=PY"))
    expect(page.locator("body")).to_contain_text("19.80")
    _shoot(page, shots, "desktop-23-alipay-cashier")
    page.get_by_role("button").click()
    expect(page).to_have_url(re.compile(rf"/orders/{order_no}\?from=cashier"))
    expect(page.get_by_test_id("order-status")).to_have_text("已发货", timeout=TIMEOUT_MS)

    # Stripe (hosted checkout): the same, webhooks signed by the simulator.
    order_no = _order_for_payment(page)
    page.locator("input[name=gateway][value=stripe]").check()
    page.get_by_test_id("pay").click()
    expect(page).to_have_url(re.compile(r"/c/pay/cs_"))
    page.get_by_role("button").click()
    expect(page).to_have_url(re.compile(rf"/orders/{order_no}\?from=cashier"))
    expect(page.get_by_test_id("order-status")).to_have_text("已发货", timeout=TIMEOUT_MS)
    page.get_by_test_id("reveal").click()
    expect(page.get_by_test_id("card-code")).to_have_count(1)
    context.close()
    # The simulators' own pages are not the shop's: only the shop's pages must be free of errors.
    shop_errors = [e for e in errors if peer_shop.url in e or not e.startswith(("4", "5", "failed"))]
    assert not shop_errors, shop_errors
