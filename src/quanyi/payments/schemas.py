"""Request/response shapes of the payments admin API: gateway accounts, the reconciliation report (对账单)."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["GatewayConfigUpdate", "GatewayConfigRead", "MismatchKind", "Mismatch", "TopUpTrade",
           "ReconciliationReport"]


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
    "paid_twice",  # a second payment of an enterprise's online top-up: owed back until marked refunded
]


class Mismatch(BaseModel):
    kind: MismatchKind
    gateway: str
    payment_no: str  # our trade number at the gateway (an online top-up's: its request number)
    order_no: str  # empty for an enterprise's online top-up
    refund_no: str | None = None
    enterprise_code: str | None = None  # an online top-up's enterprise (a line about a top-up, not an order)
    ours: str
    theirs: str
    repaired: bool = False
    detail: str


class TopUpTrade(BaseModel):
    """An enterprise's online top-up (在线充值) the gateway took money for on the day, as reconciliation found it:
    `matched` (credited under this trade, the gateway agrees), `paid_twice` (a second payment of a credited
    request: owed back, also listed as a mismatch until an operator marks it refunded) or `paid_twice_refunded`."""

    gateway: str
    payment_no: str  # the request number: our trade number at the gateway
    gateway_trade_no: str
    enterprise_code: str
    amount_cents: int
    currency: str
    status: Literal["matched", "paid_twice", "paid_twice_refunded"]


class ReconciliationReport(BaseModel):
    date: dt.date
    timezone: str
    gateways: list[str]
    payments_checked: int
    refunds_checked: int
    mismatches: list[Mismatch]
    top_ups_checked: int = 0  # enterprises' online top-up requests of the day asked about at their gateway
    top_ups: list[TopUpTrade] = Field(default_factory=list)
