"""The shop-issued device cookie: signing and verification, who hands it out (product pages, a placed API
order) and that a cookie the storefront issued is counted as a device."""

from __future__ import annotations

import secrets

import httpx
import pytest

from quanyi.risk.device import (
    DEVICE_COOKIE,
    CheckoutDevice,
    checkout_device,
    device_cookie_key,
    new_device_cookie,
    sign_device_id,
    verified_device_id,
)
from risk.support import add_rule, checkout, decisions, issued_cookie, product_slug, refused

KEY = device_cookie_key(b"an app secret of the shop, long enough to be one")


@pytest.fixture
async def goods(shop):
    sku = await shop.make_sku(code="DEVICE-GOODS")
    await shop.stock(sku, 20)
    return sku


def _set_cookie(response: httpx.Response) -> str | None:
    """The device cookie this response sets (its whole Set-Cookie header), or None."""
    found = [h for h in response.headers.get_list("set-cookie") if h.startswith(f"{DEVICE_COOKIE}=")]
    assert len(found) <= 1, found
    return found[0] if found else None


def _value(set_cookie: str) -> str:
    return set_cookie.split(";", 1)[0].split("=", 1)[1].strip('"')


# ---------------------------------------------------------------- sign / verify

def test_a_new_cookie_verifies_to_its_random_id():
    value = new_device_cookie(KEY)
    device_id, mac = value.rsplit(".", 1)
    assert device_id.startswith("d") and len(device_id) == 23 and len(mac) == 22
    assert verified_device_id(KEY, value) == device_id
    assert new_device_cookie(KEY) != value


def test_a_tampered_cookie_does_not_verify():
    value = sign_device_id(KEY, "dbrowser-000000000001")
    device_id, mac = value.rsplit(".", 1)
    flipped = ("A" if mac[0] != "A" else "B") + mac[1:]
    assert verified_device_id(KEY, f"{device_id}.{flipped}") == ""
    assert verified_device_id(KEY, f"dbrowser-000000000002.{mac}") == ""  # another id under a real mac
    assert verified_device_id(KEY, f"{device_id}.{mac[:-1]}") == ""  # truncated mac
    assert verified_device_id(KEY, f"{value}.{mac}") == ""


def test_a_cookie_signed_with_another_key_does_not_verify():
    value = sign_device_id(KEY, "dbrowser-000000000001")
    assert verified_device_id(device_cookie_key(b"the app secret of another shop, also long"), value) == ""
    # The key is derived for this purpose: an HMAC under the raw app secret is no valid mac either.
    raw = sign_device_id(b"an app secret of the shop, long enough to be one", "dbrowser-000000000001")
    assert verified_device_id(KEY, raw) == ""


@pytest.mark.parametrize("value", [None, "", " ", ".", "d.", ".abc", "garbage", "dQm3Xr8mYp2Lk9sT4vW6zA",
                                   "d" + "a" * 300 + ".x", "dbrowser-000000000001.é", "dé" * 10 + ".abc",
                                   "dbrowser-00000000\x00001.abc"])
def test_garbage_empty_and_unsigned_values_are_no_device(value):
    assert verified_device_id(KEY, value) == ""


def test_the_cookie_wins_over_the_header_and_only_the_cookie_is_verified():
    cookie = sign_device_id(KEY, "dbrowser-000000000001")
    assert checkout_device(KEY, header="app-device-01", cookie=cookie) == CheckoutDevice(
        "dbrowser-000000000001", verified=True)
    assert checkout_device(KEY, header="app-device-01", cookie="dforged-cookie-0001") == CheckoutDevice(
        "app-device-01", verified=False)
    assert checkout_device(KEY, header="x", cookie=None) == CheckoutDevice()
    assert checkout_device(KEY, header=None, cookie=None) == CheckoutDevice()


# ---------------------------------------------------------------- who hands it out

async def test_the_storefront_issues_a_signed_cookie_that_is_counted_as_a_device(shop, goods):
    await add_rule(shop, "velocity", {"dimension": "sku_without_device", "window_seconds": 600, "max_count": 1})
    await add_rule(shop, "velocity", {"dimension": "device", "window_seconds": 600, "max_count": 2})
    page = await shop.client.get(f"/p/{await product_slug(shop, goods)}")
    header = _set_cookie(page)
    assert header is not None
    attributes = header.lower()
    assert "httponly" in attributes and "samesite=lax" in attributes and "max-age=31536000" in attributes
    assert "secure" not in attributes  # plain http here
    cookie = _value(header)
    device_id = verified_device_id(shop.ctx.risk.device_key, cookie)
    assert device_id
    for i in range(2):  # with a device: the cookieless rule does not see them
        response = await checkout(shop, goods.id, device_cookie=cookie, ip=f"203.0.113.{i}",
                                  contact=f"c{i}@example.com")
        assert response.status_code == 201, response.text
    response = await checkout(shop, goods.id, device_cookie=cookie, ip="203.0.113.9", contact="c9@example.com")
    assert refused(response)  # the third checkout of this one device
    [entry] = await decisions(shop)
    assert entry["signals"]["device"] == device_id and entry["signals"]["device_verified"] is True


async def test_the_storefront_replaces_a_forged_cookie_and_keeps_a_valid_one(shop, goods):
    slug = await product_slug(shop, goods)
    app = shop.client._transport.app
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="https://test") as browser:
        browser.cookies.set(DEVICE_COOKIE, "dQm3Xr8mYp2Lk9sT4vW6zA")  # the old unsigned format
        first = await browser.get(f"/p/{slug}")
        header = _set_cookie(first)
        assert header is not None and "secure" in header.lower()  # https: Secure, as before
        issued = _value(header)
        assert verified_device_id(shop.ctx.risk.device_key, issued)
        browser.cookies.set(DEVICE_COOKIE, issued)
        assert _set_cookie(await browser.get(f"/p/{slug}")) is None  # a valid cookie stays as it is


async def test_a_placed_api_order_sets_the_cookie_when_the_client_has_no_valid_one(shop, goods):
    for sent in (None, "dQm3Xr8mYp2Lk9sT4vW6zA", issued_cookie(shop, "dbrowser-000000000001")[:-2] + "xx"):
        response = await checkout(shop, goods.id, device_cookie=sent, contact=f"{secrets.token_hex(4)}@example.com")
        assert response.status_code == 201, response.text
        header = _set_cookie(response)
        assert header is not None and "httponly" in header.lower() and "samesite=lax" in header.lower()
        assert verified_device_id(shop.ctx.risk.device_key, _value(header))


async def test_a_placed_api_order_keeps_a_valid_cookie(shop, goods):
    await add_rule(shop, "velocity", {"dimension": "device", "window_seconds": 600, "max_count": 1})
    app = shop.client._transport.app
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        first = await client.post("/api/orders", json={"sku_id": goods.id, "contact": "a@example.com"})
        assert first.status_code == 201 and _set_cookie(first) is not None
        device_id = verified_device_id(shop.ctx.risk.device_key, client.cookies[DEVICE_COOKIE])
        second = await client.post("/api/orders", json={"sku_id": goods.id, "contact": "b@example.com"})
        assert second.status_code == 201 and _set_cookie(second) is None
        # The client's jar carried the cookie: its next checkout is counted on that device.
        third = await client.post("/api/orders", json={"sku_id": goods.id, "contact": "c@example.com"})
        assert refused(third)
    assert (await decisions(shop))[0]["signals"]["device"] == device_id
