"""Velocity over the whole shop and over checkouts without a shop-issued device cookie (the default
"cookieless surge"), and what the device of a checkout is: the signed device cookie the shop issued, else the
X-Device-Id header (counted per device, but never making a checkout one "with a device")."""

from __future__ import annotations

import datetime as dt
import secrets

import pytest

from risk.support import add_rule, checkout, decisions, issued_cookie, reason_codes, refused, set_clock


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


def browser(shop, i: int) -> dict[str, str]:
    """The device cookie the shop issued to browser i."""
    return {"device_cookie": issued_cookie(shop, f"dbrowser-{i:012d}")}


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


async def test_velocity_shop_without_device_counts_checkouts_without_a_shop_issued_cookie(shop, goods, other):
    await add_rule(shop, "velocity", {"dimension": "shop_without_device", "window_seconds": 600, "max_count": 2})
    assert (await checkout(shop, goods.id, **buyer(0))).status_code == 201
    assert (await checkout(shop, other.id, device="app-device-0001", **buyer(1))).status_code == 201  # a header
    for i in range(2, 5):  # with the shop's device cookie (and maybe a header): neither counted nor judged
        header = {"device": f"device-{i:04d}"} if i % 2 else {}
        assert (await checkout(shop, goods.id, **header, **browser(shop, i), **buyer(i))).status_code == 201
    assert await decisions(shop) == []
    await _refused_by_velocity(shop, await checkout(shop, other.id, **buyer(5)),
                               "3 addresses by shop_without_device in 600s")
    assert (await checkout(shop, goods.id, **browser(shop, 6), **buyer(6))).status_code == 201


async def test_velocity_sku_without_device_counts_cookieless_checkouts_of_one_sku(shop, goods, other):
    await add_rule(shop, "velocity", {"dimension": "sku_without_device", "window_seconds": 600, "max_count": 2})
    assert (await checkout(shop, goods.id, **buyer(0))).status_code == 201
    assert (await checkout(shop, goods.id, **buyer(1))).status_code == 201
    assert (await checkout(shop, other.id, **buyer(2))).status_code == 201  # another SKU: its own count
    assert (await checkout(shop, goods.id, **browser(shop, 3), **buyer(3))).status_code == 201
    assert await decisions(shop) == []
    await _refused_by_velocity(shop, await checkout(shop, goods.id, **buyer(4)),
                               "3 addresses by sku_without_device in 600s")
    assert (await checkout(shop, other.id, **buyer(5))).status_code == 201


async def test_one_address_burst_without_a_device_counts_once_toward_the_sku_surge(shop, goods):
    await add_rule(shop, "velocity", {"dimension": "sku_without_device", "window_seconds": 600, "max_count": 2})
    for i in range(5):  # one address, a new device header every time (the ip rules' business)
        response = await checkout(shop, goods.id, ip="198.51.100.50", contact=f"s{i}@example.com",
                                  device=secrets.token_hex(12))
        assert response.status_code == 201, response.text
    assert (await checkout(shop, goods.id, **buyer(1))).status_code == 201  # a cookieless buyer elsewhere
    assert await decisions(shop) == []
    await _refused_by_velocity(shop, await checkout(shop, goods.id, device=secrets.token_hex(12), **buyer(2)),
                               "3 addresses by sku_without_device in 600s")


async def test_a_forged_or_unsigned_device_cookie_is_no_device(shop, goods):
    await add_rule(shop, "velocity", {"dimension": "sku_without_device", "window_seconds": 600, "max_count": 2})
    genuine = issued_cookie(shop, "dbrowser-000000000001")
    unsigned = "dQm3Xr8mYp2Lk9sT4vW6zA"  # what the storefront issued before cookies were signed
    tampered = "dbrowser-000000000002" + genuine[genuine.index("."):]  # another id under a real mac
    assert (await checkout(shop, goods.id, device_cookie=unsigned, **buyer(0))).status_code == 201
    assert (await checkout(shop, goods.id, device_cookie=tampered, **buyer(1))).status_code == 201
    assert await decisions(shop) == []
    await _refused_by_velocity(shop, await checkout(shop, goods.id, device_cookie=unsigned + ".bogus", **buyer(2)),
                               "3 addresses by sku_without_device in 600s")
    assert (await decisions(shop))[0]["signals"]["device"] == ""  # no device at all, not even an unverified one
    assert (await checkout(shop, goods.id, device_cookie=genuine, **buyer(3))).status_code == 201


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
    # A browser that kept the device cookie the shop gave it is not part of the surge.
    assert (await checkout(shop, goods.id, **browser(shop, 4), **buyer(4))).status_code == 201


async def test_default_cookieless_surge_catches_a_script_sending_a_new_device_header_every_time(shop, goods):
    response = await shop.client.post("/api/admin/risk/rules/defaults", headers=shop.admin)
    assert response.status_code in (200, 201), response.text
    for i in range(3):
        assert (await checkout(shop, goods.id, device=secrets.token_hex(12), **buyer(i))).status_code == 201
    assert await decisions(shop) == []
    response = await checkout(shop, goods.id, device=secrets.token_hex(12), **buyer(3))
    assert response.status_code == 403 and response.json()["code"] == "verification_required"
    [entry] = await decisions(shop)
    assert "bot_surge" in reason_codes(entry) and "device_velocity" not in reason_codes(entry)
    assert entry["signals"]["device_verified"] is False


async def test_device_rules_count_a_buyer_by_the_device_cookie_alone(shop, goods):
    await add_rule(shop, "velocity", {"dimension": "device", "window_seconds": 600, "max_count": 2})
    for i in range(2):
        assert (await checkout(shop, goods.id, **browser(shop, 1), **buyer(i))).status_code == 201
    assert (await checkout(shop, goods.id, **browser(shop, 2), **buyer(2))).status_code == 201
    assert await decisions(shop) == []
    await _refused_by_velocity(shop, await checkout(shop, goods.id, **browser(shop, 1), **buyer(3)),
                               "3 checkouts by device in 600s")
    [entry] = await decisions(shop)
    assert entry["signals"]["device"] == "dbrowser-000000000001" and entry["signals"]["device_verified"] is True


async def test_a_fixed_device_cookie_with_a_rotating_header_is_counted_on_the_cookie(shop, goods):
    await add_rule(shop, "velocity", {"dimension": "device", "window_seconds": 600, "max_count": 2})
    for i in range(2):
        response = await checkout(shop, goods.id, device=secrets.token_hex(12), **browser(shop, 1), **buyer(i))
        assert response.status_code == 201
    assert await decisions(shop) == []
    await _refused_by_velocity(
        shop, await checkout(shop, goods.id, device=secrets.token_hex(12), **browser(shop, 1), **buyer(2)),
        "3 checkouts by device in 600s")
    assert (await decisions(shop))[0]["signals"]["device"] == "dbrowser-000000000001"


async def test_without_a_valid_cookie_the_device_header_is_the_device(shop, goods):
    await add_rule(shop, "velocity", {"dimension": "device", "window_seconds": 600, "max_count": 1})
    assert (await checkout(shop, goods.id, device="app-device-01", **buyer(0))).status_code == 201
    # A forged cookie does not hide the header: this is app-device-01's second checkout.
    await _refused_by_velocity(
        shop, await checkout(shop, goods.id, device="app-device-01", device_cookie="dforged-cookie-000001",
                             **buyer(1)),
        "2 checkouts by device in 600s")
    [entry] = await decisions(shop)
    assert entry["signals"]["device"] == "app-device-01" and entry["signals"]["device_verified"] is False
    # A header that is no device id (too short) is ignored; the shop's cookie is the device either way.
    assert (await checkout(shop, goods.id, device="x", **browser(shop, 1), **buyer(2))).status_code == 201
    response = await checkout(shop, goods.id, device="app-device-01", **browser(shop, 1), **buyer(3))
    assert refused(response)  # the cookie's second checkout, whatever the header says
    assert (await decisions(shop))[0]["signals"]["device"] == "dbrowser-000000000001"
