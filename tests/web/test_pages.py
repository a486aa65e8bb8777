"""Storefront pages, server-side, through the ASGI app: what the buyer sees, what the checkout form refuses,
who may open an order page, English, the CSP, and redemption guides that cannot carry script."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from urllib.parse import urlparse

import pytest

from helpers import page_csrf_token, with_csrf
from quanyi.catalog import service as catalog_service
from quanyi.catalog.schemas import CategoryCreate, ProductCreate, SkuCreate
from quanyi.orders.models import Order

HTML = {"Accept": "text/html,application/xhtml+xml"}
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


class _Page(HTMLParser):
    """Just enough of a DOM for assertions: every element with a data-testid, with its attributes and text."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[dict] = []
        self._open: list[tuple[str, dict | None]] = []
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        node = {"tag": tag, "attrs": attributes, "text": ""} if "data-testid" in attributes else None
        if node is not None:
            self.found.append(node)
        if tag not in VOID:
            self._open.append((tag, node))

    def handle_endtag(self, tag):
        for i in range(len(self._open) - 1, -1, -1):
            if self._open[i][0] == tag:
                del self._open[i:]
                break

    def handle_data(self, data):
        for _, node in self._open:
            if node is not None:
                node["text"] += data

    def all(self, testid: str) -> list[dict]:
        return [n for n in self.found if n["attrs"]["data-testid"] == testid]

    def text(self, testid: str) -> str:
        nodes = self.all(testid)
        assert nodes, f"no element with data-testid={testid!r}"
        return " ".join(nodes[0]["text"].split())


def _sku_options(html: str) -> dict[str, str]:
    """SKU name -> the HTML of its option in the product form."""
    blocks = re.findall(r'<label class="sku[^"]*" data-testid="sku-option">(.*?)</label>', html, re.S)
    return {re.search(r'<span class="sku-name">([^<]+)</span>', b).group(1): b for b in blocks}


async def _star_video(shop, *, guide: str = "1. 打开 App\n2. 粘贴卡密", month_stock: int = 3) -> dict:
    """A product with a monthly card in stock, a yearly card sold out and a direct top-up not yet on offer."""
    async with shop.ctx.db.transaction() as session:
        category = await catalog_service.create_category(session=session, data=CategoryCreate(
            slug="video", name="影视会员", description="视频会员卡"))
        product = await catalog_service.create_product(session=session, data=ProductCreate(
            category_id=category.id, slug="star-video", name="星影视频 VIP 会员", description="免广告、4K 画质",
            redemption_guide=guide, skus=[
                SkuCreate(code="STAR-1M", name="月卡", price_cents=1980, face_value_cents=2500, max_quantity=5),
                SkuCreate(code="STAR-12M", name="年卡", price_cents=19800),
                SkuCreate(code="STAR-DIRECT", name="账号直充", price_cents=1000, delivery_type="direct_recharge"),
            ]))
        skus = {sku.code: sku for sku in product.skus}
    codes = await shop.stock(skus["STAR-1M"], month_stock) if month_stock else []
    return {"skus": skus, "codes": codes}


async def _checkout(client, form: dict, slug: str = "star-video", **headers):
    return await client.post(f"/p/{slug}/checkout", data=await with_csrf(client, form), headers={**HTML, **headers})


def _assert_csp_clean(response) -> None:
    csp = response.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "style-src 'self'" in csp and "unsafe-inline" not in csp
    assert response.headers["content-type"].startswith("text/html")
    # What the policy would block anyway must not be in the page: inline scripts and style attributes.
    assert not re.search(r"<script(?![^>]*\bsrc=)", response.text)
    assert not re.search(r"<[^>]*\sstyle=", response.text)
    assert not re.search(r"<[^>]*\son[a-z]+=", response.text)


# ---------------------------------------------------------------- catalog pages

async def test_home_lists_categories_and_products_with_price_and_stock(shop, client, stocked_sku):
    await shop.make_sku(price_cents=500)
    response = await client.get("/")
    assert response.status_code == 200
    _assert_csp_clean(response)
    page = _Page(response.text)
    cards = {c["attrs"]["href"]: " ".join(c["text"].split()) for c in page.all("product-card")}
    assert set(cards) == {"/p/product-1", "/p/product-2"}
    assert "Video VIP 1" in cards["/p/product-1"] and "¥19.80" in cards["/p/product-1"]
    assert "有货" in cards["/p/product-1"]
    assert "¥5.00" in cards["/p/product-2"] and "已售罄" in cards["/p/product-2"]
    assert 'data-stock="in_stock"' in response.text and 'data-stock="sold_out"' in response.text
    assert 'href="#c-cat-1"' in response.text and ">Category 1<" in response.text


async def test_home_tells_coming_soon_from_sold_out(shop, client):
    async with shop.ctx.db.transaction() as session:
        category = await catalog_service.create_category(session=session, data=CategoryCreate(
            slug="phone", name="话费充值"))
        await catalog_service.create_product(session=session, data=ProductCreate(
            category_id=category.id, slug="phone-topup", name="手机话费直充", skus=[
                SkuCreate(code="PHONE-50", name="50 元", price_cents=4990, delivery_type="direct_recharge")]))
    response = await client.get("/")
    cards = {c["attrs"]["href"]: " ".join(c["text"].split()) for c in _Page(response.text).all("product-card")}
    assert "即将上线" in cards["/p/phone-topup"] and "已售罄" not in cards["/p/phone-topup"]
    api = await client.get("/api/catalog/products")
    assert [p["stock_status"] for p in api.json() if p["slug"] == "phone-topup"] == ["coming_soon"]


async def test_product_page_shows_prices_stock_and_what_cannot_be_bought(shop, client):
    await _star_video(shop)
    response = await client.get("/p/star-video")
    assert response.status_code == 200
    _assert_csp_clean(response)
    options = _sku_options(response.text)
    assert list(options) == ["月卡", "年卡", "账号直充"]

    month, year, direct = options["月卡"], options["年卡"], options["账号直充"]
    assert "¥19.80" in month and "面值 ¥25.00" in month and "库存 3" in month
    assert " checked" in month and " disabled" not in month
    assert "¥198.00" in year and "已售罄" in year and " disabled" in year and " checked" not in year
    assert "即将上线" in direct and "直充到账" in direct and " disabled" in direct

    page = _Page(response.text)
    # Drawn by the server too (app.js only keeps it live): the total and the limits of the chosen option.
    assert page.text("total") == "¥19.80"
    assert "每单 1–5 件" in response.text
    assert page.text("buy") == "立即购买" and "disabled" not in page.all("buy")[0]["attrs"]
    assert "免广告、4K 画质" in response.text


async def test_a_product_with_nothing_to_sell_disables_the_buy_button(shop, client):
    await _star_video(shop, month_stock=0)
    response = await client.get("/p/star-video")
    page = _Page(response.text)
    assert "disabled" in page.all("buy")[0]["attrs"]
    assert page.text("buy") == "当前无法购买"
    assert page.text("total") == "—"
    assert all(" disabled" in option for option in _sku_options(response.text).values())


async def test_unknown_product_gets_the_html_404_page(client):
    response = await client.get("/p/no-such-thing", headers=HTML)
    assert response.status_code == 404
    _assert_csp_clean(response)
    assert "页面不存在" in response.text and "<h1>" in response.text
    # The Chinese page carries no English sentence; support gets the error code.
    assert "does not exist" not in response.text
    assert _Page(response.text).text("error-message") == "product_not_found"
    # The API style answer stays for clients that do not ask for HTML.
    api_style = await client.get("/p/no-such-thing")
    assert api_style.status_code == 404 and api_style.json()["code"] == "product_not_found"


# ---------------------------------------------------------------- checkout form

@pytest.mark.parametrize(("form", "status", "testid", "message"), [
    ({"contact": "not-a-contact", "quantity": "1"}, 422, "contact-error", "请填写有效的邮箱或手机号"),
    ({"contact": "", "quantity": "1"}, 422, "contact-error", "请填写有效的邮箱或手机号"),
    ({"contact": "a@example.com", "quantity": "6"}, 422, "quantity-error", "购买数量需在 1 到 5 之间"),
    ({"contact": "a@example.com", "quantity": "abc"}, 422, "quantity-error", "请填写有效的购买数量"),
    ({"contact": "a@example.com", "quantity": "5000"}, 422, "quantity-error", "请填写有效的购买数量"),
], ids=["bad-contact", "no-contact", "above-max", "not-a-number", "absurd"])
async def test_checkout_form_errors_redraw_the_form_and_create_no_order(shop, client, form, status, testid, message):
    data = await _star_video(shop)
    response = await _checkout(client, {"sku_id": str(data["skus"]["STAR-1M"].id), **form})
    assert response.status_code == status
    page = _Page(response.text)
    assert page.text(testid) == message
    assert "请检查下面标红的内容" in response.text
    # What the buyer typed and chose is kept.
    assert f'value="{form["contact"]}"' in response.text
    assert " checked" in _sku_options(response.text)["月卡"]
    assert await shop.count(Order) == 0
    assert await shop.available(data["skus"]["STAR-1M"].id) == 3


async def test_checkout_without_a_chosen_option_asks_for_one(shop, client):
    await _star_video(shop)
    response = await _checkout(client, {"contact": "a@example.com", "quantity": "1"})
    assert response.status_code == 422
    assert "请选择要购买的规格" in response.text
    assert await shop.count(Order) == 0


async def test_checkout_of_an_option_not_on_offer_is_refused(shop, client):
    data = await _star_video(shop)
    sku_id = data["skus"]["STAR-DIRECT"].id
    response = await _checkout(client, {"sku_id": str(sku_id), "contact": "a@example.com", "quantity": "1"})
    assert response.status_code == 409
    assert "该规格暂不可购买" in response.text
    assert await shop.count(Order) == 0


@pytest.mark.parametrize("which", ["other-product", "unknown"])
async def test_checkout_of_a_sku_that_is_not_this_products_is_refused(shop, client, which):
    data = await _star_video(shop)
    other = await shop.make_sku(price_cents=1)  # in stock, cheap, and on another product's page
    await shop.stock(other, 2)
    sku_id = other.id if which == "other-product" else 999_999
    response = await _checkout(client, {"sku_id": str(sku_id), "contact": "a@example.com", "quantity": "1"})
    assert response.status_code == 409
    assert _Page(response.text).text("sku-error") == "所选规格不属于此商品，请重新选择"
    assert "星影视频 VIP 会员" in response.text  # the page redrawn is still this product's
    assert await shop.count(Order) == 0
    assert await shop.available(other.id) == 2
    assert await shop.available(data["skus"]["STAR-1M"].id) == 3


async def test_checkout_on_an_unknown_product_is_a_404_and_creates_nothing(shop, client, stocked_sku):
    await shop.stock(stocked_sku, 1)
    response = await _checkout(client, {"sku_id": str(stocked_sku.id), "contact": "a@example.com",
                                        "quantity": "1"}, slug="no-such-product")
    assert response.status_code == 404
    assert "页面不存在" in response.text
    assert await shop.count(Order) == 0


@pytest.mark.parametrize(("code", "quantity"), [("STAR-12M", "1"), ("STAR-1M", "4")],
                         ids=["no-stock", "fewer-left-than-asked"])
async def test_sold_out_checkout_shows_the_sold_out_message(shop, client, code, quantity):
    data = await _star_video(shop)
    response = await _checkout(client, {"sku_id": str(data["skus"][code].id), "contact": "a@example.com",
                                        "quantity": quantity})
    assert response.status_code == 409
    assert _Page(response.text).text("form-error") == "库存不足，已售罄或剩余数量不够"
    assert await shop.count(Order) == 0
    assert await shop.available(data["skus"]["STAR-1M"].id) == 3


async def test_form_pages_drawn_for_a_post_switch_language_on_their_get_address(shop, client):
    data = await _star_video(shop)
    response = await _checkout(client, {"sku_id": str(data["skus"]["STAR-1M"].id), "contact": "x"})
    assert 'href="/p/star-video?lang=en"' in response.text


# ---------------------------------------------------------------- order pages

async def test_checkout_pay_reveal_in_pages(shop, client):
    data = await _star_video(shop)
    response = await _checkout(client, {"sku_id": str(data["skus"]["STAR-1M"].id), "contact": "Buyer@Example.com",
                                        "quantity": "1"})
    assert response.status_code == 303
    order_no = response.headers["location"].removeprefix("/orders/")
    cookie = response.headers["set-cookie"]
    assert cookie.startswith("qy_orders=") and "httponly" in cookie.lower() and "samesite=lax" in cookie.lower()

    page = await client.get(f"/orders/{order_no}")
    assert page.status_code == 200
    _assert_csp_clean(page)
    assert _Page(page.text).text("order-status") == "待支付"
    assert _Page(page.text).text("order-no") == order_no

    to_cashier = await client.post(f"/orders/{order_no}/pay", data=await with_csrf(client, {"gateway": "sandbox"}))
    assert to_cashier.status_code == 303
    cashier_url = urlparse(to_cashier.headers["location"])
    cashier = await client.get(f"{cashier_url.path}?{cashier_url.query}")
    assert cashier.status_code == 200 and _Page(cashier.text).text("cashier-amount") == "¥19.80"
    # Switching language on the cashier keeps the payment ticket.
    assert f'href="{cashier_url.path}?{cashier_url.query}&amp;lang=en"' in cashier.text
    token = re.search(r'name="t" value="([^"]+)"', cashier.text).group(1)
    back = await client.post("/sandbox/cashier/pay", data={"t": token, "csrf_token": page_csrf_token(cashier.text)})
    assert back.status_code == 303 and back.headers["location"].endswith(f"/orders/{order_no}?from=cashier")

    delivered = await client.get(f"/orders/{order_no}?from=cashier")
    page = _Page(delivered.text)
    assert page.text("order-status") == "已发货"
    assert page.all("card-code") == [] and page.text("reveal") == "查看卡密"

    revealed = await client.post(f"/orders/{order_no}/reveal", data=await with_csrf(client))
    assert revealed.status_code == 200
    page = _Page(revealed.text)
    (code,) = [" ".join(n["text"].split()) for n in page.all("card-code")]
    assert code in data["codes"]
    assert page.all("copy-code")[0]["attrs"]["data-copy"] == code
    assert "粘贴卡密" in page.text("guide")
    assert f'href="/orders/{order_no}?lang=en"' in revealed.text


async def test_back_from_the_cashier_unpaid_refreshes_a_bounded_number_of_times(shop, client):
    data = await _star_video(shop)
    response = await _checkout(client, {"sku_id": str(data["skus"]["STAR-1M"].id), "contact": "a@example.com",
                                        "quantity": "1"})
    order_no = response.headers["location"].removeprefix("/orders/")

    first = await client.get(f"/orders/{order_no}?from=cashier")
    assert _Page(first.text).text("confirming") == "正在确认支付结果，页面会自动刷新…"
    assert f'content="2;url=/orders/{order_no}?from=cashier&amp;n=1"' in first.text
    middle = await client.get(f"/orders/{order_no}?from=cashier&n=14")
    assert f'content="2;url=/orders/{order_no}?from=cashier&amp;n=15"' in middle.text
    # After about half a minute the page stops refreshing and tells the buyer what to do.
    last = await client.get(f"/orders/{order_no}?from=cashier&n=15")
    assert 'http-equiv="refresh"' not in last.text
    assert "暂未收到支付结果" in _Page(last.text).text("confirm-timeout")
    assert _Page(last.text).all("confirming") == []
    # A tampered counter neither errors nor loops forever.
    for junk in ("abc", "-5", "99999999999999999999"):
        page = await client.get(f"/orders/{order_no}?from=cashier&n={junk}")
        assert page.status_code == 200
    # Without the cashier marker nothing refreshes.
    plain = await client.get(f"/orders/{order_no}")
    assert 'http-equiv="refresh"' not in plain.text and _Page(plain.text).all("confirm-timeout") == []


async def test_order_page_without_the_access_cookie_redirects_to_lookup(shop, client, order):
    for method, path in (("GET", ""), ("POST", "/pay"), ("POST", "/reveal"), ("POST", "/cancel")):
        data = await with_csrf(client) if method == "POST" else None
        response = await client.request(method, f"/orders/{order['order_no']}{path}", data=data)
        assert response.status_code == 303, path
        assert response.headers["location"] == f"/lookup?order_no={order['order_no']}"
    assert (await shop.get_order(order))["status"] == "pending_payment"
    junk = await client.get("/orders/not-an-order-number")
    assert junk.status_code == 303 and junk.headers["location"] == "/lookup?order_no="


async def test_lookup_page_finds_the_order_by_number_and_contact(shop, client, paid_order):
    wrong = await client.post("/lookup", data=await with_csrf(client, {"order_no": paid_order["order_no"],
                                                                     "contact": "other@example.com"}))
    assert wrong.status_code == 404
    assert _Page(wrong.text).text("lookup-error").startswith("没有找到匹配的订单")
    found = await client.post("/lookup", data=await with_csrf(client, {"order_no": paid_order["order_no"].lower(),
                                                                     "contact": "BUYER@example.com"}))
    assert found.status_code == 303 and found.headers["location"] == f"/orders/{paid_order['order_no']}"
    page = await client.get(found.headers["location"])
    assert _Page(page.text).text("order-status") == "已发货"


# ---------------------------------------------------------------- language and safety

async def test_english_is_one_query_parameter_away_and_remembered(shop, client, stocked_sku):
    response = await client.get("/?lang=en")
    assert '<html lang="en">' in response.text
    assert "Digital goods, delivered instantly" in response.text and "In stock" in response.text
    assert "qy_lang=en" in response.headers["set-cookie"]
    product = await client.get("/p/product-1")  # the cookie now carries the choice
    assert _Page(product.text).text("buy") == "Buy now"
    assert "1–10 per order" in product.text
    assert 'href="/p/product-1?lang=zh-CN"' in product.text
    back = await client.get("/lookup?lang=zh-CN")
    assert '<html lang="zh-CN">' in back.text and "订单查询" in back.text


async def test_every_page_carries_the_content_security_policy(shop, client, stocked_sku):
    for path in ("/", "/p/product-1", "/lookup", "/p/missing"):
        response = await client.get(path, headers=HTML)
        assert response.status_code in (200, 404), path
        _assert_csp_clean(response)
        assert response.headers["cache-control"] == "no-store"


async def test_redemption_guide_cannot_run_script_or_link_to_javascript(shop, client):
    guide = ("### 步骤\n1. <script>alert(1)</script>\n2. [x](javascript:alert(1)) and "
             '<a href="javascript:alert(2)">y</a>\n\n<img src=x onerror=alert(3)>')
    data = await _star_video(shop, guide=guide)
    product = await client.get("/p/star-video")
    response = await _checkout(client, {"sku_id": str(data["skus"]["STAR-1M"].id), "contact": "a@example.com"})
    order_no = response.headers["location"].removeprefix("/orders/")
    order = {"order_no": order_no, "access_token": _token(shop, order_no)}
    await shop.pay(order)
    revealed = await client.post(f"/orders/{order_no}/reveal", data=await with_csrf(client))
    assert _Page(revealed.text).all("guide")

    for page in (product, revealed):
        html = page.text
        assert "<h3>步骤</h3>" in html or "<h4>步骤</h4>" in html  # markdown still renders
        assert "<script>alert" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
        assert not re.search(r"<[^>]*href=[\"']?\s*javascript:", html, re.I)
        assert "[x](javascript:alert(1))" in html  # shown as text, not made a link
        assert "&lt;img src=x onerror=alert(3)&gt;" in html
        _assert_csp_clean(page)


def _token(shop, order_no: str) -> str:
    from quanyi.orders.access import order_access_token

    return order_access_token(shop.ctx.settings.app_secret.get_secret_value(), order_no)
