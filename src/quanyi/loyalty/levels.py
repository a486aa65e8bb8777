"""Membership levels (会员等级): reached by what a member has paid for delivered orders (net of refunds); each
level gives a discount on every SKU or its own per-SKU member price (会员价), and a points multiplier.

Levels only go up on delivery (`upgrade`); `reevaluate` (the yearly re-evaluation, `quanyi levels reevaluate`)
sets every member to the level their paid amount reaches now, up or down. A member moving up gets the level-up gift
coupons (升级礼券) of every level passed, once per member and level (coupons_service.issue_level_gifts), in the same
transaction.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from quanyi.catalog.models import Sku
from quanyi.catalog.sku_row import SkuRow
from quanyi.coupons import service as coupons_service
from quanyi.db import utcnow
from quanyi.errors import Conflict, InvalidInput, NotFound
from quanyi.loyalty.facts import loyalty_facts
from quanyi.loyalty.models import LevelPrice, MemberLevel, MemberLoyalty
from quanyi.pricing.arithmetic import percent_of

__all__ = ["LevelNotFound", "InvalidLevel", "LevelConflict", "list_levels", "set_level", "delete_level",
           "set_level_price", "delete_level_price", "level_prices", "level_of", "level_for", "upgrade",
           "reevaluate", "member_unit_price", "next_level"]

_CODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$")


class LevelNotFound(NotFound):
    code = "level_not_found"


class InvalidLevel(InvalidInput):
    code = "invalid_level"


class LevelConflict(Conflict):
    code = "level_conflict"


async def list_levels(session: AsyncSession) -> Sequence[MemberLevel]:
    """Levels from the lowest threshold up."""
    return (await session.scalars(select(MemberLevel).order_by(MemberLevel.min_paid_cents))).all()


async def _get(session: AsyncSession, code: str) -> MemberLevel:
    level = await session.scalar(select(MemberLevel).where(MemberLevel.code == code.strip().upper()))
    if level is None:
        raise LevelNotFound(f"no level {code!r}")
    return level


async def set_level(*, session: AsyncSession, code: str, name: str, min_paid_cents: int, discount_bps: int = 0,
                    points_multiplier_bps: int = 10_000) -> MemberLevel:
    """Create or change a level. Thresholds are unique (two levels at one amount would be ambiguous)."""
    code = code.strip().upper()
    name = " ".join(name.split())
    if not _CODE.fullmatch(code):
        raise InvalidLevel("a level code is 1-32 letters, digits, '_' or '-'", field="code")
    if not 1 <= len(name) <= 64:
        raise InvalidLevel("a level name of 1-64 characters is required", field="name")
    if not 0 <= min_paid_cents <= 10**12:
        raise InvalidLevel("the threshold is an amount in cents from 0", field="min_paid_cents")
    if not 0 <= discount_bps <= 9999:
        raise InvalidLevel("the discount is 0-9999 basis points", field="discount_bps")
    if not 0 <= points_multiplier_bps <= 100_000:
        raise InvalidLevel("the points multiplier is 0-100000 basis points (10000 = 1x)",
                           field="points_multiplier_bps")
    level = await session.scalar(select(MemberLevel).where(MemberLevel.code == code).with_for_update())
    if level is None:
        level = MemberLevel(code=code, created_at=utcnow())
        session.add(level)
    level.name, level.min_paid_cents = name, min_paid_cents
    level.discount_bps, level.points_multiplier_bps = discount_bps, points_multiplier_bps
    try:
        async with session.begin_nested():
            await session.flush()
    except IntegrityError:
        raise LevelConflict(f"another level already starts at {min_paid_cents} cents",
                            field="min_paid_cents") from None
    return level


async def delete_level(*, session: AsyncSession, code: str) -> None:
    """Remove a level: its members have no level until the next delivery or re-evaluation."""
    level = await _get(session, code)
    for price in (await session.scalars(select(LevelPrice).where(LevelPrice.level_id == level.id))).all():
        await session.delete(price)
    for account in (await session.scalars(select(MemberLoyalty).where(MemberLoyalty.level_id == level.id))).all():
        account.level_id = None
    await session.delete(level)


async def set_level_price(*, session: AsyncSession, code: str, sku_id: int, price_cents: int) -> LevelPrice:
    """A level's own price of one SKU (member price), instead of the level's discount."""
    level = await _get(session, code)
    sku = await session.get(Sku, sku_id)
    if sku is None:
        raise LevelNotFound(f"no SKU with id {sku_id}")
    if not 0 <= price_cents <= sku.price_cents:
        raise InvalidLevel("a member price is from 0 to the SKU's list price", field="price_cents")
    price = await session.scalar(select(LevelPrice).where(LevelPrice.level_id == level.id,
                                                          LevelPrice.sku_id == sku_id).with_for_update())
    if price is None:
        price = LevelPrice(level_id=level.id, sku_id=sku_id, price_cents=price_cents)
        session.add(price)
    price.price_cents = price_cents
    await session.flush()
    return price


async def delete_level_price(*, session: AsyncSession, code: str, sku_id: int) -> None:
    level = await _get(session, code)
    price = await session.scalar(select(LevelPrice).where(LevelPrice.level_id == level.id,
                                                          LevelPrice.sku_id == sku_id))
    if price is None:
        raise LevelNotFound(f"level {level.code} has no own price for SKU {sku_id}")
    await session.delete(price)


async def level_prices(session: AsyncSession, code: str) -> Sequence[LevelPrice]:
    level = await _get(session, code)
    return (await session.scalars(select(LevelPrice).where(LevelPrice.level_id == level.id)
                                  .order_by(LevelPrice.sku_id))).all()


async def level_of(session: AsyncSession, account: MemberLoyalty) -> MemberLevel | None:
    return await session.get(MemberLevel, account.level_id) if account.level_id is not None else None


def level_for(paid_cents: int, levels: Sequence[MemberLevel]) -> MemberLevel | None:
    """The highest level whose threshold the paid amount reaches."""
    reached = [level for level in levels if level.min_paid_cents <= paid_cents]
    return max(reached, key=lambda level: level.min_paid_cents) if reached else None


def next_level(paid_cents: int, levels: Sequence[MemberLevel]) -> MemberLevel | None:
    higher = [level for level in levels if level.min_paid_cents > paid_cents]
    return min(higher, key=lambda level: level.min_paid_cents) if higher else None


async def upgrade(session: AsyncSession, account: MemberLoyalty, now: dt.datetime) -> MemberLevel | None:
    """On delivery: move the member up to the level its paid amount reaches (never down). Returns the new level
    when it changed."""
    levels = await list_levels(session)
    reached = level_for(account.paid_total_cents, levels)
    current = await level_of(session, account)
    if reached is None or (current is not None and current.min_paid_cents >= reached.min_paid_cents):
        return None
    account.level_id, account.level_since = reached.id, now
    await _level_up_gifts(session, account.member_id, current, reached, levels, now)
    return reached


async def _level_up_gifts(session: AsyncSession, member_id: int, was: MemberLevel | None, now_at: MemberLevel,
                          levels: Sequence[MemberLevel], now: dt.datetime) -> None:
    """The gifts of every level above the one the member was at, up to the one reached."""
    floor = was.min_paid_cents if was is not None else -1
    passed = [level.id for level in levels if floor < level.min_paid_cents <= now_at.min_paid_cents]
    await coupons_service.issue_level_gifts(session=session, member_id=member_id, level_ids=passed, now=now)


async def reevaluate(*, session: AsyncSession, now: dt.datetime | None = None) -> int:
    """The yearly re-evaluation: every member to the level its paid amount reaches now (up or down). Returns
    how many members changed level."""
    now = now or utcnow()
    levels = await list_levels(session)
    changed = 0
    for account in (await session.scalars(select(MemberLoyalty).order_by(MemberLoyalty.member_id)
                                          .with_for_update())).all():
        reached = level_for(account.paid_total_cents, levels)
        level_id = reached.id if reached else None
        if level_id != account.level_id:
            was = next((level for level in levels if level.id == account.level_id), None)
            account.level_id, account.level_since = level_id, now
            changed += 1
            if reached is not None and (was is None or reached.min_paid_cents > was.min_paid_cents):
                await _level_up_gifts(session, account.member_id, was, reached, levels, now)
    return changed


async def member_unit_price(*, session: AsyncSession, member_id: int, sku: Sku | SkuRow, unit_price_cents: int,
                            now: dt.datetime) -> tuple[int, str] | None:
    """The member's price of one unit (the level's own price of the SKU, else its discount) and the level's
    name; None without a level or a benefit. Read with the rest of the calculation's loyalty facts."""
    facts = await loyalty_facts(session=session, member_id=member_id, sku_id=sku.id, now=now)
    if facts.level_id is None or facts.level_name is None:
        return None
    if facts.own_price_cents is not None:
        return min(facts.own_price_cents, unit_price_cents), facts.level_name
    if facts.discount_bps:
        return unit_price_cents - percent_of(unit_price_cents, facts.discount_bps), facts.level_name
    return None
