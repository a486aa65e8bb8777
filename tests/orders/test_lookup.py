"""Order lookup without an account, and the rate limits that stop enumeration."""

from __future__ import annotations

import contextlib

import httpx
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
    return make_settings(database_url, lookup_max_failures_per_guesser_per_order=3, lookup_max_failures_per_ip=5,
                         lookup_max_failures_per_device=5, lookup_max_failures_per_order=7)


@contextlib.asynccontextmanager
async def _client_at(app, address: str, **headers: str):
    """Another client: its own address (and cookie jar), as a buyer elsewhere would be."""
    transport = httpx.ASGITransport(app=app, client=(address, 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://test", headers=headers) as client:
        yield client


async def _lookup_from(client, **body) -> int:
    return (await client.post("/api/orders/lookup", json=body)).status_code


async def test_the_guesser_is_blocked_on_the_order_even_with_the_right_answer(shop: Shop, order):
    for _ in range(3):
        assert (await _lookup(shop, order_no=order["order_no"], contact="guess@example.com")).status_code == 404
    blocked = await _lookup(shop, order_no=order["order_no"], contact="buyer@example.com")
    assert blocked.status_code == 429
    assert blocked.json()["code"] == "too_many_attempts"
    assert int(blocked.headers["Retry-After"]) > 0


async def test_a_strangers_failures_do_not_lock_the_buyer_out(shop: Shop, app, order):
    """Anyone who knows the order number used to lock its buyer out of lookup for the window."""
    async with _client_at(app, "203.0.113.7") as stranger:
        statuses = [await _lookup_from(stranger, order_no=order["order_no"], contact=f"g{i}@example.com")
                    for i in range(6)]
        assert statuses == [404] * 3 + [429] * 3  # the stranger is stopped on this order
    async with _client_at(app, "198.51.100.20") as buyer:
        assert await _lookup_from(buyer, order_no=order["order_no"], contact="buyer@example.com") == 200
        # The buyer's own typo does not use up the order's budget for the next try either.
        assert await _lookup_from(buyer, order_no=order["order_no"], contact="buyr@example.com") == 404
        assert await _lookup_from(buyer, order_no=order["order_no"], contact="buyer@example.com") == 200


async def test_new_device_ids_do_not_buy_a_guesser_more_tries(shop: Shop, app, stocked_sku):
    orders = [await shop.create_order(stocked_sku.id) for _ in range(3)]
    async with _client_at(app, "203.0.113.8") as stranger:
        statuses = []
        for i in range(7):
            response = await stranger.post("/api/orders/lookup", headers={"X-Device-Id": f"fresh-device-{i:04d}"},
                                           json={"order_no": orders[i % 3]["order_no"], "contact": "x@example.com"})
            statuses.append(response.status_code)
    assert statuses == [404] * 5 + [429] * 2  # the address's budget (5) holds whatever device it claims


async def test_one_device_is_limited_across_addresses(shop: Shop, app, stocked_sku):
    orders = [await shop.create_order(stocked_sku.id) for _ in range(2)]
    statuses = []
    for i in range(7):
        async with _client_at(app, f"203.0.113.{20 + i}", **{"X-Device-Id": "one-phone-0001"}) as roaming:
            statuses.append(await _lookup_from(roaming, order_no=orders[i % 2]["order_no"], contact="x@example.com"))
    assert statuses == [404] * 5 + [429] * 2  # the device's budget holds whatever address it comes from


async def test_guessing_from_many_addresses_meets_the_per_order_backstop(shop: Shop, app, order):
    statuses = []
    for i in range(4):
        async with _client_at(app, f"192.0.2.{i + 1}") as bot:
            statuses += [await _lookup_from(bot, order_no=order["order_no"], contact=f"b{i}{j}@example.com")
                         for j in range(2)]
    assert statuses == [404] * 7 + [429]  # 7 failures per order from everyone together
    async with _client_at(app, "198.51.100.30") as buyer:
        assert await _lookup_from(buyer, order_no=order["order_no"], contact="buyer@example.com") == 429


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


async def test_with_the_default_limits_a_stranger_cannot_lock_a_buyer_out(app, database_url, stocked_sku):
    """The probe of issue 11: five wrong contacts from anyone used to refuse the right contact for 15 minutes."""
    defaults = make_settings(database_url)
    for name in type(defaults).model_fields:
        if name.startswith("lookup_max_failures"):
            setattr(app.state.ctx.settings, name, getattr(defaults, name))
    async with _client_at(app, "203.0.113.99") as stranger:
        order = (await stranger.post("/api/orders", json={"sku_id": stocked_sku.id, "quantity": 1,
                                                          "contact": "buyer@example.com"})).json()
        stranger.cookies.clear()
        statuses = [await _lookup_from(stranger, order_no=order["order_no"], contact=f"s{i}@example.com")
                    for i in range(8)]
    assert statuses[:5] == [404] * 5 and set(statuses[5:]) == {429}
    async with _client_at(app, "198.51.100.99") as buyer:
        assert await _lookup_from(buyer, order_no=order["order_no"], contact="buyer@example.com") == 200
