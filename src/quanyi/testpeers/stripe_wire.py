"""TEST PEER: the Stripe peer's wire objects: its API version, minimum amounts, the records it keeps (refund,
checkout session, payment intent) as Stripe serializes them, its error shape and its ids."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field
from typing import Any

from fastapi.responses import JSONResponse

__all__ = ["API_VERSION", "MINIMUM_AMOUNTS", "SEARCH", "Delivery", "Refund", "Session", "Intent", "error", "new_id"]

API_VERSION = "2024-06-20"
# https://docs.stripe.com/currencies#minimum-and-maximum-charge-amounts (the ones the shop could use)
MINIMUM_AMOUNTS = {"usd": 50, "eur": 50, "jpy": 50, "hkd": 400}
SEARCH = re.compile(r"^metadata\['([A-Za-z0-9_]+)'\]:'([^'\\]*)'$")


@dataclass(frozen=True)
class Delivery:
    """One webhook POST as Stripe would make it: post `body` with `headers` to /payments/stripe/notify."""

    event_id: str
    type: str
    body: bytes
    headers: dict[str, str]


@dataclass
class Refund:
    id: str
    payment_intent: str
    amount: int
    currency: str
    status: str
    metadata: dict[str, str]
    reason: str | None
    created: int

    def json(self) -> dict[str, Any]:
        return {"id": self.id, "object": "refund", "amount": self.amount, "currency": self.currency,
                "payment_intent": self.payment_intent, "status": self.status, "metadata": self.metadata,
                "reason": self.reason, "created": self.created,
                "failure_reason": "lost_or_stolen_card" if self.status == "failed" else None}


@dataclass
class Session:
    id: str
    amount: int
    currency: str
    name: str
    metadata: dict[str, str]
    pi_metadata: dict[str, str]
    client_reference_id: str | None
    success_url: str
    cancel_url: str | None
    expires_at: int
    created: int
    url: str
    status: str = "open"
    payment_status: str = "unpaid"
    payment_intent: str | None = None
    customer: str | None = None  # the paying Stripe customer (cus_...), once paid

    def json(self) -> dict[str, Any]:
        return {"id": self.id, "object": "checkout.session", "mode": "payment", "amount_subtotal": self.amount,
                "amount_total": self.amount, "currency": self.currency, "metadata": self.metadata,
                "client_reference_id": self.client_reference_id, "success_url": self.success_url,
                "cancel_url": self.cancel_url, "expires_at": self.expires_at, "created": self.created,
                "url": self.url if self.status == "open" else None, "status": self.status,
                "payment_status": self.payment_status, "payment_intent": self.payment_intent, "livemode": False,
                "customer": self.customer}


@dataclass
class Intent:
    id: str
    amount: int
    currency: str
    metadata: dict[str, str]
    created: int
    status: str = "processing"
    refunds: list[Refund] = field(default_factory=list)

    def json(self) -> dict[str, Any]:
        received = self.amount if self.status == "succeeded" else 0
        return {"id": self.id, "object": "payment_intent", "amount": self.amount, "amount_received": received,
                "currency": self.currency, "metadata": self.metadata, "status": self.status,
                "created": self.created, "livemode": False}


def error(status: int, kind: str, message: str, code: str | None = None, param: str | None = None) -> JSONResponse:
    body: dict[str, Any] = {"type": kind, "message": message}
    if code:
        body["code"] = code
    if param:
        body["param"] = param
    return JSONResponse({"error": body}, status_code=status)


def new_id(prefix: str) -> str:
    return f"{prefix}_test_{secrets.token_hex(12)}"
