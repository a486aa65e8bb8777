"""The `async_recharge` dialect: an asynchronous direct-recharge platform (直充平台) of the common Chinese kind.

Wire format (what the platform's API documents, in short):
- Requests: POST, JSON object whose values are all strings, plus `merchant_id`, `timestamp` (Beijing time,
  `yyyyMMddHHmmss`) and `sign = upper(md5(secret + k1v1k2v2... + secret))` over the other non-empty fields
  sorted by name (the "secret-wrapped" MD5 style). Amounts are yuan strings with two decimals ("49.00").
- Answers: JSON `{"ret_code": "0000", "ret_msg": ..., ...}`; ret_code "0000" is success, see _RET below.
- Submit (`/api/v2/recharge`) only accepts the order (`status` "0"/"1"); the final status comes by callback
  to `notify_url` (form-encoded, same signature) and can be polled (`/api/v2/query`, by our out_trade_no).
- The callback must be answered with the body `success` exactly; anything else and the platform retries.
- Order status: "0" accepted (待处理), "1" recharging (充值中), "2" succeeded (成功), "3" failed (失败).
- No card purchase: buy_card_keys raises SupplierUnsupported. No stock counts: products are on sale ("1"),
  off sale ("0") or out of stock ("2", e.g. a carrier channel down).
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
    RechargeEvent,
    RechargeRequest,
    RechargeState,
    RechargeStatus,
    StockQuote,
    SupplierDialect,
    SupplierEndpoint,
    SupplierOutOfStock,
    SupplierPriceChanged,
    SupplierRejected,
    SupplierUnavailable,
    SupplierUnsupported,
    register_dialect,
)
from quanyi.suppliers.dialects._common import cents_to_yuan, json_answer, outcome_error, send, yuan_to_cents

__all__ = ["AsyncRechargeAdapter", "wrapped_md5_sign", "beijing_timestamp", "CALLBACK_WINDOW_SECONDS"]

BEIJING = dt.timezone(dt.timedelta(hours=8))
CALLBACK_WINDOW_SECONDS = 600
STATES = {"0": RechargeState.SUBMITTED, "1": RechargeState.PROCESSING, "2": RechargeState.SUCCEEDED,
          "3": RechargeState.FAILED}
_QUERY_STATES = {RechargeState.SUBMITTED: QueryState.PROCESSING, RechargeState.PROCESSING: QueryState.PROCESSING,
                 RechargeState.SUCCEEDED: QueryState.SUCCEEDED, RechargeState.FAILED: QueryState.FAILED}
# ret_code -> error class; all of them mean "not accepted". 9999: busy; 2007: channel out of stock.
_RET: dict[str, type[Exception]] = {
    "1001": SupplierRejected,  # sign error
    "1002": SupplierRejected,  # timestamp expired
    "1003": SupplierRejected,  # parameter error
    "1004": SupplierRejected,  # unknown merchant
    "2001": SupplierRejected,  # product not found
    "2002": SupplierRejected,  # product off sale
    "2003": SupplierPriceChanged,  # price above max_price (answer carries "price")
    "2004": SupplierRejected,  # account invalid
    "2005": SupplierRejected,  # balance insufficient
    "2006": SupplierRejected,  # out_trade_no reused with other content
    "2007": SupplierOutOfStock,  # no stock / channel closed
    "9999": SupplierUnavailable,  # system busy, order not accepted
}


def wrapped_md5_sign(secret: str, params: Mapping[str, str]) -> str:
    """upper(md5(secret + k1v1k2v2... + secret)), fields sorted by name, `sign` and empty values left out."""
    joined = "".join(f"{k}{v}" for k, v in sorted(params.items()) if k != "sign" and v != "")
    return hashlib.md5((secret + joined + secret).encode()).hexdigest().upper()  # noqa: S324 (the platform's choice)


def beijing_timestamp(now: float) -> str:
    return dt.datetime.fromtimestamp(now, BEIJING).strftime("%Y%m%d%H%M%S")


def _parse_beijing(text: str) -> float:
    return dt.datetime.strptime(text, "%Y%m%d%H%M%S").replace(tzinfo=BEIJING).timestamp()


class AsyncRechargeAdapter:
    """Client of one asynchronous direct-recharge platform."""

    dialect: ClassVar[SupplierDialect] = SupplierDialect.ASYNC_RECHARGE
    credential_fields: ClassVar[tuple[CredentialField, ...]] = (CredentialField("merchant_id", secret=False),
                                                                CredentialField("secret", secret=True))

    def __init__(self, endpoint: SupplierEndpoint, http: httpx.AsyncClient, *,
                 clock: Callable[[], float] = time.time) -> None:
        merchant_id, secret = endpoint.credentials.get("merchant_id"), endpoint.credentials.get("secret")
        if not merchant_id or not secret:
            raise SupplierRejected(f"{endpoint.supplier_code}: async_recharge credentials need merchant_id and secret")
        self.endpoint, self._http, self._clock = endpoint, http, clock
        self._merchant_id, self._secret = merchant_id, secret

    async def _call(self, path: str, fields: dict[str, str], *, placing: bool) -> dict[str, Any]:
        params = {**fields, "merchant_id": self._merchant_id, "timestamp": beijing_timestamp(self._clock())}
        params["sign"] = wrapped_md5_sign(self._secret, params)
        response = await send(self._http, self.endpoint, "POST", path, placing=placing, json=params)
        data = json_answer(response, self.endpoint, placing=placing)
        if not isinstance(data.get("ret_code"), str):
            raise outcome_error(placing, f"{self.endpoint.supplier_code}: answer without ret_code")
        return data

    def _raise_for(self, data: dict[str, Any], *, placing: bool) -> None:
        code = data["ret_code"]
        if code == "0000":
            return
        supplier = self.endpoint.supplier_code
        text = f"{supplier}: {code}: {data.get('ret_msg', '')}"
        error = _RET.get(code)
        if error is None:  # an undocumented code: we cannot tell whether a submit was taken
            raise outcome_error(placing, text, supplier=supplier, code=code)
        if error is SupplierPriceChanged:
            try:
                cost = yuan_to_cents(data.get("price"))
            except ValueError:
                cost = None
            raise SupplierPriceChanged(text, supplier=supplier, code=code, unit_cost_cents=cost)
        raise error(text, supplier=supplier, code=code)

    async def fetch_catalog(self) -> list[CatalogItem]:
        return [item for item, _ in await self._products({})]

    async def fetch_quotes(self, product_codes: Sequence[str]) -> list[StockQuote]:
        items = await self._products({"product_ids": ",".join(product_codes)})
        return [StockQuote(product_code=i.product_code, cost_cents=i.cost_cents, stock=None, available=i.available)
                for i, _ in items]

    async def _products(self, fields: dict[str, str]) -> list[tuple[CatalogItem, str]]:
        data = await self._call("/api/v2/products", fields, placing=False)
        self._raise_for(data, placing=False)
        try:
            return [(CatalogItem(product_code=str(p["product_id"]), name=str(p["product_name"]),
                                 kind=ProductKind.DIRECT_RECHARGE, face_value_cents=yuan_to_cents(p["face_value"]),
                                 cost_cents=yuan_to_cents(p["price"]), stock=None, available=p["status"] == "1"),
                     str(p["status"])) for p in data["products"]]
        except (KeyError, TypeError, ValueError):
            raise SupplierUnavailable(f"{self.endpoint.supplier_code}: malformed product list") from None

    async def buy_card_keys(self, request: CardPurchaseRequest) -> CardPurchaseResult:
        raise SupplierUnsupported("an async_recharge platform only does direct recharge, not card keys")

    async def submit_recharge(self, request: RechargeRequest) -> RechargeStatus:
        data = await self._call("/api/v2/recharge", {
            "out_trade_no": request.idempotency_key, "product_id": request.product_code, "account": request.account,
            "quantity": str(request.quantity), "max_price": cents_to_yuan(request.max_unit_cost_cents),
            "notify_url": request.callback_url or "",
        }, placing=True)
        self._raise_for(data, placing=True)
        try:
            return RechargeStatus(supplier_order_no=str(data["order_id"]), state=STATES[data["status"]],
                                  unit_cost_cents=yuan_to_cents(data["price"]), message=str(data.get("ret_msg", "")))
        except (KeyError, TypeError, ValueError):
            raise outcome_error(True, f"{self.endpoint.supplier_code}: malformed submit answer") from None

    async def query_order(self, idempotency_key: str, *, kind: ProductKind) -> OrderQueryResult:
        data = await self._call("/api/v2/query", {"out_trade_no": idempotency_key}, placing=False)
        if data["ret_code"] == "3001":  # the platform has no order under our out_trade_no
            return OrderQueryResult(idempotency_key=idempotency_key, state=QueryState.NOT_FOUND)
        self._raise_for(data, placing=False)
        try:
            return OrderQueryResult(
                idempotency_key=idempotency_key, state=_QUERY_STATES[STATES[data["status"]]],
                supplier_order_no=str(data["order_id"]), unit_cost_cents=yuan_to_cents(data["price"]),
                quantity=int(data["quantity"]), message=str(data.get("ret_msg", "")))
        except (KeyError, TypeError, ValueError):
            raise SupplierUnavailable(f"{self.endpoint.supplier_code}: malformed query answer") from None

    def parse_callback(self, *, headers: Mapping[str, str], body: bytes) -> list[CallbackEvent]:
        try:
            fields = dict(parse_qsl(body.decode(), keep_blank_values=True, strict_parsing=True))
        except (UnicodeDecodeError, ValueError):
            raise CallbackRejected("callback is not a form") from None
        if fields.get("merchant_id") != self._merchant_id or "sign" not in fields:
            raise CallbackRejected("callback is not signed for this merchant")
        try:
            sent_at = _parse_beijing(fields.get("timestamp", ""))
        except ValueError:
            raise CallbackRejected("callback timestamp missing or malformed") from None
        if abs(self._clock() - sent_at) > CALLBACK_WINDOW_SECONDS:
            raise CallbackRejected("callback timestamp outside the replay window")
        if not hmac.compare_digest(wrapped_md5_sign(self._secret, fields), fields["sign"].upper()):
            raise CallbackRejected("callback signature does not match")
        try:
            return [RechargeEvent(idempotency_key=fields["out_trade_no"], supplier_order_no=fields.get("order_id"),
                                  state=STATES[fields["status"]], unit_cost_cents=yuan_to_cents(fields["price"]),
                                  message=fields.get("ret_msg", ""))]
        except (KeyError, ValueError):
            raise CallbackRejected("callback fields not understood") from None

    def callback_ack(self) -> CallbackAck:
        return CallbackAck(status_code=200, media_type="text/plain", body=b"success")


register_dialect(SupplierDialect.ASYNC_RECHARGE, AsyncRechargeAdapter)
