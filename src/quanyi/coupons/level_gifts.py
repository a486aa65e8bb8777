"""Level-up gift coupons (升级礼券), configured: which coupons each membership level gives a member reaching it.
Handing them out is coupons_service.issue_level_gifts, called by loyalty's level changes. Levels are the
platform's (members are platform-wide), so this is platform configuration; a gift may be any owner's `issued`
coupon (it still pays for its owner's goods only)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from quanyi.coupons.models import Coupon, CouponLevelGift, Distribution
from quanyi.coupons.service import CouponNotFound, InvalidCoupon
from quanyi.db import utcnow
from quanyi.loyalty import levels as loyalty_levels
from quanyi.loyalty.models import MemberLevel

__all__ = ["MAX_GIFTS_PER_LEVEL", "level_gifts", "set_level_gifts", "gift_candidates"]

MAX_GIFTS_PER_LEVEL = 20


async def level_gifts(*, session: AsyncSession) -> list[tuple[MemberLevel, list[Coupon]]]:
    """Every level, lowest first, with the coupons it gives."""
    levels = await loyalty_levels.list_levels(session)
    rows = (await session.execute(select(CouponLevelGift.level_id, Coupon).join(
        Coupon, Coupon.id == CouponLevelGift.coupon_id).order_by(Coupon.id))).all()
    gifts: dict[int, list[Coupon]] = {}
    for level_id, coupon in rows:
        gifts.setdefault(int(level_id), []).append(coupon)
    return [(level, gifts.get(level.id, [])) for level in levels]


async def gift_candidates(*, session: AsyncSession, now: dt.datetime | None = None) -> list[Coupon]:
    """Coupons a level may give: issued ones that have not ended, newest first."""
    now = now or utcnow()
    return list((await session.scalars(select(Coupon).where(
        Coupon.distribution == Distribution.ISSUED.value, Coupon.ends_at > now).order_by(Coupon.id.desc())
        .limit(500))).all())


async def set_level_gifts(*, session: AsyncSession, level_code: str, coupon_ids: Sequence[int], actor: str,
                          now: dt.datetime | None = None) -> tuple[MemberLevel, list[Coupon]]:
    """Replace the coupons a level gives (none: no gift). Each must be an issued coupon that has not ended.
    Members who reached the level before keep what they got and get nothing more."""
    now = now or utcnow()
    # The level's row lock: two operators replacing one level's gifts at once take turns (no duplicate key).
    level = await session.scalar(select(MemberLevel).where(MemberLevel.code == level_code.strip().upper())
                                 .with_for_update())
    if level is None:
        raise loyalty_levels.LevelNotFound(f"no level {level_code!r}")
    wanted = list(dict.fromkeys(coupon_ids))
    if len(wanted) > MAX_GIFTS_PER_LEVEL:
        raise InvalidCoupon(f"a level gives at most {MAX_GIFTS_PER_LEVEL} coupons", field="coupon_ids")
    coupons = {c.id: c for c in (await session.scalars(select(Coupon).where(Coupon.id.in_(wanted)))).all()} \
        if wanted else {}
    for coupon_id in wanted:
        coupon = coupons.get(coupon_id)
        if coupon is None:
            raise CouponNotFound(f"no coupon {coupon_id}", field="coupon_ids")
        if coupon.distribution != Distribution.ISSUED.value:
            raise InvalidCoupon(f"coupon {coupon_id} ({coupon.name}) is not an issued coupon: only issued coupons "
                                "are given by a rule", field="coupon_ids")
        if coupon.ends_at <= now:
            raise InvalidCoupon(f"coupon {coupon_id} ({coupon.name}) has ended", field="coupon_ids")
    await session.execute(delete(CouponLevelGift).where(CouponLevelGift.level_id == level.id))
    session.add_all([CouponLevelGift(level_id=level.id, coupon_id=coupon_id, created_by=actor[:64], created_at=now)
                     for coupon_id in wanted])
    await session.flush()
    return level, [coupons[i] for i in wanted]
