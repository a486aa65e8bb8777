"""Order lookup without an account, and the rate limits that stop enumeration."""

from __future__ import annotations

import pytest

from helpers import Shop, make_settings


async def _lookup(shop, **body):
    return await shop.client.post("/api/orders/lookup", json=body)


async def test_lookup_by_contact_returns_a_working_token(shop, paid_order):
    response = await _lookup(shop, order_no=paid_order["order_no"], contact="BUYER@example.com ")
    assert response.status_code == 200
    token = response.json()["access_token"]
    status = await shop.client.get(f"/api/orders/{paid_order['order_no']}", headers={"X-Order-Token": token})
    assert status.json()["status"] == "delivered"


async def test_lookup_accepts_a_sloppily_typed_order_number(shop, order):
    no = order["order_no"]
    typed = f" {no[:6]}-{no[6:].lower()} ".replace("1", "l").replace("0", "o")
    response = await _lookup(shop, order_no=typed, contact="buyer@example.com")
    assert response.status_code == 200 and response.json()["order_no"] == no


async def test_lookup_by_phone_in_another_format(shop, stocked_sku):
    order = await shop.create_order(stocked_sku.id, contact="13800138000")
    response = await _lookup(shop, order_no=order["order_no"], contact="+86 138 0013 8000")
    assert response.status_code == 200


async def test_lookup_by_query_password(shop, stocked_sku):
    order = await shop.create_order(stocked_sku.id, query_password="sesame-42")
    assert (await _lookup(shop, order_no=order["order_no"], query_password="sesame-42")).status_code == 200
    assert (await _lookup(shop, order_no=order["order_no"], query_password="sesame-43")).status_code == 404


async def test_order_without_password_cannot_be_found_by_any_password(shop, order):
    response = await _lookup(shop, order_no=order["order_no"], query_password="anything")
    assert response.status_code == 404


async def test_wrong_contact_and_unknown_order_answer_the_same(shop, order):
    wrong = await _lookup(shop, order_no=order["order_no"], contact="someone@else.com")
    unknown = await _lookup(shop, order_no="261125ZZZZZZZZ", contact="buyer@example.com")
    junk = await _lookup(shop, order_no="'; drop table orders_order; --", contact="buyer@example.com")
    assert wrong.status_code == unknown.status_code == junk.status_code == 404
    assert wrong.json()["detail"] == unknown.json()["detail"] == junk.json()["detail"]


async def test_lookup_needs_contact_or_password(shop, order):
    response = await _lookup(shop, order_no=order["order_no"])
    assert response.status_code == 422


@pytest.fixture
def settings(database_url):
    return make_settings(database_url, lookup_max_failures_per_order=3, lookup_max_failures_per_ip=5)


async def test_per_order_limit_blocks_even_the_right_answer(shop: Shop, order):
    for _ in range(3):
        assert (await _lookup(shop, order_no=order["order_no"], contact="guess@example.com")).status_code == 404
    blocked = await _lookup(shop, order_no=order["order_no"], contact="buyer@example.com")
    assert blocked.status_code == 429
    assert blocked.json()["code"] == "too_many_attempts"
    assert int(blocked.headers["Retry-After"]) > 0


async def test_per_ip_limit_stops_guessing_across_orders(shop: Shop, stocked_sku):
    orders = [await shop.create_order(stocked_sku.id) for _ in range(2)]
    for i in range(5):
        guess = f"261125{i:08d}"
        assert (await _lookup(shop, order_no=guess, contact="buyer@example.com")).status_code == 404
    blocked = await _lookup(shop, order_no=orders[0]["order_no"], contact="buyer@example.com")
    assert blocked.status_code == 429


async def test_successful_lookups_do_not_count_against_the_limit(shop: Shop, order):
    for _ in range(8):
        assert (await _lookup(shop, order_no=order["order_no"], contact="buyer@example.com")).status_code == 200
