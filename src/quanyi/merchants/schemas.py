"""Request/response shapes of the merchants API."""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from quanyi.merchants.models import MerchantStatus
from quanyi.schema_types import LongText, Name, reject_control_chars

__all__ = ["MERCHANT_CODE", "MerchantCode", "MerchantCreate", "MerchantUpdate", "MerchantRead", "Bps", "HoldDays",
           "ContactEmail", "ContactPhone", "ShortName", "CommissionRuleWrite", "CommissionRuleRead", "BalanceRead",
           "WithdrawalCreate", "WithdrawalDecision", "WithdrawalPayout", "WithdrawalRead", "StatementIssue",
           "StatementLineRead", "StatementRead", "ApplicationCreate", "ApplicationSubmitted", "ApplicationRead",
           "ApplicationAdminRead", "ApplicationApprove", "ApplicationReject"]


# Lowercase, because it is part of a URL (/m/<code>) and of ledger account codes.
MERCHANT_CODE = re.compile(r"^[a-z0-9][a-z0-9-]{1,31}$")


# Words the console's merchant pages use after /console/merchants/: a merchant so named could not be opened there.
RESERVED_CODES = frozenset({"applications", "withdrawals"})


def _merchant_code(value: str) -> str:
    value = value.lower()
    if not MERCHANT_CODE.match(value):
        raise ValueError("use 2-32 lowercase letters, digits and '-', starting with a letter or digit")
    if value in RESERVED_CODES:
        raise ValueError(f"{value!r} is reserved; choose another code")
    return value


MerchantCode = Annotated[str, StringConstraints(strip_whitespace=True, min_length=2, max_length=32),
                         AfterValidator(_merchant_code)]
Bps = Annotated[int, Field(ge=0, le=10_000, description="basis points: 100 = 1%")]
HoldDays = Annotated[int, Field(ge=0, le=365)]
ShortName = Annotated[str, StringConstraints(strip_whitespace=True, max_length=100),
                      AfterValidator(reject_control_chars)]
# Empty (not given) or an address: the platform writes to it about money.
ContactEmail = Annotated[str, StringConstraints(strip_whitespace=True, max_length=254,
                                                pattern=r"^$|^[^@\s]+@[^@\s]+\.[^@\s]+$"),
                         AfterValidator(reject_control_chars)]
ContactPhone = Annotated[str, StringConstraints(strip_whitespace=True, max_length=32, pattern=r"^[0-9+\- ]*$")]


class MerchantCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    code: MerchantCode
    name: Name
    commission_bps: Bps = 0
    hold_days: HoldDays | None = None
    description: LongText = ""
    contact_name: ShortName = ""
    contact_email: ContactEmail = ""
    contact_phone: ContactPhone = ""


class MerchantUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Name | None = None
    status: MerchantStatus | None = None
    commission_bps: Bps | None = None
    hold_days: HoldDays | None = None
    description: LongText | None = None
    contact_name: ShortName | None = None
    contact_email: ContactEmail | None = None
    contact_phone: ContactPhone | None = None


class MerchantRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    code: str
    name: str
    status: str
    self_operated: bool
    commission_bps: int
    hold_days: int | None
    description: str
    contact_name: str
    contact_email: str
    contact_phone: str
    created_at: dt.datetime
    updated_at: dt.datetime


class CommissionRuleWrite(BaseModel):
    model_config = ConfigDict(extra="forbid")
    category_id: Annotated[int, Field(ge=1, le=2_147_483_647)]
    commission_bps: Bps


class CommissionRuleRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    category_id: int
    commission_bps: int
    updated_by: str
    updated_at: dt.datetime


class BalanceRead(BaseModel):
    currency: str
    balance_cents: int = Field(description="What the platform owes the merchant")
    held_cents: int = Field(description="Earnings of orders delivered within the hold period (refund window)")
    reserved_cents: int = Field(description="Withdrawals requested or approved, not yet paid")
    available_cents: int = Field(description="What may be withdrawn now")


class WithdrawalCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    amount_cents: Annotated[int, Field(ge=1, le=10_000_000_000)]
    currency: Annotated[str, StringConstraints(strip_whitespace=True, to_upper=True, pattern=r"^[A-Z]{3}$")] = "CNY"
    note: Annotated[str, StringConstraints(max_length=500), AfterValidator(reject_control_chars)] = ""


class WithdrawalDecision(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500),
                      AfterValidator(reject_control_chars)]


class WithdrawalPayout(BaseModel):
    model_config = ConfigDict(extra="forbid")
    payout_reference: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=128),
                                AfterValidator(reject_control_chars)]


class WithdrawalRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    withdrawal_no: str
    merchant_id: int
    amount_cents: int
    currency: str
    status: str
    note: str
    requested_by: str
    requested_at: dt.datetime
    reviewed_by: str | None
    reviewed_at: dt.datetime | None
    review_reason: str | None
    paid_by: str | None
    paid_at: dt.datetime | None
    payout_reference: str | None


class StatementIssue(BaseModel):
    model_config = ConfigDict(extra="forbid")
    period: dt.date = Field(description="A day of the period, e.g. 2026-12-01")
    cycle: Literal["daily", "weekly", "monthly"] = "monthly"


class StatementLineRead(BaseModel):
    at: dt.datetime
    kind: str
    reference: str
    order_no: str | None
    gross_cents: int
    amount_cents: int


class StatementRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    statement_no: str
    merchant_id: int
    cycle: str
    period_start: dt.date
    period_end: dt.date
    currency: str
    opening_cents: int
    gross_cents: int
    fees_cents: int
    net_sales_cents: int
    refunds_cents: int
    withdrawals_cents: int
    closing_cents: int
    orders: int
    created_by: str
    created_at: dt.datetime
    lines: list[StatementLineRead] = []


class ApplicationCreate(BaseModel):
    """An application to sell on the platform (入驻申请); the owner login is created when it is approved."""

    model_config = ConfigDict(extra="forbid")
    code: MerchantCode = Field(description="The shop code you would like: your page is /m/<code>")
    name: Name = Field(description="Shop name shown to buyers")
    description: Annotated[str, StringConstraints(max_length=2000), AfterValidator(reject_control_chars)] = ""
    contact_name: ShortName = ""
    contact_email: Annotated[str, StringConstraints(strip_whitespace=True, min_length=3, max_length=254,
                                                    pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")]
    contact_phone: ContactPhone = ""
    owner_username: Annotated[str, StringConstraints(strip_whitespace=True, to_lower=True, min_length=2,
                                                     max_length=64, pattern=r"^[a-z0-9][a-z0-9._-]*$")]
    owner_password: Annotated[str, StringConstraints(min_length=10, max_length=1024)]


class ApplicationSubmitted(BaseModel):
    application_no: str
    status: str
    access_token: str = Field(description="Send it as X-Application-Token to follow the application")


class ApplicationRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    application_no: str
    status: str
    code: str
    name: str
    description: str
    contact_name: str
    contact_email: str
    contact_phone: str
    owner_username: str
    created_at: dt.datetime
    reviewed_at: dt.datetime | None
    review_reason: str | None


class ApplicationAdminRead(ApplicationRead):
    ip: str
    reviewed_by: str | None
    merchant_id: int | None


class ApplicationApprove(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500),
                      AfterValidator(reject_control_chars)]
    commission_bps: Bps
    hold_days: HoldDays | None = None


class ApplicationReject(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500),
                      AfterValidator(reject_control_chars)]
