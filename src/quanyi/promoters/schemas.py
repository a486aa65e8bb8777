"""Request/response shapes of the distribution (分销) API."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from quanyi.promoters.service import CODE_PATTERN
from quanyi.schema_types import reject_control_chars

__all__ = ["PromoterCode", "ProgramRead", "ProgramWrite", "PromoterCreate", "PromoterRead", "PromoterDecision",
           "CommissionBalanceRead", "WithdrawalCreate", "WithdrawalRead", "WithdrawalDecision", "WithdrawalPayout",
           "StatementLineRead", "StatementRead", "PromoterDetail"]

PromoterCode = Annotated[str, StringConstraints(strip_whitespace=True, pattern=CODE_PATTERN)]
Text = Annotated[str, StringConstraints(strip_whitespace=True, max_length=500), AfterValidator(reject_control_chars)]
Line = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200),
                 AfterValidator(reject_control_chars)]


class ProgramRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    enabled: bool
    auto_approve: bool
    levels: int
    attribution_days: int
    hold_days: int
    max_margin_share_bps: int
    min_withdrawal_cents: int
    updated_by: str


class ProgramWrite(BaseModel):
    """Only the fields given change."""

    model_config = ConfigDict(extra="forbid")
    enabled: bool | None = None
    auto_approve: bool | None = Field(default=None, description="Approve applications at once")
    levels: Annotated[int, Field(ge=1, le=2)] | None = Field(default=None, description="1 or 2 commission levels")
    attribution_days: Annotated[int, Field(ge=1, le=365)] | None = Field(
        default=None, description="How long a link's cookie and a member's binding attribute orders")
    hold_days: Annotated[int, Field(ge=0, le=365)] | None = Field(
        default=None, description="Commission becomes withdrawable this many days after delivery")
    max_margin_share_bps: Annotated[int, Field(ge=0, le=10_000)] | None = Field(
        default=None, description="Margin rule: an order's commission is at most this share of the seller's margin")
    min_withdrawal_cents: Annotated[int, Field(ge=1, le=10**12)] | None = None


class PromoterCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Line
    contact: Annotated[str, StringConstraints(strip_whitespace=True, min_length=3, max_length=254)]
    code: PromoterCode | None = Field(default=None, description="Its own code; generated when absent")
    parent_code: PromoterCode | None = Field(default=None, description="The promoter who recruited it (level 2)")


class PromoterRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    code: str
    name: str
    status: str
    member_id: int | None
    applied_at: dt.datetime
    reviewed_by: str | None
    reviewed_at: dt.datetime | None
    review_reason: str | None
    link: str = ""
    parent_code: str | None = None


class CommissionBalanceRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    currency: str
    balance_cents: int
    held_cents: int = Field(description="From orders still inside the refund window")
    reserved_cents: int = Field(description="Withdrawals requested or approved, not yet paid")
    available_cents: int = Field(description="What may be withdrawn now")
    paid_out_cents: int


class PromoterDetail(PromoterRead):
    balances: list[CommissionBalanceRead]
    orders: int = Field(description="Orders attributed to it")


class PromoterDecision(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: Annotated[Text, StringConstraints(min_length=1)]


class WithdrawalCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    amount_cents: Annotated[int, Field(ge=1, le=10**12)]
    currency: Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")] = "CNY"
    payout_account: Line = Field(description="Where to pay it, e.g. an Alipay account")


class WithdrawalRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    withdrawal_no: str
    promoter_code: str = ""
    amount_cents: int
    currency: str
    payout_account: str
    status: str
    requested_by: str
    requested_at: dt.datetime
    reviewed_by: str | None
    reviewed_at: dt.datetime | None
    review_reason: str | None
    paid_at: dt.datetime | None
    payout_reference: str | None


class WithdrawalDecision(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: Annotated[Text, StringConstraints(min_length=1)]


class WithdrawalPayout(BaseModel):
    model_config = ConfigDict(extra="forbid")
    payout_reference: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=128),
                                AfterValidator(reject_control_chars)]


class StatementLineRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    at: dt.datetime
    kind: str
    order_no: str | None
    currency: str
    amount_cents: int
    order_paid_cents: int
    balance_after_cents: int


class StatementRead(BaseModel):
    promoter_code: str
    currency: str
    start: dt.datetime
    end: dt.datetime
    opening_cents: int
    closing_cents: int
    lines: list[StatementLineRead]
