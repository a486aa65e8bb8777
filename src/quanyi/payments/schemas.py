"""Shapes of the payment reconciliation report (对账单)."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel

__all__ = ["MismatchKind", "Mismatch", "ReconciliationReport"]

MismatchKind = Literal[
    "paid_not_recorded",  # the gateway has the money, we still wait for it (lost notification)
    "amount_mismatch",  # the gateway's amount or currency differs from what we asked for
    "trade_mismatch",  # we recorded another gateway transaction than the gateway reports
    "not_paid_at_gateway",  # we delivered/recorded money the gateway does not know of
    "refund_mismatch",  # a refund's state or amount differs between us and the gateway
    "unchecked",  # the gateway could not be asked (unreachable, or not configured here)
]


class Mismatch(BaseModel):
    kind: MismatchKind
    gateway: str
    payment_no: str
    order_no: str
    refund_no: str | None = None
    ours: str
    theirs: str
    repaired: bool = False
    detail: str


class ReconciliationReport(BaseModel):
    date: dt.date
    timezone: str
    gateways: list[str]
    payments_checked: int
    refunds_checked: int
    mismatches: list[Mismatch]
