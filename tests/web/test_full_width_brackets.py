"""An aside after Chinese text on the buyer's pages is in full-width brackets, as everywhere else in Chinese (the
member price's level on the product page's price preview, the shop code on a merchant application's page);
English pages keep ASCII brackets."""

from __future__ import annotations

import pytest

from helpers import make_settings, with_csrf
from members.support import sign_in
from refund_helpers import cashier_pay

HTML = {"Accept": "text/html"}


@pytest.fixture
def settings(database_url: str):  # type: ignore[no-untyped-def]
    return make_settings(database_url, smtp_host="127.0.0.1", smtp_from="shop@example.com")


async def test_the_member_price_names_its_level_in_full_width_brackets(shop, stocked_sku):
    member = await sign_in(shop)  # the client keeps the member's cookie: the storefront's pages know them
    level = await shop.client.put("/api/admin/loyalty/levels/VIP", headers=shop.admin,
                                  json={"name": "金卡会员", "min_paid_cents": 0, "discount_bps": 1000})
    assert level.status_code == 200, level.text
    first = await shop.client.post("/api/orders", headers={"X-Member-Token": member["token"]},
                                   json={"sku_id": stocked_sku.id, "contact": "member@example.com"})
    await cashier_pay(shop, first.json())  # delivered: the member reaches the level (threshold 0)
    slug = f"product-{stocked_sku.product_id}"
    form = {"sku_id": str(stocked_sku.id), "quantity": "2", "contact": "member@example.com"}
    for lang, said in (("zh-CN", "会员价优惠（金卡会员）"), ("en", "Member price (金卡会员)")):
        preview = await shop.client.post(f"/p/{slug}/quote?lang={lang}", headers=HTML,
                                         data=await with_csrf(shop.client, form, page=f"/p/{slug}?lang={lang}"))
        assert preview.status_code == 200 and 'data-testid="price-breakdown"' in preview.text
        assert f"<span>{said}</span>" in preview.text  # old code: 会员价优惠 (金卡会员)


async def test_a_merchant_application_names_its_shop_code_in_full_width_brackets(shop):
    form = {"code": "moon-shop", "name": "月光小铺", "description": "Game cards", "contact_name": "Li",
            "contact_email": "li@example.com", "contact_phone": "13800138000", "owner_username": "moon.owner",
            "owner_password": "correct horse battery"}
    sent = await shop.client.post("/merchants/apply", headers=HTML,
                                  data=await with_csrf(shop.client, form, page="/merchants/apply"))
    assert sent.status_code == 303, sent.text
    page = await shop.client.get(sent.headers["location"] + "&lang=zh-CN", headers=HTML)
    assert page.status_code == 200 and "<strong>月光小铺</strong>（moon-shop）" in page.text  # old code: " (<code>"
    english = await shop.client.get(sent.headers["location"] + "&lang=en", headers=HTML)
    assert "<strong>月光小铺</strong> (moon-shop)" in english.text
