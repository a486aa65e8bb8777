"""Request/response shapes of the coupon API (admin and buyers)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal, Self

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints, model_validator

from quanyi.schema_types import Cents, DbId, reject_control_chars

__all__ = ["CouponCode", "CouponCreate", "CouponRead", "CouponTargetIn", "IssueRequest", "IssueResult",
           "CodeBatchCreate", "CodeBatchRead", "ClaimableCoupon", "MemberCouponRead", "CouponUpdate",
           "LevelGiftsUpdate", "LevelGiftsRead"]

# A code as a buyer types it: letters and digits, spaces and dashes are ignored (normalized by the service).
CouponCode = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=40,
                                              pattern=r"^[A-Za-z0-9 \-]+$")]
MerchantCode = Annotated[str, StringConstraints(min_length=1, max_length=48, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")]
PositiveCents = Annotated[int, Field(ge=1, le=10_000_000_000)]


class CouponTargetIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: Literal["category", "product", "sku"]
    id: DbId


class CouponCreate(BaseModel):
    """A coupon. Kinds: amount_off (满减: amount_off_cents once the line reaches threshold_cents), percent_off
    (percent_off_bps off, at most max_discount_cents), fixed_price (each unit of the SKUs in scope costs
    fixed_price_cents). Distribution: code (a public code), claim (claim centre), issued (operator or sign-up gift),
    codes (batches of single-use codes)."""

    model_config = ConfigDict(extra="forbid")
    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100),
                    AfterValidator(reject_control_chars)]
    description: Annotated[str, StringConstraints(max_length=500), AfterValidator(reject_control_chars)] = ""
    kind: Literal["amount_off", "percent_off", "fixed_price"]
    amount_off_cents: PositiveCents | None = None
    percent_off_bps: Annotated[int, Field(ge=1, le=9999)] | None = Field(
        default=None, description="Basis points off: 1500 = 15 % off (八五折)")
    max_discount_cents: PositiveCents | None = Field(default=None, description="Cap of a percent_off coupon")
    fixed_price_cents: PositiveCents | None = None
    threshold_cents: Cents = Field(default=0, description="The line must cost at least this (门槛)")
    currency: Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")] = "CNY"
    starts_at: AwareDatetime
    ends_at: AwareDatetime
    total_quantity: Annotated[int, Field(ge=0, le=100_000_000)] | None = Field(
        default=None, description="Uses (code), coupons handed out (claim, issued) or codes made (codes); none: no "
                                  "limit")
    per_member_limit: Annotated[int, Field(ge=1, le=1000)] | None = None
    new_members_only: bool = False
    stackable: bool = Field(default=False, description="May be combined with other stackable coupons on one order")
    distribution: Literal["code", "claim", "issued", "codes"]
    code: CouponCode | None = Field(default=None, description="The public code (distribution code only)")
    signup_gift: bool = Field(default=False, description="Issued to every new member at sign-up (issued only)")
    targets: Annotated[list[CouponTargetIn], Field(max_length=200)] = Field(
        default_factory=list, description="Categories / products / SKUs it applies to; empty: all of its owner's goods")
    merchant_code: MerchantCode | None = Field(
        default=None, description="Platform staff only: the merchant who owns it (default: the platform)")

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        amounts = {"amount_off": self.amount_off_cents, "percent_off": self.percent_off_bps,
                   "fixed_price": self.fixed_price_cents}
        if amounts[self.kind] is None:
            needed = {"amount_off": "amount_off_cents", "percent_off": "percent_off_bps",
                      "fixed_price": "fixed_price_cents"}[self.kind]
            raise ValueError(f"a {self.kind} coupon needs {needed}")
        if any(v is not None for k, v in amounts.items() if k != self.kind):
            raise ValueError("give only the amount of the coupon's own kind")
        if self.max_discount_cents is not None and self.kind != "percent_off":
            raise ValueError("max_discount_cents caps percent_off coupons only")
        if self.ends_at <= self.starts_at:
            raise ValueError("ends_at must be after starts_at")
        if (self.distribution == "code") != (self.code is not None):
            raise ValueError("a code coupon needs its code, and only it has one")
        if self.signup_gift and self.distribution != "issued":
            raise ValueError("only an issued coupon can be a sign-up gift")
        return self

    def fields(self) -> dict[str, object]:
        return self.model_dump(exclude={"targets", "merchant_code"})


class CouponUpdate(BaseModel):
    """What may change once a coupon exists (coupons_service.EDITABLE); only the fields given change. What it gives,
    its scope and how it is handed out stay as members took it."""

    model_config = ConfigDict(extra="forbid")
    active: bool | None = Field(default=None, description="false: paused (no claims or uses); true: resumed")
    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100),
                    AfterValidator(reject_control_chars)] | None = None
    description: Annotated[str, StringConstraints(max_length=500), AfterValidator(reject_control_chars)] | None = None
    starts_at: AwareDatetime | None = None
    ends_at: AwareDatetime | None = None
    total_quantity: Annotated[int, Field(ge=0, le=100_000_000)] | None = Field(
        default=None, description="null: no limit; never below what is already taken")
    per_member_limit: Annotated[int, Field(ge=1, le=1000)] | None = Field(default=None, description="null: no limit")
    new_members_only: bool | None = None
    stackable: bool | None = None
    signup_gift: bool | None = None

    @model_validator(mode="after")
    def _not_null(self) -> Self:
        nullable = {"total_quantity", "per_member_limit"}
        for name in self.model_fields_set - nullable:
            if getattr(self, name) is None:
                raise ValueError(f"{name} cannot be null")
        if not self.model_fields_set:
            raise ValueError("give at least one field to change")
        return self

    def changes(self) -> dict[str, object]:
        return self.model_dump(exclude_unset=True)


class CouponRead(BaseModel):
    id: int
    merchant_id: int
    name: str
    description: str
    kind: str
    amount_off_cents: int | None
    percent_off_bps: int | None
    max_discount_cents: int | None
    fixed_price_cents: int | None
    threshold_cents: int
    currency: str
    starts_at: dt.datetime
    ends_at: dt.datetime
    total_quantity: int | None
    taken_count: int
    per_member_limit: int | None
    new_members_only: bool
    stackable: bool
    distribution: str
    code: str | None
    signup_gift: bool
    active: bool
    targets: list[CouponTargetIn] = []
    usage: dict[str, int] = Field(default_factory=dict, description="Orders by status: reserved, used, released, "
                                                                     "returned")


class IssueRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    member_ids: Annotated[list[DbId], Field(min_length=1, max_length=1000)]


class IssueResult(BaseModel):
    issued: int
    refused: dict[int, str] = Field(description="member id -> why not (coupon_limit_reached, coupon_sold_out, "
                                                "new_members_only)")


class CodeBatchCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    count: Annotated[int, Field(ge=1, le=10_000)]
    note: Annotated[str, StringConstraints(max_length=200), AfterValidator(reject_control_chars)] = ""


class CodeBatchRead(BaseModel):
    id: int
    coupon_id: int
    size: int
    note: str
    created_at: dt.datetime
    export_url: str


class ClaimableCoupon(BaseModel):
    id: int
    name: str
    description: str
    kind: str
    summary: str
    ends_at: dt.datetime
    left: int | None = Field(description="How many are left to claim (none: no limit)")
    held: int = Field(description="How many of it the signed-in member holds")


class MemberCouponRead(BaseModel):
    id: int = Field(description="Give it as member_coupon_ids at checkout")
    coupon_id: int
    name: str
    kind: str
    summary: str
    status: str
    ends_at: dt.datetime



class LevelGiftsUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    coupon_ids: Annotated[list[DbId], Field(max_length=20)] = Field(
        description="Issued coupons given to a member reaching the level, once per member and level; [] gives none")


class LevelGiftCoupon(BaseModel):
    id: int
    name: str
    active: bool
    ends_at: dt.datetime


class LevelGiftsRead(BaseModel):
    level_code: str
    level_name: str
    min_paid_cents: int
    coupons: list[LevelGiftCoupon]
