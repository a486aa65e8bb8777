"""What a coupon takes off an order line, and whether it applies at all: pure, no database.

Order of several (stackable) coupons on one order: fixed price first, then amounts off (满减), then percentages
off what is left; each is capped so the payable stays at or above the floor (pricing/arithmetic.py). The
threshold (门槛) of every coupon is checked against the line after the member price, before any coupon.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from quanyi.coupons.models import Coupon, CouponKind
from quanyi.pricing.arithmetic import percent_of

__all__ = ["LineFacts", "refusal", "wanted_discount", "STACK_ORDER", "MAX_COUPONS_PER_ORDER"]

MAX_COUPONS_PER_ORDER = 3
STACK_ORDER = {CouponKind.FIXED_PRICE.value: 0, CouponKind.AMOUNT_OFF.value: 1, CouponKind.PERCENT_OFF.value: 2}


@dataclass(frozen=True, slots=True)
class LineFacts:
    """The order line a coupon is tried on (unit price after the member price)."""

    sku_id: int
    product_id: int
    category_id: int
    merchant_id: int
    currency: str
    unit_price_cents: int
    quantity: int

    @property
    def subtotal_cents(self) -> int:
        return self.unit_price_cents * self.quantity


def refusal(coupon: Coupon, line: LineFacts, now: dt.datetime, *, in_scope: bool) -> str | None:
    """Why `coupon` cannot be used on `line` now (a stable reason code), or None if it can. `in_scope`: the coupon
    applies to all, or one of its targets (category, product, SKU) names the line's."""
    if not coupon.active:
        return "inactive"
    if now < coupon.starts_at:
        return "not_started"
    if now >= coupon.ends_at:
        return "expired"
    if coupon.merchant_id != line.merchant_id:
        return "other_merchant"  # a merchant's coupon pays for that merchant's goods only (the platform's too)
    if coupon.currency != line.currency:
        return "other_currency"
    if not in_scope:
        return "out_of_scope"
    if line.subtotal_cents < coupon.threshold_cents:
        return "threshold_not_met"
    if wanted_discount(coupon, line, line.subtotal_cents) <= 0:
        return "no_discount"  # e.g. a fixed price above what the line already costs
    return None


def wanted_discount(coupon: Coupon, line: LineFacts, remaining_cents: int) -> int:
    """What the coupon would take off (before the floor cap): `remaining_cents` is what is left of the line
    after the coupons before it."""
    if coupon.kind == CouponKind.AMOUNT_OFF.value:
        return int(coupon.amount_off_cents or 0)
    if coupon.kind == CouponKind.PERCENT_OFF.value:
        discount = percent_of(remaining_cents, int(coupon.percent_off_bps or 0))
        return min(discount, coupon.max_discount_cents) if coupon.max_discount_cents else discount
    if coupon.kind == CouponKind.FIXED_PRICE.value:
        return max(0, (line.unit_price_cents - int(coupon.fixed_price_cents or 0)) * line.quantity)
    raise ValueError(f"unknown coupon kind {coupon.kind!r}")
