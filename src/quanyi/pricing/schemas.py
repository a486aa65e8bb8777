"""Request/response shapes of the price quote (the checkout preview)."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from quanyi.orders.schemas import CouponCodeText
from quanyi.schema_types import DbId

__all__ = ["QuoteRequest", "CouponLine", "PriceBreakdownRead"]


class QuoteRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    sku_id: DbId
    quantity: Annotated[int, Field(ge=1, le=1000)] = 1
    points: Annotated[int, Field(ge=0, le=1_000_000_000)] = Field(default=0, description="Points to spend (members)")
    coupon_codes: Annotated[list[CouponCodeText], Field(max_length=3)] = Field(default_factory=list)
    member_coupon_ids: Annotated[list[DbId], Field(max_length=3)] = Field(default_factory=list)


class CouponLine(BaseModel):
    coupon_id: int
    name: str
    kind: str
    code: str | None = None
    amount_cents: int


class PriceBreakdownRead(BaseModel):
    """Every step of the price in integer cents: list_total − member − coupons − points = payable."""

    currency: str
    quantity: int
    price_source: str = Field(description="list, or account (an account customer's own price list)")
    unit_price_cents: int
    list_total_cents: int
    member_unit_price_cents: int
    member_label: str | None = None
    member_discount_cents: int
    subtotal_cents: int = Field(description="After the member price, before coupons and points")
    coupons: list[CouponLine]
    coupon_discount_cents: int
    points_used: int
    points_discount_cents: int
    payable_cents: int
    payable_display: str
    notes: list[str] = Field(description="Why a requested coupon or points did not apply (stable codes)")
