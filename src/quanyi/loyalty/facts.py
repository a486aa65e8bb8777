"""What a price calculation needs from loyalty about one member and one SKU, read in one statement: the member's
level (its name, discount and own price of the SKU), points balance and points due to expire, and the points
rules. The member price and the points steps of `pricing.price_order` and the points taken at checkout
(`spending.spend`) use the same read: a checkout with a level price and points reads loyalty once before it
locks the member's points.

Kept on the session for the calculation it was read for (same member, SKU and `now`): a later calculation
(another request, another moment) reads again.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Integer, and_, bindparam, func, literal, select
from sqlalchemy.ext.asyncio import AsyncSession

from quanyi.loyalty.models import LevelPrice, LoyaltyProgram, MemberLevel, MemberLoyalty, PointsLot

__all__ = ["LoyaltyFacts", "DEFAULT_PROGRAM", "ProgramRules", "loyalty_facts", "facts_read_for", "facts_parts",
           "remember_facts"]

_KEY = "quanyi.loyalty.facts"


@dataclass(frozen=True, slots=True)
class ProgramRules:
    """The points rules a checkout uses (the defaults of `points.get_program` until an operator sets them)."""

    points_enabled: bool
    point_value_cents: int
    max_points_share_bps: int


DEFAULT_PROGRAM = ProgramRules(points_enabled=True, point_value_cents=1, max_points_share_bps=5000)


@dataclass(frozen=True, slots=True)
class LoyaltyFacts:
    member_id: int
    sku_id: int | None
    now: dt.datetime
    level_id: int | None
    level_name: str | None
    discount_bps: int
    own_price_cents: int | None  # the level's own price of the SKU (会员价), if it has one
    points_balance: int
    points_due: int  # of the balance, points in lots due to expire by `now` (they count as gone)
    program: ProgramRules

    @property
    def available_points(self) -> int:
        return max(0, self.points_balance - self.points_due)


def facts_parts(member_id: Any, sku_id: Any, now: Any) -> tuple[tuple[Any, ...], Callable[[Any], Any]]:
    """The facts' columns (in `facts_from_row`'s order) and the outer joins that give them onto a FROM clause, for
    `member_id`, `sku_id` and `now` (binds, or columns of a statement the facts are part of: a member's checkout
    reads them with its other facts, orders.member_checkout)."""
    due = (select(func.coalesce(func.sum(PointsLot.remaining), 0))
           .where(PointsLot.member_id == member_id, PointsLot.remaining > 0, PointsLot.expires_at <= now)
           .scalar_subquery())
    columns = (MemberLoyalty.level_id, MemberLevel.name, MemberLevel.discount_bps, LevelPrice.price_cents,
               MemberLoyalty.points_balance, due, LoyaltyProgram.id, LoyaltyProgram.points_enabled,
               LoyaltyProgram.point_value_cents, LoyaltyProgram.max_points_share_bps)

    def joined(source: Any) -> Any:
        return (source.outerjoin(MemberLoyalty, MemberLoyalty.member_id == member_id)
                .outerjoin(MemberLevel, MemberLevel.id == MemberLoyalty.level_id)
                .outerjoin(LevelPrice, and_(LevelPrice.level_id == MemberLoyalty.level_id, LevelPrice.sku_id == sku_id))
                .outerjoin(LoyaltyProgram, LoyaltyProgram.id == 1))

    return columns, joined


def _facts_statement() -> Any:
    """The facts' one statement, built once (member, SKU and `now` bound at each call)."""
    one = select(literal(1).label("one")).subquery("one")
    columns, joined = facts_parts(bindparam("member_id", type_=Integer()), bindparam("sku_id", type_=Integer()),
                                  bindparam("now", type_=PointsLot.expires_at.type))
    return select(*columns).select_from(joined(one))


_FACTS = _facts_statement()


async def loyalty_facts(*, session: AsyncSession, member_id: int, sku_id: int | None,
                        now: dt.datetime) -> LoyaltyFacts:
    """The member's loyalty facts for `sku_id` at `now` (one statement; the same call again in this calculation
    reads nothing). `sku_id` None: no SKU's own price wanted (points only), whatever was read for this
    calculation does."""
    known = facts_read_for(session, member_id, now)
    if known is not None and (sku_id is None or known.sku_id == sku_id):
        return known
    row = (await session.execute(_FACTS, {"member_id": member_id, "sku_id": sku_id or 0, "now": now})).one()
    return remember_facts(session, member_id, sku_id, now, tuple(row))


def remember_facts(session: AsyncSession, member_id: int, sku_id: int | None, now: dt.datetime,
                   row: Sequence[Any]) -> LoyaltyFacts:
    """The facts of `facts_parts`' columns as read for this calculation (`row`), kept on the session for it."""
    level_id, name, discount, own, balance, due_points, program_id, enabled, value, share = row
    program = (DEFAULT_PROGRAM if program_id is None
               else ProgramRules(bool(enabled), int(value), int(share)))
    facts = LoyaltyFacts(member_id=member_id, sku_id=sku_id, now=now,
                         level_id=level_id if name is not None else None, level_name=name,
                         discount_bps=int(discount or 0), own_price_cents=None if own is None else int(own),
                         points_balance=int(balance or 0), points_due=int(due_points or 0), program=program)
    session.info[_KEY] = facts
    return facts


def facts_read_for(session: AsyncSession, member_id: int, now: dt.datetime) -> LoyaltyFacts | None:
    """The facts this session read for `member_id` at exactly `now` (the same calculation), else None."""
    known = session.info.get(_KEY)
    if isinstance(known, LoyaltyFacts) and known.member_id == member_id and known.now == now:
        return known
    return None
