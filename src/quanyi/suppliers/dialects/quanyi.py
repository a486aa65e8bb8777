"""The `quanyi` dialect: quanyi's own supplier protocol, JSON over HTTP, HMAC-SHA256 signed both ways.

The wire format is specified in docs/supplier-protocol.md (for suppliers who implement it); this module is
our client side of it plus the verifier for the callbacks suppliers send us. Card purchase, direct
recharge, order query, and stock/price + recharge-status callbacks.
"""

from __future__ import annotations

import datetime as dt
import hmac
import json
import re
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

import httpx

from quanyi.openapi_client import (
    H_APP,
    H_NONCE,
    H_SIG,
    H_TS,
    WINDOW_SECONDS,
    callback_signature,
    request_signature,
    signed_headers,
)
from quanyi.suppliers.adapter import (
    CallbackAck,
    CallbackEvent,
    CallbackRejected,
    CardPurchaseRequest,
    CardPurchaseResult,
    CatalogItem,
    CredentialField,
    OrderQueryResult,
    ProductKind,
    PurchaseNews,
    QueryState,
    RechargeEvent,
    RechargeRequest,
    RechargeState,
    RechargeStatus,
    StockEvent,
    StockQuote,
    SupplierCode,
    SupplierDialect,
    SupplierEndpoint,
    SupplierOutcomeUnknown,
    SupplierOutOfStock,
    SupplierPriceChanged,
    SupplierPurchasePending,
    SupplierRejected,
    SupplierUnavailable,
    register_dialect,
)
from quanyi.suppliers.dialects._common import outcome_error, send

__all__ = ["QuanyiAdapter", "request_signature", "callback_signature", "REPLAY_WINDOW_SECONDS"]

# The signing rule lives in quanyi.openapi_client (one implementation for this client, the shop's own open API
# server and the Python client resellers use).
REPLAY_WINDOW_SECONDS = WINDOW_SECONDS
IDEMPOTENCY_KEY = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")

# Wire error codes -> our errors. Everything not listed (bad signature, unknown product, insufficient
# balance, invalid account, idempotency conflict...) is a refusal: the order was not taken.
_NOT_TAKEN_RETRYABLE = {"unavailable", "rate_limited"}


def _int(value: Any, *, allow_none: bool = False) -> int | None:
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"not a non-negative integer: {value!r}")
    return value


def _opt_str(value: Any) -> str | None:
    return None if value is None else str(value)


def _code(item: Any) -> SupplierCode:
    if not isinstance(item, dict) or not isinstance(item.get("code"), str) or not item["code"]:
        raise ValueError("code entry without a code")
    expires = item.get("expires_at")
    if expires is None:
        return SupplierCode(code=item["code"])
    return SupplierCode(code=item["code"], expires_at=dt.datetime.fromisoformat(str(expires)))


class QuanyiAdapter:
    """Client of one supplier that speaks the quanyi protocol."""

    dialect: ClassVar[SupplierDialect] = SupplierDialect.QUANYI
    credential_fields: ClassVar[tuple[CredentialField, ...]] = (CredentialField("app_id", secret=False),
                                                                CredentialField("secret", secret=True))

    def __init__(self, endpoint: SupplierEndpoint, http: httpx.AsyncClient, *,
                 clock: Callable[[], float] = time.time) -> None:
        app_id, secret = endpoint.credentials.get("app_id"), endpoint.credentials.get("secret")
        if not app_id or not secret:
            raise SupplierRejected(f"{endpoint.supplier_code}: quanyi credentials need app_id and secret")
        self.endpoint, self._http, self._clock = endpoint, http, clock
        self._app_id, self._secret = app_id, secret

    # --- requests -------------------------------------------------------------------------------

    async def _call(self, method: str, path: str, payload: dict[str, Any] | None, *,
                    placing: bool) -> httpx.Response:
        body = b"" if payload is None else json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
        full_path = httpx.URL(self.endpoint.base_url.rstrip("/") + path).raw_path.decode("ascii")
        headers = signed_headers(self._app_id, self._secret, method=method, path=full_path, body=body,
                                 timestamp=int(self._clock()))
        if payload is not None:
            headers["Content-Type"] = "application/json"
        return await send(self._http, self.endpoint, method, path, placing=placing, content=body, headers=headers)

    def _fail(self, response: httpx.Response, *, placing: bool) -> Exception:
        """The error for a non-2xx answer."""
        supplier = self.endpoint.supplier_code
        try:
            error = response.json()["error"]
            code, message = str(error["code"]), str(error.get("message", ""))
        except (ValueError, KeyError, TypeError):
            # No protocol error body: a proxy or a crash answered. 503/429 mean "not forwarded";
            # any other 5xx may come after the supplier took the order.
            if response.status_code in (429, 503):
                return SupplierUnavailable(f"{supplier}: HTTP {response.status_code}", supplier=supplier)
            if response.status_code >= 500:
                return outcome_error(placing, f"{supplier}: HTTP {response.status_code}", supplier=supplier)
            return SupplierRejected(f"{supplier}: HTTP {response.status_code}", supplier=supplier)
        context: dict[str, object] = {"supplier": supplier, "code": code}
        text = f"{supplier}: {code}: {message}"
        if code == "out_of_stock":
            return SupplierOutOfStock(text, **context)
        if code == "price_changed":
            return SupplierPriceChanged(text, unit_cost_cents=error.get("unit_cost_cents"), **context)
        if code in _NOT_TAKEN_RETRYABLE:
            return SupplierUnavailable(text, **context)
        return SupplierRejected(text, **context)

    async def _json(self, method: str, path: str, payload: dict[str, Any] | None = None, *,
                    placing: bool = False) -> dict[str, Any]:
        response = await self._call(method, path, payload, placing=placing)
        if not response.is_success:
            raise self._fail(response, placing=placing)
        try:
            data = response.json()
        except ValueError:
            data = None
        if not isinstance(data, dict):
            raise outcome_error(placing, f"{self.endpoint.supplier_code}: answer is not a JSON object")
        return data

    def _garbled(self, placing: bool, what: str) -> Exception:
        return outcome_error(placing, f"{self.endpoint.supplier_code}: malformed {what}")

    # --- catalog and stock ----------------------------------------------------------------------

    async def fetch_catalog(self) -> list[CatalogItem]:
        data = await self._json("GET", "/v1/catalog")
        try:
            return [CatalogItem(product_code=str(p["product_code"]), name=str(p["name"]),
                                kind=ProductKind(p["kind"]), face_value_cents=_int(p["face_value_cents"]),
                                cost_cents=_int(p["cost_cents"]), currency=str(p.get("currency", "CNY")),
                                stock=_int(p.get("stock"), allow_none=True), available=bool(p.get("available", True)))
                    for p in data["products"]]
        except (KeyError, TypeError, ValueError):
            raise self._garbled(False, "catalog") from None

    async def fetch_quotes(self, product_codes: Sequence[str]) -> list[StockQuote]:
        data = await self._json("POST", "/v1/quotes", {"product_codes": list(product_codes)})
        try:
            return [StockQuote(product_code=str(q["product_code"]), cost_cents=_int(q["cost_cents"]),
                               stock=_int(q.get("stock"), allow_none=True), available=bool(q.get("available", True)))
                    for q in data["quotes"]]
        except (KeyError, TypeError, ValueError):
            raise self._garbled(False, "quotes") from None

    # --- orders ---------------------------------------------------------------------------------

    def _check_key(self, key: str) -> None:
        if not IDEMPOTENCY_KEY.match(key):
            raise SupplierRejected(f"idempotency key {key!r} is not 1-64 characters of [A-Za-z0-9_.:-]")

    async def buy_card_keys(self, request: CardPurchaseRequest) -> CardPurchaseResult:
        self._check_key(request.idempotency_key)
        data = await self._json("POST", "/v1/card-orders", {
            "idempotency_key": request.idempotency_key, "product_code": request.product_code,
            "quantity": request.quantity, "max_unit_cost_cents": request.max_unit_cost_cents,
        }, placing=True)
        try:
            codes = [_code(c) for c in data["codes"]]
            result = CardPurchaseResult(supplier_order_no=str(data["order_no"]),
                                        unit_cost_cents=_int(data["unit_cost_cents"]), codes=codes)
        except (KeyError, TypeError, ValueError):
            raise self._garbled(True, "card order") from None
        if data.get("state") in ("submitted", "processing") and not codes:
            # The supplier buys these upstream itself: it took the order and answers later (callback / query).
            raise SupplierPurchasePending(f"{self.endpoint.supplier_code}: card order {data.get('state')}",
                                          supplier=self.endpoint.supplier_code)
        if data.get("state") != "succeeded" or len(codes) != request.quantity:
            # It took the order but did not hand over what we bought: recovery must query it.
            raise SupplierOutcomeUnknown(f"{self.endpoint.supplier_code}: card order answered "
                                         f"{data.get('state')!r} with {len(codes)}/{request.quantity} codes")
        return result

    async def submit_recharge(self, request: RechargeRequest) -> RechargeStatus:
        self._check_key(request.idempotency_key)
        data = await self._json("POST", "/v1/recharge-orders", {
            "idempotency_key": request.idempotency_key, "product_code": request.product_code,
            "account": request.account, "quantity": request.quantity,
            "max_unit_cost_cents": request.max_unit_cost_cents, "callback_url": request.callback_url,
        }, placing=True)
        try:
            return RechargeStatus(supplier_order_no=str(data["order_no"]), state=RechargeState(data["state"]),
                                  unit_cost_cents=_int(data.get("unit_cost_cents"), allow_none=True),
                                  message=str(data.get("message", "")))
        except (KeyError, TypeError, ValueError):
            raise self._garbled(True, "recharge answer") from None

    async def query_order(self, idempotency_key: str, *, kind: ProductKind) -> OrderQueryResult:
        self._check_key(idempotency_key)
        response = await self._call("GET", f"/v1/orders/{idempotency_key}", None, placing=False)
        if response.status_code == 404:
            try:
                not_found = response.json()["error"]["code"] == "order_not_found"
            except (ValueError, KeyError, TypeError):
                not_found = False
            if not_found:
                return OrderQueryResult(idempotency_key=idempotency_key, state=QueryState.NOT_FOUND)
        if not response.is_success:
            raise self._fail(response, placing=False)
        try:
            data = response.json()
            state = {"submitted": QueryState.PROCESSING, "processing": QueryState.PROCESSING,
                     "succeeded": QueryState.SUCCEEDED, "failed": QueryState.FAILED}[data["state"]]
            return OrderQueryResult(
                idempotency_key=idempotency_key, state=state, supplier_order_no=str(data["order_no"]),
                unit_cost_cents=_int(data.get("unit_cost_cents"), allow_none=True),
                quantity=_int(data.get("quantity"), allow_none=True),
                codes=[_code(c) for c in data.get("codes") or []], message=str(data.get("message", "")))
        except (KeyError, TypeError, ValueError):
            raise self._garbled(False, "order query") from None

    # --- callbacks ------------------------------------------------------------------------------

    def parse_callback(self, *, headers: Mapping[str, str], body: bytes) -> list[CallbackEvent]:
        lower = {k.lower(): v for k, v in headers.items()}
        app_id, timestamp = lower.get(H_APP.lower()), lower.get(H_TS.lower(), "")
        nonce, signature = lower.get(H_NONCE.lower(), ""), lower.get(H_SIG.lower(), "")
        if app_id != self._app_id or not nonce or not signature:
            raise CallbackRejected("callback is not signed for this supplier")
        if not timestamp.isdigit() or abs(self._clock() - int(timestamp)) > REPLAY_WINDOW_SECONDS:
            raise CallbackRejected("callback timestamp outside the replay window")
        expected = callback_signature(self._secret, timestamp=timestamp, nonce=nonce, body=body)
        if not hmac.compare_digest(expected, signature.lower()):
            raise CallbackRejected("callback signature does not match")
        try:
            message = json.loads(body)
            data = message["data"]
            if message["type"] == "stock.changed":
                return [StockEvent(product_code=str(p["product_code"]), stock=_int(p.get("stock"), allow_none=True),
                                   cost_cents=_int(p.get("cost_cents"), allow_none=True),
                                   available=bool(p.get("available", True)))
                        for p in data["products"]]
            if message["type"] == "recharge.updated":
                return [RechargeEvent(idempotency_key=str(data["idempotency_key"]),
                                      supplier_order_no=_opt_str(data.get("order_no")),
                                      state=RechargeState(data["state"]),
                                      unit_cost_cents=_int(data.get("unit_cost_cents"), allow_none=True),
                                      message=str(data.get("message", "")))]
            if message["type"] == "order.updated":
                # A card order that was answered "processing" is ready (or failed): ask about it now.
                return [PurchaseNews(idempotency_key=str(data["idempotency_key"]), state=str(data["state"]))]
            if message["type"] == "order.refunded":
                return [PurchaseNews(idempotency_key=str(data["idempotency_key"]), state="refunded",
                                     refunded_cents=_int(data.get("refunded_cents"), allow_none=True))]
        except (KeyError, TypeError, ValueError):
            raise CallbackRejected("callback body is not understood") from None
        raise CallbackRejected(f"unknown callback type {message.get('type')!r}")

    def callback_ack(self) -> CallbackAck:
        return CallbackAck(status_code=200, media_type="application/json", body=b'{"ok":true}')


register_dialect(SupplierDialect.QUANYI, QuanyiAdapter)
