"""Velocity over the whole shop and over checkouts without a device id (the default "cookieless surge"),
and where the device id comes from: the X-Device-Id header, else the storefront's device cookie."""

from __future__ import annotations

import datetime as dt

import pytest

from risk.support import add_rule, checkout, decisions, reason_codes, refused, set_clock


@pytest.fixture
async def goods(shop):
    sku = await shop.make_sku(code="VEL-GOODS")
    await shop.stock(sku, 20)
    return sku


@pytest.fixture
async def other(shop):
    sku = await shop.make_sku(code="VEL-OTHER")
    await shop.stock(sku, 20)
    return sku


def buyer(i: int) -> dict[str, str]:
    """A different address and contact for every checkout: only the dimension under test repeats."""
    return {"ip": f"203.0.113.{10 + i}", "contact": f"b{i}@example.com"}



async def _refused_by_velocity(shop, response, detail: str) -> None:
    assert refused(response), response.text
    [entry] = await decisions(shop)
    assert entry["decision"] == "deny" and entry["outcome"] == "refused" and entry["stage"] == "order"
    assert reason_codes(entry) == ["test_velocity"] and entry["rules_hit"][0]["detail"] == detail


async def test_velocity_by_shop_counts_every_checkout_of_any_sku_and_device(shop, goods, other):
    await add_rule(shop, "velocity", {"dimension": "shop", "window_seconds": 600, "max_count": 2})
    start = dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.UTC)
    set_clock(shop, start)
    assert (await checkout(shop, goods.id, device="device-0001", **buyer(0))).status_code == 201
    assert (await checkout(shop, other.id, **buyer(1))).status_code == 201
    assert await decisions(shop) == []  # quiet up to max_count
    await _refused_by_velocity(shop, await checkout(shop, goods.id, device="device-0002", **buyer(2)),
                               "3 checkouts by shop in 600s")
    set_clock(shop, start + dt.timedelta(seconds=601))  # every earlier checkout left the window
    assert (await checkout(shop, other.id, **buyer(3))).status_code == 201


async def test_velocity_shop_without_device_counts_only_checkouts_without_a_device_id(shop, goods, other):
    await add_rule(shop, "velocity", {"dimension": "shop_without_device", "window_seconds": 600, "max_count": 2})
    assert (await checkout(shop, goods.id, **buyer(0))).status_code == 201
    assert (await checkout(shop, other.id, **buyer(1))).status_code == 201
    for i in range(2, 5):  # with a device id (header or cookie): neither counted nor judged
        device = {"device": f"device-{i:04d}"} if i % 2 else {"device_cookie": f"dcookie-{i:04d}"}
        assert (await checkout(shop, goods.id, **device, **buyer(i))).status_code == 201
    assert await decisions(shop) == []
    await _refused_by_velocity(shop, await checkout(shop, other.id, **buyer(5)),
                               "3 checkouts by shop_without_device in 600s")
    assert (await checkout(shop, goods.id, device="device-0006", **buyer(6))).status_code == 201


async def test_velocity_sku_without_device_counts_cookieless_checkouts_of_one_sku(shop, goods, other):
    await add_rule(shop, "velocity", {"dimension": "sku_without_device", "window_seconds": 600, "max_count": 2})
    assert (await checkout(shop, goods.id, **buyer(0))).status_code == 201
    assert (await checkout(shop, goods.id, **buyer(1))).status_code == 201
    assert (await checkout(shop, other.id, **buyer(2))).status_code == 201  # another SKU: its own count
    assert (await checkout(shop, goods.id, device_cookie="dcookie-0003", **buyer(3))).status_code == 201
    assert await decisions(shop) == []
    await _refused_by_velocity(shop, await checkout(shop, goods.id, **buyer(4)),
                               "3 checkouts by sku_without_device in 600s")
    assert (await checkout(shop, other.id, **buyer(5))).status_code == 201


async def test_default_cookieless_surge_asks_a_scripted_run_on_one_sku_for_a_code(shop, goods):
    response = await shop.client.post("/api/admin/risk/rules/defaults", headers=shop.admin)
    assert response.status_code in (200, 201), response.text
    for i in range(3):  # > 3 cookieless checkouts of one SKU in 10 minutes
        assert (await checkout(shop, goods.id, **buyer(i))).status_code == 201
    assert await decisions(shop) == []
    response = await checkout(shop, goods.id, **buyer(3))
    assert response.status_code == 403 and response.json()["code"] == "verification_required"
    [entry] = await decisions(shop)
    assert entry["decision"] == "challenge" and entry["outcome"] == "challenged"
    assert "bot_surge" in reason_codes(entry)
    # A browser that kept its device cookie is not part of the surge.
    assert (await checkout(shop, goods.id, device_cookie="dcookie-0004", **buyer(4))).status_code == 201


async def test_device_rules_count_a_buyer_by_the_device_cookie_alone(shop, goods):
    await add_rule(shop, "velocity", {"dimension": "device", "window_seconds": 600, "max_count": 2})
    for i in range(2):
        assert (await checkout(shop, goods.id, device_cookie="web-cookie-01", **buyer(i))).status_code == 201
    assert (await checkout(shop, goods.id, device_cookie="web-cookie-02", **buyer(2))).status_code == 201
    assert await decisions(shop) == []
    await _refused_by_velocity(shop, await checkout(shop, goods.id, device_cookie="web-cookie-01", **buyer(3)),
                               "3 checkouts by device in 600s")
    assert (await decisions(shop))[0]["signals"]["device"] == "web-cookie-01"


async def test_the_device_header_wins_over_the_cookie_and_a_malformed_header_falls_back_to_it(shop, goods):
    await add_rule(shop, "velocity", {"dimension": "device", "window_seconds": 600, "max_count": 1})
    both = await checkout(shop, goods.id, device="app-device-01", device_cookie="web-cookie-01", **buyer(0))
    assert both.status_code == 201  # counted for the header's device only ...
    assert (await checkout(shop, goods.id, device_cookie="web-cookie-01", **buyer(1))).status_code == 201  # ... so
    assert await decisions(shop) == []  # this is the cookie's first checkout
    await _refused_by_velocity(
        shop, await checkout(shop, goods.id, device="app-device-01", device_cookie="web-cookie-02", **buyer(2)),
        "2 checkouts by device in 600s")
    assert (await decisions(shop))[0]["signals"]["device"] == "app-device-01"
    # A header that is no device id (too short) does not hide the cookie.
    response = await checkout(shop, goods.id, device="x", device_cookie="web-cookie-01", **buyer(3))
    assert refused(response)
    assert (await decisions(shop))[0]["signals"]["device"] == "web-cookie-01"
