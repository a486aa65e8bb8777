"""Catalog: admin CRUD behind the token, public reads with live stock, guides rendered safely."""

from __future__ import annotations


async def _setup(shop):
    category = await shop.client.post("/api/admin/categories", headers=shop.admin,
                                      json={"slug": "video", "name": "影视会员"})
    assert category.status_code == 201, category.text
    product = await shop.client.post("/api/admin/products", headers=shop.admin, json={
        "category_id": category.json()["id"], "slug": "star-video", "name": "星影视频 VIP",
        "redemption_guide": "## 兑换\n1. 打开 App\n2. 输入卡密\n\n<script>alert(1)</script>\n[x](javascript:alert(1))",
        "cover_image_url": "https://cdn.example.com/star.png",
        "skus": [{"code": "star-1m", "name": "月卡", "price_cents": 1980, "face_value_cents": 2500},
                 {"code": "STAR-DIRECT", "name": "直充", "price_cents": 1900, "delivery_type": "direct_recharge"}],
    })
    assert product.status_code == 201, product.text
    return category.json(), product.json()


async def test_admin_endpoints_require_the_token(shop):
    for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic abc"}):
        response = await shop.client.post("/api/admin/categories", headers=headers, json={"slug": "x", "name": "X"})
        assert response.status_code == 401, headers
        assert response.json()["code"] == "not_authorized"


async def test_create_product_with_skus_and_read_it_publicly(shop):
    _, product = await _setup(shop)
    assert [s["code"] for s in product["skus"]] == ["STAR-1M", "STAR-DIRECT"]  # codes are normalized
    public = (await shop.client.get("/api/catalog/products/star-video")).json()
    monthly, direct = public["skus"]
    assert monthly["price_display"] == "¥19.80"
    assert monthly["stock"] == {"available": 0, "purchasable": False, "status": "sold_out"}
    assert direct["stock"] == {"available": 0, "purchasable": False, "status": "coming_soon"}

    upload = await shop.client.post(f"/api/admin/skus/{monthly['id']}/card-keys/import", headers=shop.admin,
                                    files={"file": ("k.txt", b"KEY-0001\nKEY-0002\nKEY-0003\n", "text/plain")})
    assert upload.status_code == 201
    public = (await shop.client.get("/api/catalog/products/star-video")).json()
    assert public["skus"][0]["stock"] == {"available": 3, "purchasable": True, "status": "in_stock"}
    listing = (await shop.client.get("/api/catalog/products")).json()
    assert listing[0]["in_stock"] is True and listing[0]["price_display"] == "¥19.00"


async def test_redemption_guide_is_rendered_without_scripts_or_javascript_links(shop):
    _, product = await _setup(shop)
    html = product["redemption_guide_html"]
    assert "<h4>兑换</h4>" in html and "<li>打开 App</li>" in html
    assert "<script" not in html and 'href="javascript' not in html
    assert "&lt;script&gt;" in html  # shown as text, not executed
    assert "[x](javascript:alert(1))" in html  # the unsafe link stays inert text


async def test_duplicate_slugs_and_codes_are_conflicts(shop):
    category, product = await _setup(shop)
    again = await shop.client.post("/api/admin/categories", headers=shop.admin, json={"slug": "video", "name": "x"})
    assert again.status_code == 409 and again.json()["code"] == "slug_taken"
    sku = await shop.client.post(f"/api/admin/products/{product['id']}/skus", headers=shop.admin,
                                 json={"code": "STAR-1M", "name": "again", "price_cents": 1})
    assert sku.status_code == 409 and sku.json()["code"] == "sku_code_taken"
    twin = await shop.client.post("/api/admin/products", headers=shop.admin, json={
        "category_id": category["id"], "slug": "twin", "name": "Twin",
        "skus": [{"code": "T-1", "name": "a", "price_cents": 1}, {"code": "t-1", "name": "b", "price_cents": 1}]})
    assert twin.status_code == 409


async def test_taking_a_product_off_sale_hides_it(shop):
    _, product = await _setup(shop)
    response = await shop.client.patch(f"/api/admin/products/{product['id']}", headers=shop.admin,
                                       json={"is_active": False})
    assert response.status_code == 200
    assert (await shop.client.get("/api/catalog/products/star-video")).status_code == 404
    assert (await shop.client.get("/api/catalog/products")).json() == []
    admin_view = await shop.client.get(f"/api/admin/products/{product['id']}", headers=shop.admin)
    assert admin_view.status_code == 200 and admin_view.json()["is_active"] is False


async def test_sku_updates_are_validated(shop):
    _, product = await _setup(shop)
    sku_id = product["skus"][0]["id"]
    bad = await shop.client.patch(f"/api/admin/skus/{sku_id}", headers=shop.admin,
                                  json={"min_quantity": 5, "max_quantity": 2})
    assert bad.status_code == 422
    null = await shop.client.patch(f"/api/admin/skus/{sku_id}", headers=shop.admin, json={"price_cents": None})
    assert null.status_code == 422
    ok = await shop.client.patch(f"/api/admin/skus/{sku_id}", headers=shop.admin, json={"on_sale": False})
    assert ok.json()["stock"]["status"] == "off_sale"


async def test_bad_catalog_input_is_rejected_with_field_names(shop):
    category, _ = await _setup(shop)
    cases = [
        ({"slug": "Bad Slug!", "name": "x"}, "body.slug"),
        ({"slug": "ok", "name": ""}, "body.name"),
        ({"slug": "ok", "name": "two\nlines"}, "body.name"),
    ]
    for body, field in cases:
        response = await shop.client.post("/api/admin/categories", headers=shop.admin, json=body)
        assert response.status_code == 422 and response.json()["errors"][0]["field"] == field
    for sku in ({"code": "X", "name": "x", "price_cents": -1}, {"code": "X", "name": "x", "price_cents": 1,
                                                                "currency": "XYZ"},
                {"code": "X", "name": "x", "price_cents": 1, "min_quantity": 3, "max_quantity": 1}):
        response = await shop.client.post("/api/admin/products", headers=shop.admin, json={
            "category_id": category["id"], "slug": "p2", "name": "P2", "skus": [sku]})
        assert response.status_code == 422, sku
    image = await shop.client.post("/api/admin/products", headers=shop.admin, json={
        "category_id": category["id"], "slug": "p3", "name": "P3", "cover_image_url": "javascript:alert(1)"})
    assert image.status_code == 422
    missing = await shop.client.post("/api/admin/products", headers=shop.admin, json={
        "category_id": 999, "slug": "p4", "name": "P4"})
    assert missing.status_code == 404 and missing.json()["code"] == "category_not_found"


async def test_delete_only_what_nothing_refers_to(shop):
    category, product = await _setup(shop)
    monthly, direct = product["skus"]
    assert (await shop.client.delete(f"/api/admin/skus/{direct['id']}", headers=shop.admin)).status_code == 204
    upload = await shop.client.post(f"/api/admin/skus/{monthly['id']}/card-keys/import", headers=shop.admin,
                                    files={"file": ("k.txt", b"KEY-0001\n", "text/plain")})
    assert upload.status_code == 201
    in_use = await shop.client.delete(f"/api/admin/skus/{monthly['id']}", headers=shop.admin)
    assert in_use.status_code == 409 and in_use.json()["code"] == "in_use"
    assert (await shop.client.delete(f"/api/admin/products/{product['id']}", headers=shop.admin)).status_code == 409
    assert (await shop.client.delete(f"/api/admin/categories/{category['id']}", headers=shop.admin)).status_code == 409
    assert (await shop.client.get("/api/catalog/products/star-video")).status_code == 200

    empty = await shop.client.post("/api/admin/products", headers=shop.admin, json={
        "category_id": category["id"], "slug": "draft", "name": "Draft", "skus": [{"code": "D-1", "name": "d",
                                                                                   "price_cents": 1}]})
    deleted = await shop.client.delete(f"/api/admin/products/{empty.json()['id']}", headers=shop.admin)
    assert deleted.status_code == 204
    assert (await shop.client.get("/api/catalog/products/draft")).status_code == 404
    assert (await shop.client.delete("/api/admin/skus/9999", headers=shop.admin)).status_code == 404
    assert (await shop.client.delete(f"/api/admin/skus/{monthly['id']}")).status_code == 401
