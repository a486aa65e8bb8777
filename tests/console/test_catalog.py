"""Catalog pages: categories, products, SKUs and prices, the redemption guide's preview; every change through the
catalog service (its rules answer bad input with the form shown again and nothing changed) and in the audit log."""

from __future__ import annotations

import re

from sqlalchemy import select

from console.support import logged_in, post_form
from quanyi.catalog.models import Category, Product, Sku
from quanyi.staff.models import StaffAuditEntry


async def _product(shop, slug):  # type: ignore[no-untyped-def]
    return await shop.scalar(select(Product).where(Product.slug == slug))


async def test_an_operator_builds_a_product_with_a_sku_and_changes_its_price(shop, app):
    client = await logged_in(shop, "cat", roles=("operator",))
    cats = "/console/catalog/categories"
    created = await post_form(client, cats, {"name": "视频会员", "slug": "video", "is_active": "on"}, page_url=cats)
    assert created.status_code == 303
    category_id = await shop.scalar(select(Category.id).where(Category.slug == "video"))
    taken = await post_form(client, cats, {"name": "again", "slug": "video"}, page_url=cats)
    assert taken.status_code == 409 and "标识 video 已被其他分类使用" in taken.text

    new = "/console/catalog/products/new"
    bad = await post_form(client, "/console/catalog/products", {
        "name": "Star VIP", "slug": "Not A Slug!", "category_id": str(category_id)}, page_url=new)
    assert bad.status_code == 422 and 'data-testid="slug-error"' in bad.text
    assert await _product(shop, "not-a-slug") is None
    guide = "## 兑换步骤\n1. 打开 App\n2. 粘贴卡密 <script>alert(1)</script>"
    made = await post_form(client, "/console/catalog/products", {
        "name": "Star VIP", "slug": "star-vip", "category_id": str(category_id), "redemption_guide": guide,
        "is_active": "on"}, page_url=new)
    assert made.status_code == 303
    product = await _product(shop, "star-vip")
    page_url = f"/console/catalog/products/{product.id}"
    assert made.headers["location"].startswith(page_url)
    page = await client.get(page_url)
    # The saved guide is drawn by the buyers' renderer: a heading, no live script.
    assert "<h4>兑换步骤</h4>" in page.text and "<script>alert" not in page.text

    sku_url = f"{page_url}/skus"
    no_price = await post_form(client, sku_url, {"code": "STAR-1M", "name": "月卡", "price": "9.999",
                                                 "delivery_type": "card_key", "on_sale": "on"}, page_url=page_url)
    assert no_price.status_code == 422 and 'data-testid="price-error"' in no_price.text
    assert await shop.count(Sku, Sku.code == "STAR-1M") == 0
    added = await post_form(client, sku_url, {"code": "star-1m", "name": "月卡", "price": "19.90",
                                              "face_value": "30", "currency": "CNY", "delivery_type": "card_key",
                                              "min_quantity": "1", "max_quantity": "5", "on_sale": "on"},
                            page_url=page_url)
    assert added.status_code == 303, added.text[:500]
    sku = await shop.scalar(select(Sku).where(Sku.code == "STAR-1M"))
    assert (sku.price_cents, sku.face_value_cents, sku.max_quantity, sku.merchant_id) == (1990, 3000, 5, 1)
    twice = await post_form(client, sku_url, {"code": "STAR-1M", "name": "x", "price": "1", "on_sale": "on"},
                            page_url=page_url)
    assert twice.status_code == 409

    repriced = await post_form(client, f"/console/catalog/skus/{sku.id}", {
        "name": "月卡", "price": "18.80", "min_quantity": "2", "max_quantity": "1", "on_sale": "on"},
        page_url=page_url)
    assert repriced.status_code == 422  # min above max: the service's rule, nothing saved
    assert (await shop.scalar(select(Sku.price_cents).where(Sku.id == sku.id))) == 1990
    repriced = await post_form(client, f"/console/catalog/skus/{sku.id}", {
        "name": "月卡（新）", "price": "18.80", "min_quantity": "1", "max_quantity": "5"}, page_url=page_url)
    assert repriced.status_code == 303
    sku = await shop.scalar(select(Sku).where(Sku.id == sku.id).execution_options(populate_existing=True))
    assert (sku.name, sku.price_cents, sku.on_sale) == ("月卡（新）", 1880, False)

    edited = await post_form(client, page_url, {"name": "Star VIP 会员", "slug": "star-vip",
                                                "category_id": str(category_id), "redemption_guide": "# new",
                                                "is_active": "on"}, page_url=page_url)
    assert edited.status_code == 303
    product = await shop.scalar(select(Product).where(Product.id == product.id)
                                .execution_options(populate_existing=True))
    assert (product.name, product.redemption_guide) == ("Star VIP 会员", "# new")
    listing = await client.get("/console/catalog")
    assert 'data-slug="star-vip"' in listing.text and "Star VIP 会员" in listing.text

    # In use: a SKU with stock is taken off sale, never deleted; an empty category cannot go while it has products.
    await shop.stock(sku, 2)
    kept = await post_form(client, f"/console/catalog/skus/{sku.id}/delete", page_url=page_url)
    assert kept.status_code == 409 and await shop.count(Sku, Sku.id == sku.id) == 1
    assert (await post_form(client, f"/console/catalog/categories/{category_id}/delete", page_url=cats)
            ).status_code == 409

    async with shop.ctx.db.read_session() as session:
        actions = (await session.scalars(select(StaffAuditEntry.action).where(StaffAuditEntry.actor == "cat")
                                         .order_by(StaffAuditEntry.id))).all()
    assert actions == ["login", "category_created", "product_created", "sku_created", "sku_updated",
                       "product_updated"]


async def test_the_guide_preview_renders_like_the_shop_and_needs_the_form_token(shop, app):
    client = await logged_in(shop, "prev", roles=("operator",))
    shown = await post_form(client, "/console/catalog/guide-preview",
                            {"redemption_guide": "**bold** <img src=x onerror=alert(1)> [x](javascript:alert(1))"},
                            page_url="/console/catalog/products/new")
    assert shown.status_code == 200 and "<strong>bold</strong>" in shown.text
    assert "<img" not in shown.text and "&lt;img" in shown.text and 'href="javascript' not in shown.text
    forged = await client.post("/console/catalog/guide-preview", data={"redemption_guide": "x"},
                               headers={"Origin": "http://evil.example"})
    assert forged.status_code == 403


async def test_a_merchants_staff_edit_only_their_goods_and_never_the_platforms_categories(shop, app):
    from merchants.support import admit

    sku = await shop.make_sku(code="PLATFORM-1")
    category_id = await shop.scalar(select(Product.category_id).where(Product.id == sku.product_id))
    tenant = await admit(shop, "acme")
    async with shop.ctx.db.transaction() as session:
        from quanyi.staff import service as staff_service
        await staff_service.create_staff(session=session, username="acme-op", password="correct horse battery",
                                         roles=("merchant_operator",), merchant_id=tenant.merchant_id)
    from console.support import console_login
    assert (await console_login(shop.client, "acme-op")).status_code == 303
    client = shop.client
    assert (await client.get("/console/catalog/categories")).status_code == 403
    assert (await client.get(f"/console/catalog/products/{sku.product_id}")).status_code == 404
    listing = await client.get("/console/catalog")
    assert listing.status_code == 200 and "PLATFORM-1" not in listing.text
    made = await post_form(client, "/console/catalog/products", {
        "name": "Acme card", "slug": "acme-card", "category_id": str(category_id),
        "merchant_code": "platform", "is_active": "on"}, page_url="/console/catalog/products/new")
    assert made.status_code == 303
    assert (await _product(shop, "acme-card")).merchant_id == tenant.merchant_id  # never another merchant's
    refused = await post_form(client, f"/console/catalog/skus/{sku.id}", {"name": "x", "price": "0.01"},
                              page_url="/console/catalog")
    assert refused.status_code == 404
    assert (await shop.scalar(select(Sku.price_cents).where(Sku.id == sku.id))) == 1980
    assert re.search(r'data-menu="catalog"', listing.text) and 'data-menu="categories"' not in listing.text


async def test_an_operator_turns_on_picking_and_labels_keys_without_seeing_their_codes(shop, app, stocked_sku):
    from quanyi.inventory.models import CardKey

    client = await logged_in(shop, "picker", roles=("operator",))
    page_url = f"/console/catalog/products/{stocked_sku.product_id}"
    on = await post_form(client, f"/console/catalog/skus/{stocked_sku.id}", {
        "name": "Monthly", "price": "19.80", "pick_surcharge": "2.50", "min_quantity": "1", "max_quantity": "10",
        "on_sale": "on"}, page_url=page_url)
    assert on.status_code == 303
    assert await shop.scalar(select(Sku.pick_surcharge_cents).where(Sku.id == stocked_sku.id)) == 250
    assert 'data-testid="pick-labels-link"' in (await client.get(page_url)).text
    labels_url = f"/console/catalog/picks/{stocked_sku.id}"
    labels_page = await client.get(labels_url)
    assert labels_page.text.count('data-testid="label-row"') == 10
    key_ids = (await shop.scalar(select(CardKey.id).where(CardKey.sku_id == stocked_sku.id)
                                 .order_by(CardKey.id).limit(1)),)
    saved = await post_form(client, labels_url, {f"label-{key_ids[0]}": " 账号 #1\u200b 满级 "}, page_url=labels_url)
    assert saved.status_code == 303 and "count=1" in saved.headers["location"]
    assert await shop.scalar(select(CardKey.public_label).where(CardKey.id == key_ids[0])) == "账号 #1 满级"
    foreign = await post_form(client, labels_url, {"label-999999": "x"}, page_url=labels_url)
    assert foreign.status_code == 404
    off = await post_form(client, f"/console/catalog/skus/{stocked_sku.id}", {
        "name": "Monthly", "price": "19.80", "pick_surcharge": "", "min_quantity": "1", "max_quantity": "10",
        "on_sale": "on"}, page_url=page_url)
    assert off.status_code == 303
    assert await shop.scalar(select(Sku.pick_surcharge_cents).where(Sku.id == stocked_sku.id)) is None
