"""Loyalty (会员积分与等级): points and membership levels. The public surface other features call:

- the price calculation's hooks (`pricing/hooks.py`): `member_price`, `points_quote`, `spend_points`,
  `points_take` (the spend inside the order's statement), `points_trip_take` (SQLite: in the order's trip),
  `return_points`;
- the ledger's delivery and refund postings: `orders_delivered` (earn points, cumulative paid amount, level
  upgrade) and `refunds_changed` (claw points back, or give them back when a refund was refused);
- the account page and the API: `summary`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from quanyi import sqlite_trip
from quanyi.catalog.models import Sku
from quanyi.catalog.sku_row import SkuRow
from quanyi.db import utcnow
from quanyi.loyalty import levels, points, spending
from quanyi.loyalty.models import MemberLevel, MemberLoyalty
from quanyi.orders.models import Order
from quanyi.orders.one_statement import Take

__all__ = ["member_price", "points_quote", "spend_points", "points_take", "points_trip_take", "return_points",
           "orders_delivered", "refunds_changed", "Summary", "summary", "PointsOffer", "points_offer",
           "PointsInsufficient"]

PointsInsufficient = points.PointsInsufficient


async def member_price(*, session: AsyncSession, member_id: int, sku: Sku | SkuRow, unit_price_cents: int,
                       now: dt.datetime | None = None) -> tuple[int, str] | None:
    return await levels.member_unit_price(session=session, member_id=member_id, sku=sku,
                                          unit_price_cents=unit_price_cents, now=now or utcnow())


async def points_quote(*, session: AsyncSession, member_id: int, points_wanted: int, remaining_cents: int,
                       max_discount_cents: int, now: dt.datetime,
                       sku_id: int | None = None) -> spending.PointsQuoteResult:
    return await spending.quote(session=session, member_id=member_id, points=points_wanted,
                              remaining_cents=remaining_cents, max_discount_cents=max_discount_cents, now=now,
                              sku_id=sku_id)


async def spend_points(*, session: AsyncSession, member_id: int, order_id: int, points_used: int,
                       now: dt.datetime) -> None:
    await spending.spend(session=session, member_id=member_id, order_id=order_id, points=points_used, now=now)


async def points_take(*, session: AsyncSession, member_id: int, points: int, now: dt.datetime) -> Take | None:
    return await spending.take_with_order(session=session, member_id=member_id, points=points, now=now)


async def points_trip_take(*, session: AsyncSession, member_id: int, points: int, now: dt.datetime,
                           at: int) -> sqlite_trip.Take | None:
    return await spending.trip_take_with_order(session=session, member_id=member_id, points=points, now=now, at=at)


async def return_points(*, session: AsyncSession, order_id: int, reason: str, now: dt.datetime) -> None:
    await points.return_for_order(session=session, order_id=order_id, reason=reason, now=now)


async def orders_delivered(*, session: AsyncSession, orders: Sequence[Order], now: dt.datetime | None = None) -> None:
    """In the transaction that posts the deliveries: members' orders earn points and count toward levels."""
    await points.earn_for_delivered(session=session, orders=orders, now=now)


async def refunds_changed(*, session: AsyncSession, order: Order, now: dt.datetime | None = None) -> None:
    """In the transaction of a refund request (or of its refusal): the order's points follow the refunds."""
    await points.clawback_for_refunds(session=session, order=order, now=now)


@dataclass(frozen=True, slots=True)
class Summary:
    points_balance: int
    point_value_cents: int
    expiring_points: int  # of the balance, the points that expire first
    expiring_at: dt.datetime | None
    paid_total_cents: int
    level: MemberLevel | None
    next_level: MemberLevel | None
    to_next_cents: int  # still to pay to reach the next level


async def summary(*, session: AsyncSession, member_id: int, now: dt.datetime | None = None) -> Summary:
    """The member's points and level, for the account page and `GET /api/members/me/loyalty`."""
    from quanyi.loyalty.models import PointsLot

    now = now or utcnow()
    account = await session.scalar(select(MemberLoyalty).where(MemberLoyalty.member_id == member_id))
    program = await points.get_program(session)
    all_levels = await levels.list_levels(session)
    paid = account.paid_total_cents if account else 0
    balance = await points.available_points(session, member_id, now) if account else 0
    if account is not None and account.points_balance < 0:
        balance = account.points_balance  # a clawback debt is shown as it is
    first = await session.scalar(select(PointsLot).where(
        PointsLot.member_id == member_id, PointsLot.remaining > 0, PointsLot.expires_at > now)
        .order_by(PointsLot.expires_at, PointsLot.id).limit(1))
    expiring = 0
    if first is not None:
        same = (await session.scalars(select(PointsLot.remaining).where(
            PointsLot.member_id == member_id, PointsLot.remaining > 0,
            PointsLot.expires_at == first.expires_at))).all()
        expiring = int(sum(same))
    level = await levels.level_of(session, account) if account else None
    upcoming = levels.next_level(max(paid, level.min_paid_cents if level else 0), all_levels)
    return Summary(points_balance=balance, point_value_cents=program.point_value_cents, expiring_points=expiring,
                   expiring_at=first.expires_at if first else None, paid_total_cents=paid, level=level,
                   next_level=upcoming, to_next_cents=max(0, upcoming.min_paid_cents - paid) if upcoming else 0)


@dataclass(frozen=True, slots=True)
class PointsOffer:
    """What the checkout form offers a member: points they can spend, what one is worth, the maximum share."""

    available: int
    point_value_cents: int
    max_share_bps: int


async def points_offer(*, session: AsyncSession, member_id: int, now: dt.datetime | None = None) -> PointsOffer | None:
    """None when the member has no points to spend (or points are off): the form shows no points field."""
    program = await points.get_program(session)
    if not program.points_enabled or not program.max_points_share_bps:
        return None
    available = await points.available_points(session, member_id, now or utcnow())
    return PointsOffer(available, program.point_value_cents, program.max_points_share_bps) if available > 0 else None
