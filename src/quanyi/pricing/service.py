"""The one price calculation: list price → member price → coupons → points → payable.

Used by the storefront preview, the quote API and order placement (`orders.create_order` calls `price_order`
inside its transaction, so what is stored is what the server computed, never what a client sent); payment
charges the order's stored payable (`Order.total_cents`), which a CHECK constraint ties to the stored steps.

Price sources: the unit price comes from the SKU's list price, or from an account customer's own price list
(a reseller's `unit_price_cents`, an enterprise's contract price) passed as `source`. Account customers buy at
their contract price: no member price, coupons or points apply to them (those are retail promotions).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from quanyi.catalog.models import Sku
from quanyi.db import utcnow
from quanyi.errors import InvalidInput
from quanyi.orders.models import Order
from quanyi.pricing import hooks
from quanyi.pricing.arithmetic import (
    CouponDiscount,
    PriceBreakdown,
    build_breakdown,
    capped_discount,
    payable_floor,
)

__all__ = ["PriceSource", "LIST_PRICE", "PricingRefused", "price_order", "store_breakdown", "breakdown_of_order",
           "commit_order_pricing", "release_order_pricing"]

RETAIL_SOURCES = frozenset({"list"})


@dataclass(frozen=True, slots=True)
class PriceSource:
    """Where the unit price comes from: `list` (the SKU's price) or an account customer's price list."""

    name: str
    unit_price_cents: int | None = None  # None: the SKU's list price


LIST_PRICE = PriceSource("list")


class PricingRefused(InvalidInput):
    code = "pricing_refused"


async def price_order(
    *, session: AsyncSession, sku: Sku, quantity: int, member_id: int | None = None, points: int = 0,
    source: PriceSource = LIST_PRICE, now: dt.datetime | None = None,
) -> PriceBreakdown:
    """What `quantity` of `sku` costs this buyer, step by step (reads only; `commit_order_pricing` takes the
    coupons and points when the order is placed). `member_id`: the signed-in buyer (None for a guest);
    `points`: points the buyer asks to spend."""
    now = now or utcnow()
    if points < 0:
        raise PricingRefused("points must not be negative", field="points")
    unit = sku.price_cents if source.unit_price_cents is None else source.unit_price_cents
    if unit < 0:
        raise PricingRefused("a unit price must not be negative")
    retail = source.name in RETAIL_SOURCES
    list_total = unit * quantity
    floor = payable_floor(list_total)
    notes: list[str] = []

    # 1. member price (会员价): never above the unit price, never below the floor share of one unit
    member_unit, member_label = unit, None
    if retail and member_id is not None:
        offered = await hooks.member_price(session=session, member_id=member_id, sku=sku, unit_price_cents=unit,
                                           now=now)
        if offered is not None:
            member_unit = max(min(offered.unit_price_cents, unit), min(unit, 1))
            member_label = offered.label if member_unit < unit else None

    # 2. coupons: added by coupons (see commit_order_pricing)
    coupons: tuple[CouponDiscount, ...] = ()
    remaining = member_unit * quantity - sum(c.amount_cents for c in coupons)

    # 3. points (积分抵现)
    points_used = points_discount = 0
    if points:
        if not retail or member_id is None:
            notes.append("points_need_member")
        else:
            quote = await hooks.points_quote(session=session, member_id=member_id, points=points,
                                             remaining_cents=remaining,
                                             max_discount_cents=capped_discount(remaining, remaining, floor),
                                             currency=sku.currency, now=now)
            points_discount = capped_discount(quote.discount_cents, remaining, floor)
            points_used = quote.points if points_discount else 0
            if quote.note:
                notes.append(quote.note)

    return build_breakdown(currency=sku.currency, quantity=quantity, price_source=source.name,
                           unit_price_cents=unit, member_unit_price_cents=member_unit, member_label=member_label,
                           coupons=coupons, points_used=points_used, points_discount_cents=points_discount,
                           notes=tuple(notes))


def store_breakdown(order: Order, breakdown: PriceBreakdown) -> None:
    """Copy the breakdown onto the order's columns (total_cents = the payable)."""
    order.price_source = breakdown.price_source
    order.unit_price_cents = breakdown.unit_price_cents
    order.quantity = breakdown.quantity
    order.member_discount_cents = breakdown.member_discount_cents
    order.coupon_discount_cents = breakdown.coupon_discount_cents
    order.points_used = breakdown.points_used
    order.points_discount_cents = breakdown.points_discount_cents
    order.total_cents = breakdown.payable_cents
    order.currency = breakdown.currency


def breakdown_of_order(order: Order) -> dict[str, int | str]:
    """The stored steps of an order's price (for order pages, the API and the console)."""
    list_total = order.unit_price_cents * order.quantity
    return {"price_source": order.price_source, "unit_price_cents": order.unit_price_cents,
            "list_total_cents": list_total, "member_discount_cents": order.member_discount_cents,
            "coupon_discount_cents": order.coupon_discount_cents, "points_used": order.points_used,
            "points_discount_cents": order.points_discount_cents, "payable_cents": order.total_cents,
            "currency": order.currency}


async def commit_order_pricing(*, session: AsyncSession, order: Order, breakdown: PriceBreakdown,
                               member_id: int | None, now: dt.datetime) -> None:
    """The order was just placed at `breakdown`: take its points (and coupons) in the same transaction.
    Raises a DomainError if they are gone since the quote (the order is then not placed)."""
    if breakdown.points_used and member_id is not None:
        await hooks.spend_points(session=session, member_id=member_id, order_id=order.id,
                                 points=breakdown.points_used, now=now)


async def release_order_pricing(*, session: AsyncSession, order: Order, reason: str, now: dt.datetime) -> None:
    """The order will never be paid, or its money went back before delivery: give back its points (and coupons).
    The caller holds the order row lock."""
    if order.points_used:
        await hooks.return_points(session=session, order_id=order.id, reason=reason, now=now)

