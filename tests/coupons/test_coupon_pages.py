"""Storefront: the claim centre (zh-CN / en), claiming by form, the account card, and the checkout form's coupon
(apply = the server's price preview; buy = an order at that price; a coupon that does not apply is named)."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from coupons.support import make_coupon
from helpers import make_settings, page_csrf_token, with_csrf
from members.support import sign_in
from quanyi.catalog.models import Product
from quanyi.orders.models import Order

HTML = {"Accept": "text/html"}


@pytest.fixture
def settings(database_url: str):
    return make_settings(database_url, smtp_host="127.0.0.1", smtp_from="shop@example.com")


async def _slug(shop, sku) -> str:
    return str(await shop.scalar(select(Product.slug).where(Product.id == sku.product_id)))


async def test_claim_centre_claim_by_form_and_the_account_card(shop, stocked_sku):
    made = await make_coupon(shop, name="满10减3", distribution="claim", code=None, threshold_cents=1000,
                             total_quantity=5, per_member_limit=1)
    guest = await shop.client.get("/coupons", headers=HTML)
    assert guest.status_code == 200 and "领券中心" in guest.text and "满¥10.00减¥3.00" in guest.text
    assert 'data-testid="login-to-claim"' in guest.text
    english = await shop.client.get("/coupons?lang=en", headers=HTML, follow_redirects=True)
    assert "Coupon centre" in english.text and "¥3.00 off orders of ¥10.00 or more" in english.text
    await shop.client.get("/coupons?lang=zh-CN", headers=HTML, follow_redirects=True)
    await sign_in(shop, "page@example.com")  # the client keeps the qy_member cookie
    page = await shop.client.get("/coupons", headers=HTML)
    claimed = await shop.client.post(f"/coupons/{made['id']}/claim", headers=HTML,
                                     data={"csrf_token": page_csrf_token(page.text)})
    assert claimed.status_code == 303 and claimed.headers["location"] == "/coupons?claimed=1"
    after = await shop.client.get("/coupons?claimed=1", headers=HTML)
    assert 'data-testid="coupons-notice"' in after.text and 'data-testid="my-coupon"' in after.text
    assert 'data-testid="claimed"' in after.text
    again = await shop.client.post(f"/coupons/{made['id']}/claim", headers=HTML,
                                   data={"csrf_token": page_csrf_token(page.text)})
    assert again.status_code == 409 and 'data-testid="coupons-error"' in again.text
    forged = await shop.client.post(f"/coupons/{made['id']}/claim", headers=HTML, data={})
    assert forged.status_code == 403
    account = await shop.client.get("/account", headers=HTML)
    assert 'data-testid="account-section-coupons"' in account.text and "满10减3" in account.text


async def test_checkout_form_applies_a_code_and_buys_at_the_previewed_price(shop, stocked_sku):
    await make_coupon(shop, name="立减3元", code="SAVE3")
    slug = await _slug(shop, stocked_sku)
    form = {"sku_id": str(stocked_sku.id), "quantity": "2", "contact": "buyer@example.com", "coupon_code": "save3"}
    preview = await shop.client.post(f"/p/{slug}/quote", headers=HTML, data=await with_csrf(shop.client, form,
                                                                                            page=f"/p/{slug}"))
    assert preview.status_code == 200 and 'data-testid="price-breakdown"' in preview.text
    assert "−¥3.00" in preview.text and "¥36.60" in preview.text
    assert await shop.count(Order) == 0  # a preview places nothing
    bought = await shop.client.post(f"/p/{slug}/checkout", headers=HTML,
                                    data={**form, "csrf_token": page_csrf_token(preview.text)})
    assert bought.status_code == 303, bought.text
    order = await shop.scalar(select(Order).order_by(Order.id.desc()).limit(1))
    assert (order.total_cents, order.coupon_discount_cents) == (3660, 300)
    wrong = await shop.client.post(f"/p/{slug}/checkout", headers=HTML, data=await with_csrf(
        shop.client, {**form, "coupon_code": "NOSUCH"}, page=f"/p/{slug}"))
    assert wrong.status_code == 404 and 'data-testid="coupon-error"' in wrong.text and "优惠码无效" in wrong.text
    bad = await shop.client.post(f"/p/{slug}/quote", headers=HTML, data=await with_csrf(
        shop.client, {**form, "coupon_code": "<b>"}, page=f"/p/{slug}"))
    assert bad.status_code == 422 and 'data-testid="coupon-error"' in bad.text
    assert await shop.count(Order) == 1
