"""Coupons: make them, hand them out, price with them, and take/give them back with their order.

Counting (exact under concurrency; every count is raised by a conditional UPDATE that fails instead of passing a
limit, so 500 simultaneous checkouts of a coupon with 100 left use it exactly 100 times):
- `Coupon.taken_count` <= `total_quantity`: uses of a public code; coupons handed out (claim centre, issued);
  codes made (single-use code batches).
- `CouponGrant.status` available -> reserved -> used: a member's coupon or a single-use code is used once.
- `CouponTally.taken` <= `per_member_limit`: per member, uses of a public code or of a batch's codes; coupons
  held of a claimable / issued coupon.
Lifecycle with the order: reserved when the order is placed (same transaction), used when it is paid, given back
when it is cancelled or its reservation expires, and when it is refunded in full before delivery (after
delivery a refund does not give the coupon back: the buyer had the goods at the coupon's price).
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Select, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from quanyi.catalog.models import Category, Product, Sku
from quanyi.coupons.models import (
    Coupon,
    CouponCodeBatch,
    CouponGrant,
    CouponLevelGift,
    CouponLevelReward,
    CouponRedemption,
    CouponTally,
    CouponTarget,
    CouponTargetKind,
    Distribution,
    GrantStatus,
)
from quanyi.db import utcnow
from quanyi.errors import Conflict, InvalidInput, NotFound
from quanyi.orders.models import Order
from quanyi.scope import PLATFORM, Scope

__all__ = [
    "CouponNotFound", "CouponNotApplicable", "CouponSoldOut", "CouponLimitReached", "InvalidCoupon",
    "normalize_code", "create_coupon", "get_coupon", "list_coupons", "set_active", "targets_of",
    "claimable_coupons", "claim_coupon", "issue_coupon", "issue_signup_gifts", "make_codes", "batch_codes",
    "member_coupons", "usage_counts", "MAX_BATCH", "EDITABLE", "update_coupon", "code_batches",
    "issue_level_gifts",
]

MAX_BATCH = 10_000
_CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: read out over the phone without mistakes
_CODE_LENGTH = 12  # 32^12 = 2^60 codes: guessing one of 10,000 takes ~10^14 tries (and tries are rate-limited)


class CouponNotFound(NotFound):
    code = "coupon_not_found"


class CouponNotApplicable(Conflict):
    """The coupon exists but cannot be used here; `reason` says why (a stable code)."""

    code = "coupon_not_applicable"


class CouponSoldOut(Conflict):
    code = "coupon_sold_out"


class CouponLimitReached(Conflict):
    code = "coupon_limit_reached"


class InvalidCoupon(InvalidInput):
    code = "invalid_coupon"


def normalize_code(text: str) -> str:
    """A code as typed (any case, spaces or dashes) in its stored form."""
    return "".join(ch for ch in text.upper() if ch not in " -\t")


def _insert(session: AsyncSession) -> Any:
    return postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert


# ---------------------------------------------------------------- making coupons

async def create_coupon(*, session: AsyncSession, fields: dict[str, Any], targets: Sequence[tuple[str, int]] = (),
                        owner: int, actor: str = "admin", now: dt.datetime | None = None) -> Coupon:
    """Create a coupon of merchant `owner` (merchants.resolve_owner; the platform's own store is 1): it applies to
    that owner's goods only. `fields` are validated CouponCreate fields; `targets` (kind, id) restrict it to
    categories / products / SKUs of its owner."""
    now = now or utcnow()
    code = normalize_code(fields["code"]) if fields.get("code") else None
    if (fields["distribution"] == Distribution.CODE.value) != (code is not None):
        raise InvalidCoupon("a public-code coupon needs a code, and only it has one", field="code")
    if code is not None:
        clash = await session.scalar(select(Coupon.id).where(Coupon.code == code)) or await session.scalar(
            select(CouponGrant.id).where(CouponGrant.code == code))
        if clash is not None:
            raise InvalidCoupon(f"the code {code} is already used", field="code")
    if fields.get("signup_gift") and fields["distribution"] != Distribution.ISSUED.value:
        raise InvalidCoupon("only an issued coupon can be a sign-up gift", field="signup_gift")
    await _check_targets(session, targets, owner)
    coupon = Coupon(**{**fields, "code": code}, merchant_id=owner, applies_to_all=not targets, taken_count=0,
                    created_by=actor[:64], created_at=now, updated_at=now)
    session.add(coupon)
    await session.flush()
    session.add_all([CouponTarget(coupon_id=coupon.id, kind=kind, target_id=target_id)
                     for kind, target_id in sorted(set(targets))])
    await session.flush()
    return coupon


async def _check_targets(session: AsyncSession, targets: Sequence[tuple[str, int]], owner: int) -> None:
    models = {CouponTargetKind.CATEGORY.value: Category, CouponTargetKind.PRODUCT.value: Product,
              CouponTargetKind.SKU.value: Sku}
    for kind, target_id in targets:
        model = models.get(kind)
        if model is None:
            raise InvalidCoupon(f"unknown scope kind {kind!r}", field="targets")
        row = await session.get(model, target_id)
        # Categories are the platform's; products and SKUs must be the coupon owner's own goods.
        if row is None or (kind != CouponTargetKind.CATEGORY.value and row.merchant_id != owner):
            raise InvalidCoupon(f"no {kind} {target_id} among this shop's goods", field="targets")


async def get_coupon(*, session: AsyncSession, coupon_id: int, scope: Scope = PLATFORM,
                     lock: bool = False) -> Coupon:
    query = select(Coupon).where(Coupon.id == coupon_id)
    if lock:
        query = query.with_for_update().execution_options(populate_existing=True)
    coupon = await session.scalar(query)
    if coupon is None or not scope.sees(coupon.merchant_id):
        raise CouponNotFound("coupon not found")
    return coupon


async def list_coupons(*, session: AsyncSession, scope: Scope = PLATFORM, limit: int = 100,
                       offset: int = 0) -> list[Coupon]:
    return list((await session.scalars(select(Coupon).where(scope.where(Coupon.merchant_id))
                                       .order_by(Coupon.id.desc()).limit(limit).offset(offset))).all())


async def set_active(*, session: AsyncSession, coupon: Coupon, active: bool, now: dt.datetime | None = None) -> None:
    """Pause or resume a coupon: paused ones cannot be claimed or used (orders already placed keep theirs)."""
    coupon.active = active
    coupon.updated_at = now or utcnow()


# What an operator may change once a coupon exists. What it gives (kind, amounts, threshold, currency, scope) and
# how it is handed out (distribution, code) stay as they were when members took it.
EDITABLE = ("name", "description", "starts_at", "ends_at", "total_quantity", "per_member_limit", "new_members_only",
            "stackable", "signup_gift", "active")


async def update_coupon(*, session: AsyncSession, coupon: Coupon, changes: dict[str, Any],
                        now: dt.datetime | None = None) -> Coupon:
    """Change the EDITABLE fields of a coupon (lock it first: get_coupon(lock=True), so the total cannot pass
    below what a concurrent claim takes). Raises InvalidCoupon naming the field."""
    unknown = set(changes) - set(EDITABLE)
    if unknown:
        raise InvalidCoupon(f"{', '.join(sorted(unknown))} cannot be changed", field=sorted(unknown)[0])
    starts_at, ends_at = changes.get("starts_at", coupon.starts_at), changes.get("ends_at", coupon.ends_at)
    if ends_at <= starts_at:
        raise InvalidCoupon("the coupon must end after it starts", field="ends_at")
    total = changes.get("total_quantity", coupon.total_quantity)
    if total is not None and total < coupon.taken_count:
        raise InvalidCoupon(f"{coupon.taken_count} are already taken: the total cannot be less",
                            field="total_quantity")
    if changes.get("signup_gift") and coupon.distribution != Distribution.ISSUED.value:
        raise InvalidCoupon("only an issued coupon can be a sign-up gift", field="signup_gift")
    for name, value in changes.items():
        setattr(coupon, name, value)
    coupon.updated_at = now or utcnow()
    await session.flush()
    return coupon


async def code_batches(*, session: AsyncSession, coupon_id: int) -> list[CouponCodeBatch]:
    """A coupon's batches of single-use codes, newest first."""
    return list((await session.scalars(select(CouponCodeBatch).where(CouponCodeBatch.coupon_id == coupon_id)
                                       .order_by(CouponCodeBatch.id.desc()))).all())


async def targets_of(*, session: AsyncSession, coupon_id: int) -> list[tuple[str, int]]:
    rows = await session.execute(select(CouponTarget.kind, CouponTarget.target_id)
                                 .where(CouponTarget.coupon_id == coupon_id).order_by(CouponTarget.kind,
                                                                                      CouponTarget.target_id))
    return [(kind, int(target_id)) for kind, target_id in rows.all()]


async def usage_counts(*, session: AsyncSession, coupon_id: int) -> dict[str, int]:
    """Redemptions of a coupon by status (reserved, used, released, returned)."""
    rows = await session.execute(select(CouponRedemption.status, func.count()).where(
        CouponRedemption.coupon_id == coupon_id).group_by(CouponRedemption.status))
    return {status: int(n) for status, n in rows.all()}


# ---------------------------------------------------------------- counts (conditional updates)

async def _take_one(session: AsyncSession, coupon_id: int) -> bool:
    # The conditional UPDATE is the lock: on PostgreSQL concurrent ones queue on the row and each re-checks the
    # condition against the committed count; SQLite serialises writers. It fails instead of passing the total.
    result = await session.execute(update(Coupon).where(
        Coupon.id == coupon_id, (Coupon.total_quantity.is_(None)) | (Coupon.taken_count < Coupon.total_quantity))
        .values(taken_count=Coupon.taken_count + 1).execution_options(synchronize_session=False))
    return result.rowcount == 1  # type: ignore[attr-defined]


async def _give_back_one(session: AsyncSession, coupon_id: int) -> None:
    await session.execute(update(Coupon).where(Coupon.id == coupon_id, Coupon.taken_count > 0)
                          .values(taken_count=Coupon.taken_count - 1).execution_options(synchronize_session=False))


async def _tally_up(session: AsyncSession, coupon: Coupon, member_id: int) -> bool:
    """Count one more for this member, unless it would pass the per-member limit (an upsert that fails)."""
    if coupon.per_member_limit is None:
        return True
    table = CouponTally.__table__
    statement = _insert(session)(table).values(coupon_id=coupon.id, member_id=member_id, taken=1)
    statement = statement.on_conflict_do_update(index_elements=["coupon_id", "member_id"],
                                                set_={"taken": table.c.taken + 1},
                                                where=table.c.taken < coupon.per_member_limit)
    return (await session.execute(statement)).rowcount == 1  # type: ignore[attr-defined]


async def _tally_down(session: AsyncSession, coupon_id: int, member_id: int) -> None:
    await session.execute(update(CouponTally).where(
        CouponTally.coupon_id == coupon_id, CouponTally.member_id == member_id, CouponTally.taken > 0)
        .values(taken=CouponTally.taken - 1).execution_options(synchronize_session=False))


async def _is_new_member(session: AsyncSession, member_id: int, *, except_order_id: int | None = None) -> bool:
    """A new member (新人): none of their orders was ever paid, and none other is waiting for payment."""
    query = select(Order.id).where(Order.member_id == member_id,
                                   (Order.paid_at.is_not(None)) | (Order.status == "pending_payment"))
    if except_order_id is not None:
        query = query.where(Order.id != except_order_id)
    return await session.scalar(query.limit(1)) is None


def _still_open(coupon: Coupon, now: dt.datetime) -> str | None:
    if not coupon.active:
        return "inactive"
    if now < coupon.starts_at:
        return "not_started"
    if now >= coupon.ends_at:
        return "expired"
    return None


# ---------------------------------------------------------------- handing out

def _claimable_query(now: dt.datetime) -> Select[tuple[Coupon]]:
    return select(Coupon).where(Coupon.distribution == Distribution.CLAIM.value, Coupon.active.is_(True),
                                Coupon.starts_at <= now, Coupon.ends_at > now)


async def claimable_coupons(*, session: AsyncSession, member_id: int | None, now: dt.datetime | None = None,
                            limit: int = 100) -> list[tuple[Coupon, int]]:
    """The claim centre (领券中心): open claimable coupons, with how many of each this member already holds."""
    now = now or utcnow()
    coupons = list((await session.scalars(_claimable_query(now).order_by(Coupon.ends_at, Coupon.id)
                                          .limit(limit))).all())
    held: dict[int, int] = {}
    if member_id is not None and coupons:
        rows = await session.execute(select(CouponGrant.coupon_id, func.count()).where(
            CouponGrant.member_id == member_id, CouponGrant.coupon_id.in_([c.id for c in coupons]))
            .group_by(CouponGrant.coupon_id))
        held = {int(c): int(n) for c, n in rows.all()}
    return [(c, held.get(c.id, 0)) for c in coupons]


async def _grant(session: AsyncSession, coupon: Coupon, member_id: int, source: str, actor: str,
                 now: dt.datetime) -> CouponGrant:
    if coupon.new_members_only and not await _is_new_member(session, member_id):
        raise CouponNotApplicable("this coupon is for new members", reason="new_members_only")
    if not await _tally_up(session, coupon, member_id):
        raise CouponLimitReached(f"each member may hold {coupon.per_member_limit} of this coupon",
                                 limit=coupon.per_member_limit)
    if not await _take_one(session, coupon.id):
        raise CouponSoldOut("this coupon has all been handed out")
    grant = CouponGrant(coupon_id=coupon.id, member_id=member_id, source=source, status=GrantStatus.AVAILABLE.value,
                        issued_by=actor[:64], created_at=now, updated_at=now)
    session.add(grant)
    await session.flush()
    return grant


async def claim_coupon(*, session: AsyncSession, coupon_id: int, member_id: int,
                       now: dt.datetime | None = None) -> CouponGrant:
    """A member claims a coupon in the claim centre. Raises CouponSoldOut / CouponLimitReached /
    CouponNotApplicable (not claimable, not open, not a new member)."""
    now = now or utcnow()
    coupon = await session.scalar(select(Coupon).where(Coupon.id == coupon_id))
    if coupon is None or coupon.distribution != Distribution.CLAIM.value:
        raise CouponNotFound("no such coupon in the claim centre")
    reason = _still_open(coupon, now)
    if reason:
        raise CouponNotApplicable("this coupon cannot be claimed now", reason=reason)
    return await _grant(session, coupon, member_id, "claim", f"member:{member_id}", now)


async def issue_coupon(*, session: AsyncSession, coupon: Coupon, member_ids: Sequence[int], actor: str,
                       now: dt.datetime | None = None) -> tuple[int, dict[int, str]]:
    """An operator hands an issued (or claimable) coupon to members. Returns (issued, {member_id: why not}) for
    those refused (limit reached, sold out, not a new member): each is tried in its own savepoint."""
    now = now or utcnow()
    if coupon.distribution not in (Distribution.ISSUED.value, Distribution.CLAIM.value):
        raise InvalidCoupon("only issued or claimable coupons are handed to members")
    if _still_open(coupon, now) in ("inactive", "expired"):
        raise CouponNotApplicable("this coupon can no longer be handed out", reason=_still_open(coupon, now))
    issued, refused = 0, {}
    for member_id in dict.fromkeys(member_ids):
        try:
            async with session.begin_nested():
                await _grant(session, coupon, member_id, "issued", actor, now)
            issued += 1
        except (CouponSoldOut, CouponLimitReached, CouponNotApplicable) as exc:
            refused[member_id] = exc.code if not isinstance(exc, CouponNotApplicable) else str(
                exc.context.get("reason"))
    return issued, refused


async def issue_signup_gifts(*, session: AsyncSession, member_id: int, now: dt.datetime | None = None) -> int:
    """Rule issue: a new member gets every open sign-up gift coupon (those sold out or limited are skipped)."""
    now = now or utcnow()
    gifts = (await session.scalars(select(Coupon).where(
        Coupon.signup_gift.is_(True), Coupon.distribution == Distribution.ISSUED.value, Coupon.active.is_(True),
        Coupon.ends_at > now).order_by(Coupon.id))).all()
    issued = 0
    for coupon in gifts:
        try:
            async with session.begin_nested():
                await _grant(session, coupon, member_id, "signup", "rule:signup", now)
            issued += 1
        except (CouponSoldOut, CouponLimitReached, CouponNotApplicable):
            continue
    return issued


async def issue_level_gifts(*, session: AsyncSession, member_id: int, level_ids: Sequence[int],
                            now: dt.datetime | None = None) -> int:
    """Rule issue (升级礼): the member just reached these levels; each level's open gift coupons go to them, once per
    member and level. The reward row's primary key decides: a second delivery, a concurrent one (on PostgreSQL it
    waits for the first to commit, then inserts nothing) or a re-evaluation that reaches the level again gives
    nothing. Sold-out / limited coupons are skipped. Runs in the caller's (the delivery's) transaction."""
    now = now or utcnow()
    issued = 0
    for level_id in dict.fromkeys(level_ids):
        table = CouponLevelReward.__table__
        first = await session.execute(_insert(session)(table).values(
            member_id=member_id, level_id=level_id, issued=0, created_at=now)
            .on_conflict_do_nothing(index_elements=["member_id", "level_id"]))
        if first.rowcount != 1:  # type: ignore[attr-defined]
            continue
        gifts = (await session.scalars(select(Coupon).join(CouponLevelGift, CouponLevelGift.coupon_id == Coupon.id)
                                       .where(CouponLevelGift.level_id == level_id, Coupon.active.is_(True),
                                              Coupon.distribution == Distribution.ISSUED.value, Coupon.ends_at > now)
                                       .order_by(Coupon.id))).all()
        given = 0
        for coupon in gifts:
            try:
                async with session.begin_nested():
                    await _grant(session, coupon, member_id, "level", f"rule:level:{level_id}", now)
                given += 1
            except (CouponSoldOut, CouponLimitReached, CouponNotApplicable):
                continue
        if given:
            await session.execute(update(CouponLevelReward).where(
                CouponLevelReward.member_id == member_id, CouponLevelReward.level_id == level_id)
                .values(issued=given).execution_options(synchronize_session=False))
        issued += given
    return issued


async def make_codes(*, session: AsyncSession, coupon: Coupon, count: int, note: str = "", actor: str = "admin",
                     now: dt.datetime | None = None) -> CouponCodeBatch:
    """Make a batch of `count` (at most 10,000) unique single-use codes for a partner."""
    now = now or utcnow()
    if coupon.distribution != Distribution.CODES.value:
        raise InvalidCoupon("codes are made for single-use-code coupons only")
    if not 1 <= count <= MAX_BATCH:
        raise InvalidCoupon(f"a batch has 1 to {MAX_BATCH} codes", field="count")
    counted = await session.execute(update(Coupon).where(
        Coupon.id == coupon.id,
        (Coupon.total_quantity.is_(None)) | (Coupon.taken_count + count <= Coupon.total_quantity))
        .values(taken_count=Coupon.taken_count + count).execution_options(synchronize_session=False))
    if counted.rowcount != 1:  # type: ignore[attr-defined]
        raise CouponSoldOut("this batch would pass the coupon's total quantity")
    batch = CouponCodeBatch(coupon_id=coupon.id, size=count, note=note[:200], created_by=actor[:64], created_at=now)
    session.add(batch)
    await session.flush()
    codes: set[str] = set()
    while len(codes) < count:  # a clash with an existing code is astronomically unlikely; the unique key decides
        codes.add("".join(secrets.choice(_CODE_ALPHABET) for _ in range(_CODE_LENGTH)))
    rows = [{"coupon_id": coupon.id, "code": code, "batch_id": batch.id, "source": "code",
             "status": GrantStatus.AVAILABLE.value, "issued_by": actor[:64], "created_at": now, "updated_at": now}
            for code in codes]
    for start in range(0, len(rows), 1000):
        await session.execute(CouponGrant.__table__.insert(), rows[start:start + 1000])
    return batch


async def batch_codes(*, session: AsyncSession, batch_id: int, after_id: int = 0,
                      limit: int = 1000) -> list[tuple[int, str, str]]:
    """(id, code, status) of a batch, in pages (for the streamed CSV export)."""
    rows = await session.execute(select(CouponGrant.id, CouponGrant.code, CouponGrant.status).where(
        CouponGrant.batch_id == batch_id, CouponGrant.id > after_id).order_by(CouponGrant.id).limit(limit))
    return [(int(i), str(c), str(s)) for i, c, s in rows.all()]


async def member_coupons(*, session: AsyncSession, member_id: int,
                         statuses: Sequence[str] = (GrantStatus.AVAILABLE.value,)) -> list[tuple[CouponGrant, Coupon]]:
    """A member's own coupons (我的优惠券) with their coupon."""
    rows = await session.execute(select(CouponGrant, Coupon).join(Coupon, Coupon.id == CouponGrant.coupon_id).where(
        CouponGrant.member_id == member_id, CouponGrant.status.in_(list(statuses))).order_by(Coupon.ends_at))
    return [(g, c) for g, c in rows.all()]
