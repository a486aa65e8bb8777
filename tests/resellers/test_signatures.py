"""Signature fuzz: every request that is not provably the reseller's, fresh and new is refused with its own
clear code, and changes nothing (wrong key, unknown app, stale or future time, reused nonce, edited body,
wrong path, wrong method, malformed headers); suspension, rate limits and secret rotation with an overlap."""

from __future__ import annotations

import json
import time

import pytest

from helpers import Shop
from quanyi.openapi_client import H_APP, H_BODY, H_SIG, H_TS, OpenApiError, signed_headers
from quanyi.orders.models import Order
from resellers.support import add_reseller, balance_of

BODY = {"idempotency_key": "F-1", "product_code": "GIFT-1", "quantity": 1, "max_unit_cost_cents": 1000}


def _body(payload: dict = BODY) -> bytes:
    return json.dumps(payload, separators=(",", ":")).encode()


async def _send(shop: Shop, headers: dict[str, str], body: bytes = b"", *, method: str = "POST",
                path: str = "/api/open/v1/card-orders"):
    return await shop.client.request(method, path, content=body,
                                     headers={**headers, "Content-Type": "application/json"})


def _refusal(response) -> tuple[int, str]:
    data = response.json()
    assert data["error"]["code"] == data["code"] and data["error"]["message"] == data["detail"]  # both shapes
    return response.status_code, data["error"]["code"]


@pytest.fixture
async def reseller(shop: Shop):
    sku = await shop.make_sku(code="GIFT-1", price_cents=1000)
    await shop.stock(sku, 3)
    return await add_reseller(shop, top_up_cents=10_000)


async def test_every_tampering_is_refused_with_its_own_code(shop: Shop, reseller):
    body = _body()
    path = "/api/open/v1/card-orders"

    def signed(**overrides) -> dict[str, str]:
        args = {"method": "POST", "path": path, "body": body} | overrides
        return signed_headers(reseller.app_id, overrides.pop("secret", reseller.secret),
                              **{k: v for k, v in args.items() if k != "secret"})

    now = int(time.time())
    cases = {
        "wrong key": (signed(secret="x" * 40), body, "POST", path, 401, "bad_signature"),
        "unknown app": ({**signed(), H_APP: "qy_nobody"}, body, "POST", path, 401, "unknown_app"),
        "no app": ({k: v for k, v in signed().items() if k != H_APP}, body, "POST", path, 401, "unknown_app"),
        "stale time": (signed(timestamp=now - 301), body, "POST", path, 401, "stale_request"),
        "future time": (signed(timestamp=now + 400), body, "POST", path, 401, "stale_request"),
        "time not a number": ({**signed(), H_TS: "soon"}, body, "POST", path, 401, "stale_request"),
        "edited body": (signed(), body.replace(b'"quantity":1', b'"quantity":3'), "POST", path, 401,
                        "body_mismatch"),
        "edited body and hash": ({**signed(), H_BODY: "0" * 64}, body, "POST", path, 401, "bad_signature"),
        "edited body, no hash header": ({k: v for k, v in signed().items() if k != H_BODY},
                                        body.replace(b"F-1", b"F-2"), "POST", path, 401, "bad_signature"),
        "wrong path": (signed(path="/api/open/v1/recharge-orders"), body, "POST", path, 401, "bad_signature"),
        "wrong method": (signed(method="PUT"), body, "POST", path, 401, "bad_signature"),
        "short nonce": (signed(nonce="abc"), body, "POST", path, 401, "bad_signature"),
        "signature not hex": ({**signed(), H_SIG: "z" * 64}, body, "POST", path, 401, "bad_signature"),
    }
    for name, (headers, sent, method, target, status, code) in cases.items():
        response = await _send(shop, headers, sent, method=method, path=target)
        assert _refusal(response) == (status, code), f"{name}: {response.text}"
    assert await shop.count(Order) == 0 and await balance_of(shop, "R001") == 10_000

    headers = signed()
    first = await _send(shop, headers, body)
    assert first.status_code == 200, first.text
    replay = await _send(shop, headers, body)
    assert _refusal(replay) == (401, "replayed_nonce")
    assert await shop.count(Order) == 1 and await balance_of(shop, "R001") == 9_000
    # A nonce is per reseller and only remembered once the signature verified: a forged request with a nonce
    # does not burn it for the real reseller.
    fresh = signed(nonce="n" * 32)
    forged = {**fresh, H_SIG: "0" * 64}
    assert _refusal(await _send(shop, forged, body)) == (401, "bad_signature")
    assert (await _send(shop, fresh, body)).status_code == 200  # same order number: the same order again
    assert await shop.count(Order) == 1


async def test_the_query_string_and_get_requests_are_signed_too(shop: Shop, reseller):
    path = "/api/open/v1/balance"
    ok = signed_headers(reseller.app_id, reseller.secret, method="GET", path=path, body=b"")
    assert (await _send(shop, ok, method="GET", path=path)).status_code == 200
    other = signed_headers(reseller.app_id, reseller.secret, method="GET", path=path, body=b"")
    assert _refusal(await _send(shop, other, method="GET", path=path + "?x=1")) == (401, "bad_signature")


async def test_malformed_requests_are_4xx_and_take_nothing(shop: Shop, reseller):
    bodies = [b"not json", b"[]", b'{"idempotency_key":"K1"}', _body({**BODY, "quantity": "1"}),
              _body({**BODY, "quantity": True}), _body({**BODY, "quantity": 0}),
              _body({**BODY, "idempotency_key": "bad key!"}), _body({**BODY, "max_unit_cost_cents": -1}),
              _body({**BODY, "product_code": "x\u0000y"}), _body({**BODY, "callback_url": "ftp://x"}),
              "{\"idempotency_key\":\"\udcff\"}".encode("utf-8", "surrogatepass"), b"{" * 5000]
    for body in bodies:
        headers = signed_headers(reseller.app_id, reseller.secret, method="POST", path="/api/open/v1/card-orders",
                                 body=body)
        response = await _send(shop, headers, body)
        assert 400 <= response.status_code < 500, (body[:40], response.text)
        assert response.json()["error"]["code"] in ("invalid_request", "bad_signature")
    for path in ("/api/open/v1/orders/bad%20key", "/api/open/v1/orders/" + "k" * 65):
        headers = signed_headers(reseller.app_id, reseller.secret, method="GET", path=path, body=b"")
        response = await _send(shop, headers, method="GET", path=path)
        assert 400 <= response.status_code < 500, response.text
    with pytest.raises(OpenApiError) as missing:
        await reseller.client.order("never-placed")
    assert (missing.value.status, missing.value.code) == (404, "order_not_found")
    assert await shop.count(Order) == 0


async def test_rotation_keeps_the_old_secret_for_the_overlap_only(shop: Shop, reseller):
    response = await shop.client.post("/api/admin/resellers/R001/rotate-secret", headers=shop.admin,
                                      json={"overlap_seconds": 3600})
    assert response.status_code == 200, response.text
    rotated = response.json()
    assert rotated["secret"] != reseller.secret and rotated["previous_secret_expires_at"]
    listed = (await shop.client.get("/api/admin/resellers/R001", headers=shop.admin)).json()
    assert "secret" not in listed and [s["hint"] for s in listed["secrets"]] == [rotated["secret"][-4:],
                                                                                  reseller.secret[-4:]]
    assert (await reseller.client.balance())["balance_cents"] == 10_000  # the old one still works
    now_only = await shop.client.post("/api/admin/resellers/R001/rotate-secret", headers=shop.admin,
                                      json={"overlap_seconds": 0})
    newest = now_only.json()["secret"]
    for old in (reseller.secret, rotated["secret"]):
        headers = signed_headers(reseller.app_id, old, method="GET", path="/api/open/v1/balance", body=b"")
        assert _refusal(await _send(shop, headers, method="GET", path="/api/open/v1/balance")) == (
            401, "bad_signature")
    headers = signed_headers(reseller.app_id, newest, method="GET", path="/api/open/v1/balance", body=b"")
    assert (await _send(shop, headers, method="GET", path="/api/open/v1/balance")).status_code == 200


async def test_suspension_and_rate_limit(shop: Shop, reseller):
    await shop.client.patch("/api/admin/resellers/R001", headers=shop.admin, json={"rate_limit_per_minute": 3})
    for _ in range(3):
        await reseller.client.balance()
    with pytest.raises(OpenApiError) as limited:
        await reseller.client.balance()
    assert (limited.value.status, limited.value.code) == (429, "rate_limited")
    assert limited.value.body["retry_after"] >= 1
    await shop.client.patch("/api/admin/resellers/R001", headers=shop.admin,
                            json={"rate_limit_per_minute": 0, "status": "suspended"})
    with pytest.raises(OpenApiError) as suspended:
        await reseller.client.buy_card_keys("S-1", "GIFT-1", quantity=1, max_unit_cost_cents=1000)
    assert (suspended.value.status, suspended.value.code) == (403, "account_suspended")
    assert await shop.count(Order) == 0
