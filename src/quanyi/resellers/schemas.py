"""Shapes of the open API (the quanyi protocol's wire format) and of the reseller admin API."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictInt, StringConstraints

from quanyi.schema_types import reject_control_chars

__all__ = ["CardOrderRequest", "RechargeOrderRequest", "QuotesRequest", "ResellerCreate", "ResellerUpdate",
           "ResellerRead", "ResellerIssued", "SecretRotate", "PriceSet", "PriceRead", "TopUp", "BalanceRead"]

OrderKey = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.:-]{1,64}$")]
ProductCode = Annotated[str, StringConstraints(min_length=1, max_length=64), AfterValidator(reject_control_chars)]
CallbackUrl = Annotated[str, StringConstraints(max_length=500, pattern=r"^https?://[^\s]+$")]
Cents = Annotated[StrictInt, Field(ge=0, le=10_000_000_000)]


class _Wire(BaseModel):
    model_config = ConfigDict(extra="ignore")  # the protocol lets either side add members


class CardOrderRequest(_Wire):
    idempotency_key: OrderKey
    product_code: ProductCode
    quantity: Annotated[StrictInt, Field(ge=1, le=1000)]
    max_unit_cost_cents: Cents
    callback_url: CallbackUrl | None = None


class RechargeOrderRequest(CardOrderRequest):
    account: Annotated[str, StringConstraints(min_length=1, max_length=128), AfterValidator(reject_control_chars)]


class QuotesRequest(_Wire):
    product_codes: Annotated[list[ProductCode], Field(max_length=500)]


# ---------------------------------------------------------------- admin

Name = Annotated[str, StringConstraints(min_length=1, max_length=200), AfterValidator(reject_control_chars)]
ResellerCode = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,47}$")]


class ResellerCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    code: ResellerCode
    name: Name
    contact_email: Annotated[str, StringConstraints(max_length=254)]
    rate_limit_per_minute: Annotated[int, Field(ge=0, le=1_000_000)] = 600
    credit_limit_cents: Cents = 0
    callback_url: CallbackUrl | None = None


class ResellerUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Name | None = None
    status: Literal["active", "suspended"] | None = None
    rate_limit_per_minute: Annotated[int, Field(ge=0, le=1_000_000)] | None = None
    callback_url: CallbackUrl | Literal[""] | None = Field(default=None, description='"" removes it')
    credit_limit_cents: Cents | None = None


class SecretRead(BaseModel):
    hint: str = Field(description="The last 4 characters")
    created_at: dt.datetime
    expires_at: dt.datetime | None


class ResellerRead(BaseModel):
    code: str
    name: str
    contact_email: str
    app_id: str
    status: str
    rate_limit_per_minute: int
    callback_url: str | None
    account_code: str
    balance_cents: int
    credit_limit_cents: int
    currency: str
    secrets: list[SecretRead]
    created_at: dt.datetime


class ResellerIssued(ResellerRead):
    secret: str = Field(description="Shown this once: the shop keeps it sealed and never shows it again")
    previous_secret_expires_at: dt.datetime | None = None


class SecretRotate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    overlap_seconds: Annotated[int, Field(ge=0, le=30 * 86_400)] = 86_400


class PriceSet(BaseModel):
    model_config = ConfigDict(extra="forbid")
    price_cents: Annotated[int, Field(ge=1, le=10_000_000_000)]


class PriceRead(BaseModel):
    sku_code: str
    list_price_cents: int
    price_cents: int | None = Field(description="The reseller's own price; null: it pays the list price")


class TopUp(BaseModel):
    model_config = ConfigDict(extra="forbid")
    amount_cents: Annotated[int, Field(ge=1, le=10_000_000_000)]
    note: Annotated[str, StringConstraints(max_length=500), AfterValidator(reject_control_chars)] = ""


class BalanceRead(BaseModel):
    account_code: str
    balance_cents: int
    credit_limit_cents: int
    currency: str
    created: bool = True
