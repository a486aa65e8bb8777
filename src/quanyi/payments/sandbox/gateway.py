"""Merchant side of the sandbox gateway: builds the cashier URL and verifies notifications.

The sandbox stands in for a real gateway in the demo and in tests, with the same shape as one:
the buyer pays on the gateway's cashier page, then the gateway POSTs a signed form
(`application/x-www-form-urlencoded`) to our notify URL and repeats it until we answer `success`.
"""

from __future__ import annotations

import datetime as dt
import secrets
import time
from collections.abc import Mapping
from urllib.parse import parse_qsl, urlencode

import httpx

from quanyi.money import CURRENCIES
from quanyi.payments.gateway import (
    Checkout,
    CheckoutRequest,
    GatewayReply,
    GatewayUnavailable,
    NotificationRejected,
    PaymentGateway,
    PaymentNotification,
    RefundRequest,
    RefundResult,
    TradeQuery,
    payer_account_of,
)
from quanyi.payments.sandbox.signing import seal_token, sign_params, signature_matches

__all__ = ["SandboxGateway", "CASHIER_TOKEN_TTL"]

CASHIER_TOKEN_TTL = dt.timedelta(hours=2)
_NOT_REFUNDED_YET = "not refunded yet at the sandbox: retry with the same refund number"
_REQUIRED = ("out_trade_no", "trade_no", "total_amount_cents", "currency", "trade_status",
             "timestamp", "nonce", "sign_type", "sign")


class SandboxGateway(PaymentGateway):
    name = "sandbox"
    title, title_en = "Sandbox 模拟支付", "Sandbox"
    # Like Alipay: a refund the query does not show is "not refunded yet", and is sent again with the same number.
    resends_processing_refunds = True

    def __init__(self, *, secret: str, cashier_base_url: str = "", tolerance_seconds: int = 300,
                 http: httpx.AsyncClient | None = None, api_base_url: str = "http://127.0.0.1:8000") -> None:
        self._secret = secret
        self._cashier_base_url = cashier_base_url.rstrip("/")
        self._tolerance = tolerance_seconds
        self._http = http
        self._api_base_url = api_base_url.rstrip("/")

    async def create_checkout(self, request: CheckoutRequest) -> Checkout:
        expires = dt.datetime.now(dt.UTC) + CASHIER_TOKEN_TTL
        token = seal_token(
            {"p": request.payment_no, "a": request.amount_cents, "c": request.currency, "s": request.subject,
             "n": request.notify_url, "r": request.return_url, "e": int(expires.timestamp())},
            self._secret,
        )
        return Checkout(cashier_url=f"{self._cashier_base_url}/sandbox/cashier?{urlencode({'t': token})}")

    def verify_notification(
        self, *, headers: Mapping[str, str], body: bytes, now: dt.datetime
    ) -> PaymentNotification:
        try:
            pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=True,
                              max_num_fields=32)
        except (UnicodeDecodeError, ValueError):
            raise NotificationRejected("malformed notification body") from None
        params = dict(pairs)
        if len(params) != len(pairs):
            raise NotificationRejected("repeated parameter in notification")
        missing = [name for name in _REQUIRED if not params.get(name)]
        if missing:
            raise NotificationRejected(f"notification lacks {', '.join(missing)}")
        if params["sign_type"] != "HMAC-SHA256":
            raise NotificationRejected(f"unsupported sign_type {params['sign_type']!r}")
        if not signature_matches(params, self._secret):
            raise NotificationRejected("bad signature")
        try:
            sent_at = int(params["timestamp"])
            amount = int(params["total_amount_cents"])
        except ValueError:
            raise NotificationRejected("timestamp and amount must be integers") from None
        if abs(now.timestamp() - sent_at) > self._tolerance:
            raise NotificationRejected("timestamp outside the accepted window (stale or replayed)")
        if amount < 0 or params["currency"] not in CURRENCIES:
            raise NotificationRejected("amount or currency not acceptable")
        paid_at = None
        if params.get("paid_at"):
            try:
                paid_at = dt.datetime.fromisoformat(params["paid_at"])
            except ValueError:
                raise NotificationRejected("paid_at is not an ISO timestamp") from None
            if paid_at.tzinfo is None:
                raise NotificationRejected("paid_at must carry a timezone")
        return PaymentNotification(
            payment_no=params["out_trade_no"], gateway_trade_no=params["trade_no"], amount_cents=amount,
            currency=params["currency"], succeeded=params["trade_status"] == "SUCCESS", paid_at=paid_at,
            payer_account=payer_account_of(params.get("buyer_id")),
        )

    def acknowledge(self) -> GatewayReply:
        return GatewayReply(200, "text/plain", "success")

    def refuse(self, reason: str) -> GatewayReply:
        return GatewayReply(400, "text/plain", f"fail: {reason}")

    # ------------------------------------------------------------ the merchant API (signed form -> signed JSON)

    async def _call(self, path: str, params: dict[str, str]) -> tuple[int, dict[str, str]]:
        if self._http is None:
            raise GatewayUnavailable("the sandbox gateway has no HTTP client configured")
        params = {**params, "timestamp": str(int(time.time())), "nonce": secrets.token_hex(12),
                  "sign_type": "HMAC-SHA256"}
        params["sign"] = sign_params(params, self._secret)
        try:
            response = await self._http.post(f"{self._api_base_url}/sandbox/api/{path}", data=params, timeout=10.0)
        except httpx.HTTPError as exc:
            raise GatewayUnavailable(f"sandbox {path}: {type(exc).__name__}: {exc}") from None
        if response.status_code >= 500:
            raise GatewayUnavailable(f"sandbox {path}: HTTP {response.status_code}")
        try:
            answer = response.json()
        except ValueError:
            raise GatewayUnavailable(f"sandbox {path}: answer is not JSON") from None
        if not isinstance(answer, dict) or not all(isinstance(v, str) for v in answer.values()):
            raise GatewayUnavailable(f"sandbox {path}: unexpected answer")
        if not signature_matches(answer, self._secret):
            raise GatewayUnavailable(f"sandbox {path}: answer signature does not verify")
        return response.status_code, answer

    async def query_trade(self, payment_no: str, *, gateway_session_id: str | None = None) -> TradeQuery:
        status, answer = await self._call("trade/query", {"out_trade_no": payment_no})
        if status != 200 or answer.get("out_trade_no") != payment_no:
            raise GatewayUnavailable(f"sandbox trade query refused: {answer.get('code')} {answer.get('msg', '')}")
        if answer.get("trade_status") != "SUCCESS":
            return TradeQuery(payment_no=payment_no, state="not_found")
        return TradeQuery(
            payment_no=payment_no, state="paid", gateway_trade_no=answer["trade_no"],
            amount_cents=int(answer["total_amount_cents"]), currency=answer["currency"],
            paid_at=dt.datetime.fromisoformat(answer["paid_at"]),
            payer_account=payer_account_of(answer.get("buyer_id")),
        )

    def _refund_result(self, refund_no: str, status: int, answer: dict[str, str], amount: int) -> RefundResult:
        if status != 200:
            return RefundResult(refund_no=refund_no, state="failed", amount_cents=amount,
                                detail=f"{answer.get('code')}: {answer.get('msg', '')}")
        if answer.get("out_request_no") != refund_no:
            raise GatewayUnavailable("sandbox answered about another refund")
        if answer.get("refund_status") != "SUCCESS":
            # Not a refusal: the sandbox has not refunded this number (yet). Sending the refund again with the same
            # number refunds it at most once; calling it failed would let staff withdraw a refund still to be paid.
            return RefundResult(refund_no=refund_no, state="processing", amount_cents=amount,
                                detail=_NOT_REFUNDED_YET)
        return RefundResult(refund_no=refund_no, state="succeeded", amount_cents=int(answer["refund_amount_cents"]),
                            gateway_refund_no=answer["refund_no"])

    async def refund(self, request: RefundRequest) -> RefundResult:
        status, answer = await self._call("trade/refund", {
            "out_trade_no": request.payment_no, "out_request_no": request.refund_no,
            "refund_amount_cents": str(request.amount_cents), "refund_reason": request.reason[:200],
        })
        return self._refund_result(request.refund_no, status, answer, request.amount_cents)

    async def query_refund(self, *, refund_no: str, payment_no: str) -> RefundResult:
        status, answer = await self._call("refund/query", {"out_request_no": refund_no})
        return self._refund_result(refund_no, status, answer, 0)
