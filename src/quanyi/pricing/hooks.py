"""Extension hooks of the price calculation: member prices and points (filled in by `quanyi.loyalty`).

Each hook is one plain async function with a fixed signature; `pricing.service` calls them in order and caps
what they return (a hook can never make a price negative or below the payable floor). Without loyalty the
member price is the unit price and points spend nothing.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from quanyi import sqlite_trip
from quanyi.catalog.models import Sku
from quanyi.catalog.sku_row import SkuRow
from quanyi.orders.one_statement import Take

__all__ = ["MemberPrice", "PointsQuote", "member_price", "points_quote", "spend_points", "points_take",
           "points_trip_take", "return_points"]


@dataclass(frozen=True, slots=True)
class MemberPrice:
    """A member's unit price (会员价) and what gave it (e.g. the level name, shown on the breakdown)."""

    unit_price_cents: int
    label: str | None = None


@dataclass(frozen=True, slots=True)
class PointsQuote:
    """Points (积分) a member may spend on this order and the cents they take off."""

    points: int
    discount_cents: int
    note: str | None = None  # why fewer points than requested were taken (balance, maximum share)


async def member_price(*, session: AsyncSession, member_id: int, sku: Sku | SkuRow, unit_price_cents: int,
                       now: dt.datetime) -> MemberPrice | None:
    """HOOK(loyalty): the member's price of one unit of `sku` given the price source's `unit_price_cents`
    (per-level discount via `arithmetic.percent_of`, or a per-SKU member price); None = no member price."""
    from quanyi.loyalty import service as loyalty_service  # loyalty builds on pricing: imported when called

    found = await loyalty_service.member_price(session=session, member_id=member_id, sku=sku,
                                               unit_price_cents=unit_price_cents, now=now)
    return MemberPrice(unit_price_cents=found[0], label=found[1]) if found is not None else None


async def points_quote(*, session: AsyncSession, member_id: int, points: int, remaining_cents: int,
                       max_discount_cents: int, currency: str, now: dt.datetime,
                       sku_id: int | None = None) -> PointsQuote:
    """HOOK(loyalty): how many of the requested `points` may be spent on an order of which `remaining_cents` are
    left after coupons; the discount must not exceed `max_discount_cents` (the payable floor is kept by it)."""
    from quanyi.loyalty import service as loyalty_service

    quote = await loyalty_service.points_quote(session=session, member_id=member_id, points_wanted=points,
                                               remaining_cents=remaining_cents,
                                               max_discount_cents=max_discount_cents, now=now, sku_id=sku_id)
    return PointsQuote(points=quote.points, discount_cents=quote.discount_cents, note=quote.note)


async def spend_points(*, session: AsyncSession, member_id: int, order_id: int, points: int,
                       now: dt.datetime) -> None:
    """HOOK(loyalty): take `points` off the member's balance for the order just placed (same transaction;
    raise a DomainError if the balance no longer covers them: the order is then not placed)."""
    from quanyi.loyalty import service as loyalty_service

    await loyalty_service.spend_points(session=session, member_id=member_id, order_id=order_id, points_used=points,
                                       now=now)


async def points_take(*, session: AsyncSession, member_id: int, points: int, now: dt.datetime) -> Take | None:
    """HOOK(loyalty): `spend_points` as a part of the new order's own statement (orders.one_statement: the order's
    id is the statement's), or None when it must be `spend_points` once the order is in."""
    from quanyi.loyalty import service as loyalty_service

    return await loyalty_service.points_take(session=session, member_id=member_id, points=points, now=now)


async def points_trip_take(*, session: AsyncSession, member_id: int, points: int, now: dt.datetime,
                           at: int) -> sqlite_trip.Take | None:
    """HOOK(loyalty): `spend_points` as steps of the new order's trip on SQLite (quanyi.sqlite_trip: the order's id
    is step 0's, the take's first step is step `at`), or None when it must be `spend_points` once the order is in."""
    from quanyi.loyalty import service as loyalty_service

    return await loyalty_service.points_trip_take(session=session, member_id=member_id, points=points, now=now,
                                                  at=at)


async def return_points(*, session: AsyncSession, order_id: int, reason: str, now: dt.datetime) -> None:
    """HOOK(loyalty): give back the points an order spent (cancelled, reservation expired, refunded before
    delivery); must be idempotent (called once per release, but a release may repeat after a retry)."""
    from quanyi.loyalty import service as loyalty_service

    await loyalty_service.return_points(session=session, order_id=order_id, reason=reason, now=now)
