"""Every limit on the public surface answers 429 with Retry-After (seconds) and a problem body."""

from __future__ import annotations

import pytest

from helpers import with_csrf
from risk.support import checkout


@pytest.fixture
async def goods(shop):
    sku = await shop.make_sku(code="FLOOD-GOODS")
    await shop.stock(sku, 20)
    shop.ctx.risk.checkout_limit_per_ip = 3
    shop.ctx.risk.checkout_limit_per_device = 2
    shop.ctx.risk.checkout_window_seconds = 60
    return sku


def _is_limit(response, code: str) -> None:
    assert response.status_code == 429, response.text
    assert response.headers["Retry-After"] == "60"
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["code"] == code


async def test_checkout_flooding_from_one_ip_gets_429_with_retry_after(shop, goods):
    for i in range(3):
        assert (await checkout(shop, goods.id, ip="203.0.113.9", contact=f"f{i}@example.com")).status_code == 201
    _is_limit(await checkout(shop, goods.id, ip="203.0.113.9", contact="f9@example.com"), "too_many_checkouts")
    assert (await checkout(shop, goods.id, ip="203.0.113.10")).status_code == 201  # other addresses unaffected


async def test_checkout_flooding_from_one_device_gets_429(shop, goods):
    for i in range(2):
        assert (await checkout(shop, goods.id, ip=f"203.0.113.{20 + i}", device="flood-device-1")).status_code == 201
    _is_limit(await checkout(shop, goods.id, ip="203.0.113.30", device="flood-device-1"), "too_many_checkouts")


async def test_storefront_checkout_flooding_gets_a_429_page_with_retry_after(shop, goods):
    async with shop.ctx.db.read_session() as session:
        from quanyi.catalog import service as catalog_service

        slug = (await catalog_service.get_product(session=session, product_id=goods.product_id,
                                                  active_only=False)).slug
    form = await with_csrf(shop.client, {"sku_id": str(goods.id), "quantity": "1", "contact": "web@example.com"})
    statuses = [(await shop.client.post(f"/p/{slug}/checkout", data=form)).status_code for _ in range(3)]
    assert statuses == [303, 303, 303]
    page = await shop.client.post(f"/p/{slug}/checkout", data=form)
    assert page.status_code == 429 and page.headers["Retry-After"] == "60"


async def test_lookup_brute_force_gets_429_with_retry_after(shop, settings):
    for _ in range(settings.lookup_max_failures_per_guesser_per_order):
        response = await shop.client.post("/api/orders/lookup", json={"order_no": "2612010000AAAA",
                                                                      "contact": "guess@example.com"})
        assert response.status_code == 404
    response = await shop.client.post("/api/orders/lookup", json={"order_no": "2612010000AAAA",
                                                                  "contact": "guess@example.com"})
    assert response.status_code == 429
    assert response.headers["Retry-After"] == str(settings.lookup_window_seconds)
    assert response.json()["code"] == "too_many_attempts"
    page = await shop.client.post("/lookup", data=await with_csrf(shop.client, {"order_no": "2612010000AAAA",
                                                                            "contact": "guess@example.com"}))
    assert page.status_code == 429 and page.headers["Retry-After"] == str(settings.lookup_window_seconds)
