"""Request/response shapes of the refund admin API."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Self

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, model_validator

from quanyi.refunds.state import RefundStatus
from quanyi.schema_types import reject_control_chars

__all__ = ["RefundCreate", "RefundEventRead", "RefundRead", "RefundWithdraw"]

Reason = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500),
                   AfterValidator(reject_control_chars)]


class RefundCreate(BaseModel):
    """Refund an amount (undelivered orders, duplicate payments) or a quantity of card keys (delivered
    orders). Give neither to refund everything that may still be refunded."""

    model_config = ConfigDict(extra="forbid")
    amount_cents: Annotated[int, Field(ge=1, le=10**12)] | None = None
    quantity: Annotated[int, Field(ge=1, le=1000)] | None = None
    reason: Reason
    payment_no: Annotated[str, StringConstraints(pattern=r"^[A-Z0-9]{4,32}$")] | None = Field(
        default=None, description="Refund this payment of the order (a duplicate); default: the one that paid it",
    )

    @model_validator(mode="after")
    def _one_measure(self) -> Self:
        if self.amount_cents is not None and self.quantity is not None:
            raise ValueError("give either amount_cents or quantity, not both")
        return self


class RefundWithdraw(BaseModel):
    """Give up a refused refund: the buyer is not refunded by it, and keeps (or gets) the goods."""

    model_config = ConfigDict(extra="forbid")
    reason: Reason


class RefundEventRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    from_status: str | None
    to_status: str
    actor: str
    reason: str
    created_at: dt.datetime


class RefundRead(BaseModel):
    refund_no: str
    order_no: str
    payment_no: str
    gateway: str
    status: RefundStatus
    amount_cents: int
    currency: str
    amount_display: str
    quantity: int
    reason: str
    requested_by: str
    gateway_refund_no: str | None
    attempts: int = Field(description="Gateway calls since the refund was (last) requested")
    next_attempt_at: dt.datetime | None
    last_error: str | None
    created_at: dt.datetime
    completed_at: dt.datetime | None
    actions: list[str] = Field(description='What staff may do now: "retry" (a refused or stalled refund, same '
                               'refund number), "withdraw" (a refused one; delivery of the order resumes)')
    events: list[RefundEventRead]
