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
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from quanyi import sqlite_trip
from quanyi.catalog.models import Sku
from quanyi.catalog.sku_row import SkuRow
from quanyi.coupons import redemption as coupon_redemption
from quanyi.coupons.rules import LineFacts
from quanyi.db import utcnow
from quanyi.errors import InvalidInput
from quanyi.orders.models import Order
from quanyi.orders.one_statement import Take
from quanyi.pricing import hooks
from quanyi.pricing.arithmetic import (
    CouponDiscount,
    PriceBreakdown,
    build_breakdown,
    capped_discount,
    payable_floor,
)

__all__ = ["PriceSource", "LIST_PRICE", "PricingRefused", "price_order", "breakdown_columns", "breakdown_of_order",
           "TakenWithOrder", "NOTHING_WITH_ORDER", "takes_with_order", "trip_takes_with_order", "commit_order_pricing",
           "release_order_pricing", "confirm_order_pricing"]

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
    *, session: AsyncSession, sku: Sku | SkuRow, quantity: int, member_id: int | None = None, points: int = 0,
    coupon_codes: Sequence[str] = (), member_coupon_ids: Sequence[int] = (),
    source: PriceSource = LIST_PRICE, now: dt.datetime | None = None, surcharge_cents: int = 0,
) -> PriceBreakdown:
    """What `quantity` of `sku` costs this buyer, step by step (reads only; `commit_order_pricing` takes the
    coupons and points when the order is placed). `member_id`: the signed-in buyer (None for a guest);
    `coupon_codes`: codes typed at checkout; `member_coupon_ids`: the member's own coupons chosen;
    `points`: points the buyer asks to spend. A coupon asked for that does not apply raises (coupons.service).
    `surcharge_cents`: a 自选卡密 pick's surcharge per unit."""
    now = now or utcnow()
    if points < 0:
        raise PricingRefused("points must not be negative", field="points")
    unit = sku.price_cents if source.unit_price_cents is None else source.unit_price_cents
    # 自选卡密: the surcharge (加价) for a key the buyer picked is part of the unit price, whatever the source.
    unit += surcharge_cents
    if unit < 0 or surcharge_cents < 0:
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

    # 2. coupons (优惠券): retail only
    coupons: tuple[CouponDiscount, ...] = ()
    if coupon_codes or member_coupon_ids:
        if not retail:
            raise PricingRefused("coupons are not for account customers' orders", field="coupon_code")
        line = LineFacts(sku_id=sku.id, product_id=sku.product_id, category_id=sku.product.category_id,
                         merchant_id=sku.merchant_id, currency=sku.currency, unit_price_cents=member_unit,
                         quantity=quantity)
        coupons = await coupon_redemption.quote_coupons(session=session, line=line, member_id=member_id,
                                                        codes=coupon_codes, member_coupon_ids=member_coupon_ids,
                                                        floor_cents=floor, now=now)
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
                                             currency=sku.currency, now=now, sku_id=sku.id)
            points_discount = capped_discount(quote.discount_cents, remaining, floor)
            points_used = quote.points if points_discount else 0
            if quote.note:
                notes.append(quote.note)

    return build_breakdown(currency=sku.currency, quantity=quantity, price_source=source.name,
                           unit_price_cents=unit, member_unit_price_cents=member_unit, member_label=member_label,
                           coupons=coupons, points_used=points_used, points_discount_cents=points_discount,
                           notes=tuple(notes))


def breakdown_columns(breakdown: PriceBreakdown) -> dict[str, int | str]:
    """The breakdown as the order's columns that hold it, by name (total_cents = the payable), for a new order."""
    return {"price_source": breakdown.price_source, "unit_price_cents": breakdown.unit_price_cents,
            "quantity": breakdown.quantity, "member_discount_cents": breakdown.member_discount_cents,
            "coupon_discount_cents": breakdown.coupon_discount_cents, "points_used": breakdown.points_used,
            "points_discount_cents": breakdown.points_discount_cents, "total_cents": breakdown.payable_cents,
            "currency": breakdown.currency}


def breakdown_of_order(order: Order) -> dict[str, int | str]:
    """The stored steps of an order's price (for order pages, the API and the console)."""
    list_total = order.unit_price_cents * order.quantity
    return {"price_source": order.price_source, "unit_price_cents": order.unit_price_cents,
            "list_total_cents": list_total, "member_discount_cents": order.member_discount_cents,
            "coupon_discount_cents": order.coupon_discount_cents, "points_used": order.points_used,
            "points_discount_cents": order.points_discount_cents, "payable_cents": order.total_cents,
            "currency": order.currency}


@dataclass(frozen=True, slots=True)
class TakenWithOrder:
    """What of `commit_order_pricing` goes in the new order's own statement (orders.one_statement's takes) or, on
    SQLite, in its trip (quanyi.sqlite_trip's takes)."""

    takes: tuple[Take, ...] | tuple[sqlite_trip.Take, ...] = ()
    coupons: bool = False  # all the breakdown's coupons
    points: bool = False


NOTHING_WITH_ORDER = TakenWithOrder()


async def takes_with_order(*, session: AsyncSession, breakdown: PriceBreakdown, member_id: int | None,
                           now: dt.datetime) -> TakenWithOrder:
    """The order about to be placed at `breakdown` in one statement (PostgreSQL): its coupons and points taken in
    that statement where they can be, in the order `commit_order_pricing` takes them (coupons, then points)."""
    coupons: list[Take] = []
    if breakdown.coupons:
        found = coupon_redemption.takes_with_order(session=session, discounts=breakdown.coupons, member_id=member_id,
                                                   now=now)
        if found is None:  # the coupons once the order is in, and the points after them (the same lock order)
            return NOTHING_WITH_ORDER
        coupons = found
    points = None
    if breakdown.points_used and member_id is not None:
        points = await hooks.points_take(session=session, member_id=member_id, points=breakdown.points_used, now=now)
    return TakenWithOrder(takes=(*coupons, *(() if points is None else (points,))), coupons=bool(coupons),
                          points=points is not None)


async def trip_takes_with_order(*, session: AsyncSession, breakdown: PriceBreakdown, member_id: int | None,
                                now: dt.datetime, at: int) -> TakenWithOrder:
    """`takes_with_order` on SQLite: the order about to be placed at `breakdown` in one trip (orders.checkout), its
    coupons and points taken in that trip where they can be, in the order `commit_order_pricing` takes them
    (coupons, then points), their first step being step number `at` of the trip."""
    coupons: list[sqlite_trip.Take] = []
    if breakdown.coupons:
        found = coupon_redemption.trip_takes_with_order(session=session, discounts=breakdown.coupons,
                                                        member_id=member_id, now=now)
        if found is None:  # the coupons once the order is in, and the points after them (the same order)
            return NOTHING_WITH_ORDER
        coupons = found
        at += sum(len(take.steps) for take in coupons)
    points = None
    if breakdown.points_used and member_id is not None:
        points = await hooks.points_trip_take(session=session, member_id=member_id, points=breakdown.points_used,
                                              now=now, at=at)
    return TakenWithOrder(takes=(*coupons, *(() if points is None else (points,))), coupons=bool(coupons),
                          points=points is not None)


async def commit_order_pricing(*, session: AsyncSession, order: Order, breakdown: PriceBreakdown,
                               member_id: int | None, now: dt.datetime,
                               taken: TakenWithOrder = NOTHING_WITH_ORDER) -> None:
    """The order was just placed at `breakdown`: take its coupons and points in the same transaction (`taken`:
    what its statement took already, answered here). Raises a DomainError if they are gone since the quote (the
    order is then not placed)."""
    for take in taken.takes:
        await take.after(session, order.id, take)
    if breakdown.coupons and not taken.coupons:
        await coupon_redemption.reserve_coupons(session=session, order_id=order.id, discounts=breakdown.coupons,
                                                member_id=member_id, now=now)
    if breakdown.points_used and member_id is not None and not taken.points:
        await hooks.spend_points(session=session, member_id=member_id, order_id=order.id,
                                 points=breakdown.points_used, now=now)


async def release_order_pricing(*, session: AsyncSession, order: Order, reason: str, now: dt.datetime,
                                refunded: bool = False) -> None:
    """The order will never be paid (cancelled, expired), or all its money went back before delivery (`refunded`):
    give back its coupons and points. The caller holds the order row lock; a repeat gives back nothing more."""
    if order.coupon_discount_cents:
        await coupon_redemption.release_coupons(session=session, order_id=order.id, returned=refunded, now=now)
    if order.points_used:
        await hooks.return_points(session=session, order_id=order.id, reason=reason, now=now)


async def confirm_order_pricing(*, session: AsyncSession, order: Order, late: bool, now: dt.datetime) -> bool:
    """The order was paid: its coupons are used. A `late` payment (the order had been cancelled, so its coupons
    went back) takes them again; False if one is gone meanwhile: the order cannot keep its price and must be
    refunded. HOOK(loyalty): points a late payment spent went back at cancellation; take them again here too."""
    if not order.coupon_discount_cents:
        return True
    if late:
        return await coupon_redemption.retake_coupons(session=session, order_id=order.id, now=now)
    await coupon_redemption.confirm_coupons(session=session, order_id=order.id, now=now)
    return True
