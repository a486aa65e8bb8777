"""A small Python client of a quanyi shop's open API (开放接口), and the signing rule of the quanyi protocol.

The protocol is docs/supplier-protocol.md (how to call it as a reseller: docs/open-api.md). The signing
functions here are the one implementation the shop uses too: its supplier adapter (dialect `quanyi`) signs
with them and its open API verifies with them. This module needs only the standard library and httpx, so a
reseller may copy it as it is.

    client = OpenApiClient("https://shop.example/api/open", app_id="qy_...", secret="...")
    order = client.buy_card_keys("my-order-1001", "GIFT-100", quantity=2, max_unit_cost_cents=9500)
    for code in order["codes"]:
        print(code["code"])
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Mapping
from typing import Any

import httpx

__all__ = ["body_sha256", "request_signature", "callback_signature", "signed_headers", "verify_callback",
           "OpenApiClient", "AsyncOpenApiClient", "OpenApiError", "H_APP", "H_TS", "H_NONCE", "H_SIG", "H_BODY",
           "WINDOW_SECONDS"]

H_APP, H_TS, H_NONCE, H_SIG = "X-Quanyi-App-Id", "X-Quanyi-Timestamp", "X-Quanyi-Nonce", "X-Quanyi-Signature"
H_BODY = "X-Quanyi-Content-SHA256"  # optional: lets the server tell an altered body from a wrong key
WINDOW_SECONDS = 300


def body_sha256(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def request_signature(secret: str, *, method: str, path: str, timestamp: str, nonce: str, body: bytes,
                      body_hash: str | None = None) -> str:
    """hex(HMAC-SHA256(secret, METHOD \\n PATH?QUERY \\n TIMESTAMP \\n NONCE \\n hex(SHA256(body)))).
    `body_hash`: sign over this hash instead of the body's (the server checks a declared hash this way)."""
    base = "\n".join([method.upper(), path, timestamp, nonce, body_hash or body_sha256(body)])
    return hmac.new(secret.encode(), base.encode(), hashlib.sha256).hexdigest()


def callback_signature(secret: str, *, timestamp: str, nonce: str, body: bytes) -> str:
    """hex(HMAC-SHA256(secret, "CALLBACK" \\n TIMESTAMP \\n NONCE \\n hex(SHA256(body))))."""
    base = "\n".join(["CALLBACK", timestamp, nonce, body_sha256(body)])
    return hmac.new(secret.encode(), base.encode(), hashlib.sha256).hexdigest()


def signed_headers(app_id: str, secret: str, *, method: str, path: str, body: bytes,
                   timestamp: int | None = None, nonce: str | None = None) -> dict[str, str]:
    """The headers of one signed request (path: the request target as sent, query string included)."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    nonce = nonce or secrets.token_hex(16)
    digest = body_sha256(body)
    signature = request_signature(secret, method=method, path=path, timestamp=ts, nonce=nonce, body=body,
                                  body_hash=digest)
    return {H_APP: app_id, H_TS: ts, H_NONCE: nonce, H_SIG: signature, H_BODY: digest}


def verify_callback(secret: str, *, app_id: str, headers: Mapping[str, str], body: bytes,
                    now: float | None = None) -> dict[str, Any]:
    """Check a callback the shop sent (signed with `secret` for `app_id`) and return its JSON; ValueError if
    it is not authentic or not fresh. Callbacks describe a state, so a repeated one is harmless."""
    lower = {k.lower(): v for k, v in headers.items()}
    timestamp, nonce = lower.get(H_TS.lower(), ""), lower.get(H_NONCE.lower(), "")
    if lower.get(H_APP.lower()) != app_id or not nonce:
        raise ValueError("callback is not for this app id")
    if not timestamp.isdigit() or abs((time.time() if now is None else now) - int(timestamp)) > WINDOW_SECONDS:
        raise ValueError("callback timestamp outside the 300 s window")
    expected = callback_signature(secret, timestamp=timestamp, nonce=nonce, body=body)
    if not hmac.compare_digest(expected, lower.get(H_SIG.lower(), "").lower()):
        raise ValueError("callback signature does not match")
    data = json.loads(body)
    if not isinstance(data, dict):
        raise ValueError("callback body is not a JSON object")
    return data


class OpenApiError(Exception):
    """The shop refused a request: `code` is the protocol's error code (e.g. insufficient_balance)."""

    def __init__(self, status: int, code: str, message: str, body: dict[str, Any] | None = None) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status, self.code, self.message, self.body = status, code, message, body or {}


class _Signer:
    def __init__(self, base_url: str, app_id: str, secret: str) -> None:
        self.base_url, self.app_id, self._secret = base_url.rstrip("/"), app_id, secret

    def prepare(self, method: str, path: str, payload: dict[str, Any] | None) -> tuple[str, bytes, dict[str, str]]:
        body = b"" if payload is None else json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
        url = self.base_url + path
        target = httpx.URL(url).raw_path.decode("ascii")  # the request target exactly as it goes on the wire
        headers = signed_headers(self.app_id, self._secret, method=method, path=target, body=body)
        if payload is not None:
            headers["Content-Type"] = "application/json"
        return url, body, headers

    @staticmethod
    def result(response: httpx.Response) -> dict[str, Any]:
        try:
            data = response.json()
        except ValueError:
            data = None
        if not response.is_success:
            error = data.get("error") if isinstance(data, dict) else None
            if isinstance(error, dict):
                raise OpenApiError(response.status_code, str(error.get("code")), str(error.get("message", "")), data)
            raise OpenApiError(response.status_code, "http_error", response.text[:200])
        if not isinstance(data, dict):
            raise OpenApiError(response.status_code, "invalid_answer", "the answer is not a JSON object")
        return data


def _card_order(order_no: str, product_code: str, quantity: int, max_unit_cost_cents: int,
                callback_url: str | None) -> dict[str, Any]:
    payload: dict[str, Any] = {"idempotency_key": order_no, "product_code": product_code, "quantity": quantity,
                               "max_unit_cost_cents": max_unit_cost_cents}
    if callback_url is not None:
        payload["callback_url"] = callback_url
    return payload


def _recharge_order(order_no: str, product_code: str, account: str, quantity: int, max_unit_cost_cents: int,
                    callback_url: str | None) -> dict[str, Any]:
    return {"idempotency_key": order_no, "product_code": product_code, "account": account, "quantity": quantity,
            "max_unit_cost_cents": max_unit_cost_cents, "callback_url": callback_url}


class OpenApiClient:
    """Synchronous client; `http` may be an httpx.Client of your own (proxies, timeouts, a test transport)."""

    def __init__(self, base_url: str, *, app_id: str, secret: str, http: httpx.Client | None = None,
                 timeout: float = 30.0) -> None:
        self._signer = _Signer(base_url, app_id, secret)
        self._http = http or httpx.Client(timeout=timeout)

    def request(self, method: str, path: str, payload: dict[str, Any] | None = None) -> dict[str, Any]:
        """One signed call; returns the answer's JSON or raises OpenApiError."""
        url, body, headers = self._signer.prepare(method, path, payload)
        return self._signer.result(self._http.request(method, url, content=body, headers=headers))

    def catalog(self) -> list[dict[str, Any]]:
        """Every product you may buy, with your price (`cost_cents`) and stock."""
        return list(self.request("GET", "/v1/catalog")["products"])

    def quotes(self, product_codes: list[str]) -> list[dict[str, Any]]:
        return list(self.request("POST", "/v1/quotes", {"product_codes": product_codes})["quotes"])

    def buy_card_keys(self, order_no: str, product_code: str, *, quantity: int, max_unit_cost_cents: int,
                      callback_url: str | None = None) -> dict[str, Any]:
        """Buy card keys under your own order number; retrying with the same number returns the same order."""
        return self.request("POST", "/v1/card-orders",
                            _card_order(order_no, product_code, quantity, max_unit_cost_cents, callback_url))

    def recharge(self, order_no: str, product_code: str, *, account: str, max_unit_cost_cents: int,
                 quantity: int = 1, callback_url: str | None = None) -> dict[str, Any]:
        """Submit a direct recharge (直充); the result comes by callback and by `order()`."""
        return self.request("POST", "/v1/recharge-orders", _recharge_order(
            order_no, product_code, account, quantity, max_unit_cost_cents, callback_url))

    def order(self, order_no: str) -> dict[str, Any]:
        """An order by your order number, with its card keys (each look is audited by the shop)."""
        return self.request("GET", f"/v1/orders/{order_no}")

    def balance(self) -> dict[str, Any]:
        """Your prepaid balance and credit limit, in cents."""
        return self.request("GET", "/v1/balance")

    def close(self) -> None:
        self._http.close()


class AsyncOpenApiClient:
    """The same calls for asyncio code (and the shop's own tests, over an in-process transport)."""

    def __init__(self, base_url: str, *, app_id: str, secret: str, http: httpx.AsyncClient | None = None,
                 timeout: float = 30.0) -> None:
        self._signer = _Signer(base_url, app_id, secret)
        self._http = http or httpx.AsyncClient(timeout=timeout)

    async def request(self, method: str, path: str, payload: dict[str, Any] | None = None) -> dict[str, Any]:
        url, body, headers = self._signer.prepare(method, path, payload)
        return self._signer.result(await self._http.request(method, url, content=body, headers=headers))

    async def catalog(self) -> list[dict[str, Any]]:
        return list((await self.request("GET", "/v1/catalog"))["products"])

    async def quotes(self, product_codes: list[str]) -> list[dict[str, Any]]:
        return list((await self.request("POST", "/v1/quotes", {"product_codes": product_codes}))["quotes"])

    async def buy_card_keys(self, order_no: str, product_code: str, *, quantity: int, max_unit_cost_cents: int,
                            callback_url: str | None = None) -> dict[str, Any]:
        return await self.request("POST", "/v1/card-orders",
                                  _card_order(order_no, product_code, quantity, max_unit_cost_cents, callback_url))

    async def recharge(self, order_no: str, product_code: str, *, account: str, max_unit_cost_cents: int,
                       quantity: int = 1, callback_url: str | None = None) -> dict[str, Any]:
        return await self.request("POST", "/v1/recharge-orders", _recharge_order(
            order_no, product_code, account, quantity, max_unit_cost_cents, callback_url))

    async def order(self, order_no: str) -> dict[str, Any]:
        return await self.request("GET", f"/v1/orders/{order_no}")

    async def balance(self) -> dict[str, Any]:
        return await self.request("GET", "/v1/balance")

    async def aclose(self) -> None:
        await self._http.aclose()
