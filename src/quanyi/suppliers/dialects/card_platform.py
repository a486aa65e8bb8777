"""The `card_platform` dialect: a wholesale card-key platform (卡密平台) of the usual Chinese kind.

Wire format, in short:
- Requests: POST `application/x-www-form-urlencoded` with `customer_id`, `timestamp` (Unix seconds) and
  `sign = upper(md5("k1=v1&k2=v2&...&key=SECRET"))` over the other non-empty parameters sorted by name.
- Answers: JSON `{"code": 0, "msg": "...", "data": ...}`; `code` 0 is success, other codes in _CODES.
  Amounts are yuan strings ("95.00"); `stock` -1 means not counted.
- Purchase (`/api/order/buy`) is synchronous: the answer carries the cards. Query by our out_trade_no.
- Optional stock push: the platform POSTs a signed form (goods_id, price, stock, status) and expects `ok`.
- No direct recharge: submit_recharge raises SupplierUnsupported.

Cards: a platform card has a card number (卡号, may be empty) and a password (卡密). We store ONE code per card:
`"<card_no> <card_pwd>"` (number, one space, password), or the password alone when there is no number. That is
what the buyer sees and types, in that order. `expire_date` (YYYY-MM-DD) means the end of that day, Beijing time.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar
from urllib.parse import parse_qsl

import httpx

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
    QueryState,
    RechargeRequest,
    RechargeStatus,
    StockEvent,
    StockQuote,
    SupplierCode,
    SupplierDialect,
    SupplierEndpoint,
    SupplierOutcomeUnknown,
    SupplierOutOfStock,
    SupplierPriceChanged,
    SupplierRejected,
    SupplierUnavailable,
    SupplierUnsupported,
    register_dialect,
)
from quanyi.suppliers.dialects._common import cents_to_yuan, json_answer, outcome_error, send, yuan_to_cents

__all__ = ["CardPlatformAdapter", "md5_key_sign", "card_code", "PUSH_WINDOW_SECONDS"]

BEIJING = dt.timezone(dt.timedelta(hours=8))
PUSH_WINDOW_SECONDS = 600
_CODES: dict[int, type[Exception]] = {
    1001: SupplierRejected,  # sign error
    1002: SupplierRejected,  # timestamp expired
    1003: SupplierRejected,  # parameter error
    1004: SupplierRejected,  # customer unknown or disabled
    2001: SupplierRejected,  # goods not found
    2002: SupplierRejected,  # goods off the shelf
    2003: SupplierOutOfStock,  # not enough stock
    2005: SupplierPriceChanged,  # price above max_price (data.price is the current one)
    2006: SupplierRejected,  # out_trade_no reused with other content
    3001: SupplierRejected,  # balance insufficient
    9999: SupplierUnavailable,  # system busy, order not taken
}
ORDER_NOT_FOUND = 2004
_QUERY_STATES = {"success": QueryState.SUCCEEDED, "processing": QueryState.PROCESSING, "failed": QueryState.FAILED}


def md5_key_sign(secret: str, params: Mapping[str, str]) -> str:
    """upper(md5("k1=v1&k2=v2...&key=SECRET")) over the non-empty params except `sign`, sorted by name."""
    pairs = [f"{k}={v}" for k, v in sorted(params.items()) if k != "sign" and v != ""]
    return hashlib.md5("&".join([*pairs, f"key={secret}"]).encode()).hexdigest().upper()  # noqa: S324 (theirs)


def card_code(card_no: str, card_pwd: str) -> str:
    """The one code we store for a platform card (see the module docstring)."""
    return f"{card_no} {card_pwd}" if card_no else card_pwd


def _card(item: Any) -> SupplierCode:
    number, password = str(item.get("card_no") or "").strip(), str(item["card_pwd"]).strip()
    if not password:
        raise ValueError("card without password")
    expires = item.get("expire_date")
    expires_at = None
    if expires:
        day = dt.date.fromisoformat(str(expires))
        expires_at = dt.datetime.combine(day, dt.time(23, 59, 59), BEIJING)
    return SupplierCode(code=card_code(number, password), expires_at=expires_at)


def _stock(value: Any) -> int | None:
    stock = int(value)
    if stock < -1:
        raise ValueError("negative stock")
    return None if stock == -1 else stock


class CardPlatformAdapter:
    """Client of one wholesale card-key platform."""

    dialect: ClassVar[SupplierDialect] = SupplierDialect.CARD_PLATFORM
    credential_fields: ClassVar[tuple[CredentialField, ...]] = (CredentialField("customer_id", secret=False),
                                                                CredentialField("secret", secret=True))

    def __init__(self, endpoint: SupplierEndpoint, http: httpx.AsyncClient, *,
                 clock: Callable[[], float] = time.time) -> None:
        customer_id, secret = endpoint.credentials.get("customer_id"), endpoint.credentials.get("secret")
        if not customer_id or not secret:
            raise SupplierRejected(f"{endpoint.supplier_code}: card_platform credentials need customer_id and secret")
        self.endpoint, self._http, self._clock = endpoint, http, clock
        self._customer_id, self._secret = customer_id, secret

    async def _call(self, path: str, fields: dict[str, str], *, placing: bool) -> dict[str, Any]:
        params = {**fields, "customer_id": self._customer_id, "timestamp": str(int(self._clock()))}
        params["sign"] = md5_key_sign(self._secret, params)
        response = await send(self._http, self.endpoint, "POST", path, placing=placing, data=params)
        data = json_answer(response, self.endpoint, placing=placing)
        if not isinstance(data.get("code"), int) or isinstance(data.get("code"), bool):
            raise outcome_error(placing, f"{self.endpoint.supplier_code}: answer without a numeric code")
        return data

    def _raise_for(self, answer: dict[str, Any], *, placing: bool) -> None:
        code = answer["code"]
        if code == 0:
            return
        supplier = self.endpoint.supplier_code
        text = f"{supplier}: {code}: {answer.get('msg', '')}"
        error = _CODES.get(code)
        if error is None:  # undocumented: a purchase may or may not have gone through
            raise outcome_error(placing, text, supplier=supplier, code=code)
        if error is SupplierPriceChanged:
            try:
                cost = yuan_to_cents((answer.get("data") or {})["price"])
            except (KeyError, TypeError, ValueError):
                cost = None
            raise SupplierPriceChanged(text, supplier=supplier, code=code, unit_cost_cents=cost)
        raise error(text, supplier=supplier, code=code)

    async def fetch_catalog(self) -> list[CatalogItem]:
        answer = await self._call("/api/goods/list", {}, placing=False)
        self._raise_for(answer, placing=False)
        try:
            return [CatalogItem(product_code=str(g["goods_id"]), name=str(g["goods_name"]), kind=ProductKind.CARD_KEY,
                                face_value_cents=yuan_to_cents(g["face_value"]), cost_cents=yuan_to_cents(g["price"]),
                                stock=_stock(g["stock"]), available=g["status"] == 1)
                    for g in answer["data"]]
        except (KeyError, TypeError, ValueError):
            raise SupplierUnavailable(f"{self.endpoint.supplier_code}: malformed goods list") from None

    async def fetch_quotes(self, product_codes: Sequence[str]) -> list[StockQuote]:
        answer = await self._call("/api/goods/stock", {"goods_ids": ",".join(product_codes)}, placing=False)
        self._raise_for(answer, placing=False)
        try:
            return [StockQuote(product_code=str(g["goods_id"]), cost_cents=yuan_to_cents(g["price"]),
                               stock=_stock(g["stock"]), available=g["status"] == 1) for g in answer["data"]]
        except (KeyError, TypeError, ValueError):
            raise SupplierUnavailable(f"{self.endpoint.supplier_code}: malformed stock list") from None

    async def buy_card_keys(self, request: CardPurchaseRequest) -> CardPurchaseResult:
        answer = await self._call("/api/order/buy", {
            "out_trade_no": request.idempotency_key, "goods_id": request.product_code,
            "quantity": str(request.quantity), "max_price": cents_to_yuan(request.max_unit_cost_cents),
        }, placing=True)
        self._raise_for(answer, placing=True)
        try:
            data = answer["data"]
            codes = [_card(c) for c in data["cards"]]
            result = CardPurchaseResult(supplier_order_no=str(data["order_no"]),
                                        unit_cost_cents=yuan_to_cents(data["price"]), codes=codes)
            status = data["status"]
        except (KeyError, TypeError, ValueError):
            raise outcome_error(True, f"{self.endpoint.supplier_code}: malformed purchase answer") from None
        if status != "success" or len(codes) != request.quantity:
            # Taken, but the cards are not (all) here yet: recovery queries the order.
            raise SupplierOutcomeUnknown(f"{self.endpoint.supplier_code}: purchase {status!r} with "
                                         f"{len(codes)}/{request.quantity} cards")
        return result

    async def submit_recharge(self, request: RechargeRequest) -> RechargeStatus:
        raise SupplierUnsupported("a card platform sells card keys only, no direct recharge")

    async def query_order(self, idempotency_key: str, *, kind: ProductKind) -> OrderQueryResult:
        answer = await self._call("/api/order/query", {"out_trade_no": idempotency_key}, placing=False)
        if answer["code"] == ORDER_NOT_FOUND:
            return OrderQueryResult(idempotency_key=idempotency_key, state=QueryState.NOT_FOUND)
        self._raise_for(answer, placing=False)
        try:
            data = answer["data"]
            return OrderQueryResult(
                idempotency_key=idempotency_key, state=_QUERY_STATES[data["status"]],
                supplier_order_no=str(data["order_no"]), unit_cost_cents=yuan_to_cents(data["price"]),
                quantity=int(data["quantity"]), codes=[_card(c) for c in data.get("cards") or []],
                message=str(answer.get("msg", "")))
        except (KeyError, TypeError, ValueError):
            raise SupplierUnavailable(f"{self.endpoint.supplier_code}: malformed order query") from None

    def parse_callback(self, *, headers: Mapping[str, str], body: bytes) -> list[CallbackEvent]:
        try:
            fields = dict(parse_qsl(body.decode(), keep_blank_values=True, strict_parsing=True))
        except (UnicodeDecodeError, ValueError):
            raise CallbackRejected("push is not a form") from None
        if fields.get("customer_id") != self._customer_id or "sign" not in fields:
            raise CallbackRejected("push is not signed for this customer")
        timestamp = fields.get("timestamp", "")
        if not timestamp.isdigit() or abs(self._clock() - int(timestamp)) > PUSH_WINDOW_SECONDS:
            raise CallbackRejected("push timestamp outside the replay window")
        if not hmac.compare_digest(md5_key_sign(self._secret, fields), fields["sign"].upper()):
            raise CallbackRejected("push signature does not match")
        try:
            return [StockEvent(product_code=fields["goods_id"], stock=_stock(fields["stock"]),
                               cost_cents=yuan_to_cents(fields["price"]) if fields.get("price") else None,
                               available=fields.get("status", "1") == "1")]
        except (KeyError, ValueError):
            raise CallbackRejected("push fields not understood") from None

    def callback_ack(self) -> CallbackAck:
        return CallbackAck(status_code=200, media_type="text/plain", body=b"ok")


register_dialect(SupplierDialect.CARD_PLATFORM, CardPlatformAdapter)
