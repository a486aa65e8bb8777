"""Merchant side of the sandbox gateway: builds the cashier URL and verifies notifications.

The sandbox stands in for a real gateway in the demo and in tests, with the same shape as one:
the buyer pays on the gateway's cashier page, then the gateway POSTs a signed form
(`application/x-www-form-urlencoded`) to our notify URL and repeats it until we answer `success`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from urllib.parse import parse_qsl, urlencode

from quanyi.money import CURRENCIES
from quanyi.payments.gateway import (
    Checkout,
    CheckoutRequest,
    GatewayReply,
    NotificationRejected,
    PaymentGateway,
    PaymentNotification,
)
from quanyi.payments.sandbox.signing import seal_token, signature_matches

__all__ = ["SandboxGateway", "CASHIER_TOKEN_TTL"]

CASHIER_TOKEN_TTL = dt.timedelta(hours=2)
_REQUIRED = ("out_trade_no", "trade_no", "total_amount_cents", "currency", "trade_status",
             "timestamp", "nonce", "sign_type", "sign")


class SandboxGateway(PaymentGateway):
    name = "sandbox"
    title = "Sandbox 模拟支付"

    def __init__(self, *, secret: str, cashier_base_url: str = "", tolerance_seconds: int = 300) -> None:
        self._secret = secret
        self._cashier_base_url = cashier_base_url.rstrip("/")
        self._tolerance = tolerance_seconds

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
        )

    def acknowledge(self) -> GatewayReply:
        return GatewayReply(200, "text/plain", "success")

    def refuse(self, reason: str) -> GatewayReply:
        return GatewayReply(400, "text/plain", f"fail: {reason}")
