"""TEST PEER — what the supplier simulators keep: products, orders, codes, callbacks sent (not production code)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = ["SimProduct", "SimCode", "SimOrder", "Outgoing", "CallbackRecord", "Refusal"]


@dataclass
class SimProduct:
    code: str
    name: str
    kind: Literal["card_key", "direct_recharge"]
    face_value_cents: int
    cost_cents: int
    stock: int | None = None  # None: not counted
    available: bool = True


@dataclass(frozen=True)
class SimCode:
    number: str  # card number (卡号)
    password: str  # card password / redemption code (卡密)
    expires_at: dt.datetime | None = None


@dataclass
class SimOrder:
    key: str  # the buyer's idempotency key (out_trade_no)
    order_no: str
    kind: str
    product_code: str
    quantity: int
    unit_cost_cents: int
    fingerprint: tuple[Any, ...]  # what was asked; the same key with other terms is a conflict
    account: str | None = None
    notify_url: str | None = None
    codes: list[SimCode] = field(default_factory=list)
    state: Literal["processing", "succeeded", "failed"] = "succeeded"
    message: str = ""
    created_at: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))


@dataclass(frozen=True)
class Outgoing:
    """One callback as the dialect puts it on the wire (signed when built, so duplicates re-sign)."""

    content: bytes
    headers: dict[str, str]


@dataclass(frozen=True)
class CallbackRecord:
    url: str
    topic: Literal["recharge", "stock"]
    body: bytes
    headers: dict[str, str]
    status_code: int | None
    answer: bytes
    accepted: bool  # the receiver answered what the dialect expects


class Refusal(Exception):
    """The supplier refuses; the order was not taken. Each dialect maps `reason` to its own error code.
    Reasons: unavailable, unknown_product, product_unavailable, wrong_kind, out_of_stock, price_changed,
    insufficient_balance, idempotency_conflict, invalid_account, invalid_request."""

    def __init__(self, reason: str, message: str = "", *, unit_cost_cents: int | None = None) -> None:
        super().__init__(message or reason)
        self.reason, self.message, self.unit_cost_cents = reason, message or reason, unit_cost_cents
