"""Request/response shapes of the payments admin API: gateway accounts, the reconciliation report (对账单)."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["GatewayConfigUpdate", "GatewayConfigRead", "MismatchKind", "Mismatch", "ReconciliationReport"]


class GatewayConfigUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    enabled: bool = True
    config: dict[str, Any] = Field(
        default_factory=dict, max_length=64,
        description="The gateway's account settings. Fields left out, or sent as '********', keep their stored "
                    "value, so secrets need not be re-entered to change something else.")


class GatewayConfigRead(BaseModel):
    name: str
    title: str
    configured: bool
    enabled: bool
    active: bool = Field(description="Taking payments in this server process right now")
    config: dict[str, Any] | None = Field(description="Stored settings with every secret masked")
    problem: str | None = Field(description="Why a stored configuration cannot be used, if it cannot")
    updated_at: dt.datetime | None
    updated_by: str | None


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
