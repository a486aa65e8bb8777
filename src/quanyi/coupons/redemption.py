"""Coupons on orders: which apply to a line and what they take off (the coupon step of quanyi/pricing), and the
order's coupons taken, confirmed and given back with it. Counting rules: see coupons/service.py."""

from __future__ import annotations

import datetime as dt
import functools
from collections import namedtuple
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import Integer, and_, bindparam, exists, func, insert, inspect, literal, null, or_, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from quanyi import sqlite_trip
from quanyi.coupons import rules
from quanyi.coupons import service as _svc
from quanyi.coupons.models import (
    LIVE_REDEMPTIONS,
    Coupon,
    CouponGrant,
    CouponRedemption,
    CouponTally,
    CouponTarget,
    CouponTargetKind,
    Distribution,
    GrantStatus,
    RedemptionStatus,
)
from quanyi.coupons.service import CouponLimitReached, CouponNotApplicable, CouponNotFound, CouponSoldOut, InvalidCoupon
from quanyi.orders.numbers import core_connection
from quanyi.orders.one_statement import Take, TakeBuilder
from quanyi.pricing.arithmetic import CouponDiscount, capped_discount

__all__ = ["quote_coupons", "quoted_coupons", "reserve_coupons", "takes_with_order", "trip_takes_with_order",
           "release_coupons", "confirm_coupons", "retake_coupons", "code_read_parts", "remember_code_read"]


_QUOTED = "quanyi.coupons.quoted"
_READ = "quanyi.coupons.code_read"


# What the quote needs besides the coupon row, read with it: how many of the coupon's scope targets name the
# line (its SKU, product or category; 0 for a coupon that applies to all) and the member's tally of it.
_Found = tuple["Coupon | CouponRow", CouponGrant | None, str | None]


def _with_coupon(coupon_id: Any, sku_id: Any, product_id: Any, category_id: Any, member_id: Any) -> tuple[Any, Any]:
    hits = select(func.count()).where(CouponTarget.coupon_id == coupon_id, or_(
        and_(CouponTarget.kind == CouponTargetKind.SKU.value, CouponTarget.target_id == sku_id),
        and_(CouponTarget.kind == CouponTargetKind.PRODUCT.value, CouponTarget.target_id == product_id),
        and_(CouponTarget.kind == CouponTargetKind.CATEGORY.value, CouponTarget.target_id == category_id),
    )).scalar_subquery()
    taken = (select(CouponTally.taken).where(CouponTally.coupon_id == coupon_id, CouponTally.member_id == member_id)
             .scalar_subquery() if member_id is not None else literal(None, Integer))
    return hits, taken


# The coupon typed, with its scope targets naming the line and the member's tally (none for a guest: NULL matches
# no tally), built once.
_BY_CODE = select(Coupon, *_with_coupon(
    Coupon.id, *(bindparam(name, type_=Integer()) for name in ("sku_id", "product_id", "category_id", "member_id")))
).where(Coupon.code == bindparam("code"))


_COLUMNS = tuple(Coupon.__table__.c)
_KEYS = tuple(inspect(Coupon).get_property_by_column(column).key for column in _COLUMNS)

# The coupon as a member's checkout read it with its other facts (`code_read_parts`): a plain read-only row with the
# ORM model's attribute names, which is all the quote, the takes and the new-member check read of it; no ORM object
# is built or put in the session (a checkout writes the coupon's count with Core statements, never through it).
CouponRow = namedtuple("CouponRow", _KEYS)  # type: ignore[misc]


def code_read_parts(code: Any, sku_id: Any, product_id: Any, category_id: Any,
                    member_id: Any) -> tuple[tuple[Any, ...], Callable[[Any], Any]]:
    """`_BY_CODE`'s read as part of a bigger statement (a member's checkout reads it with its other facts,
    orders.member_checkout): its columns (the coupon's own, NULLs when no coupon has the code; targets naming the
    line; the member's tally; no ORM entity: `remember_code_read` makes the row one) and the outer join that gives
    them onto a FROM clause."""
    return (*_COLUMNS, *_with_coupon(Coupon.id, sku_id, product_id, category_id, member_id)), \
        lambda source: source.outerjoin(Coupon, Coupon.code == code)


def remember_code_read(session: AsyncSession, *, code: str, member_id: int | None, line_ids: tuple[int, int, int],
                       row: Sequence[Any]) -> None:
    """What `code_read_parts` read in this transaction for the coupon code `code` (normalized), the member and the
    line's (SKU, product, category): the quote of this checkout uses it instead of reading the code again (the
    coupon as a `CouponRow`)."""
    *columns, hits, taken = row
    coupon = None if columns[0] is None else CouponRow._make(columns)
    session.info[_READ] = (code, member_id, line_ids, None if coupon is None else (coupon, hits, taken))


def _read_before(session: AsyncSession, code: str, member_id: int | None,
                 line: rules.LineFacts) -> tuple[bool, Any]:
    """(whether this checkout read the code already, what it found: (coupon, hits, taken) or None)."""
    known = session.info.pop(_READ, None)
    if known is not None and known[:3] == (code, member_id, (line.sku_id, line.product_id, line.category_id)):
        return True, known[3]
    return False, None


async def _resolve(session: AsyncSession, codes: Sequence[str], member_coupon_ids: Sequence[int],
                   member_id: int | None, line: rules.LineFacts) -> tuple[list[_Found], dict[int, tuple[int, int]]]:
    """The coupons asked for, and for each coupon id (scope targets naming the line, the member's tally)."""
    found: list[_Found] = []
    extra: dict[int, tuple[int, int]] = {}
    for typed in codes:
        code = _svc.normalize_code(typed)
        read, row = _read_before(session, code, member_id, line) if code else (False, None)
        if not read:
            row = (await session.execute(_BY_CODE, {
                "code": code, "sku_id": line.sku_id, "product_id": line.product_id, "category_id": line.category_id,
                "member_id": member_id})).one_or_none() if code else None
        if row is not None:
            coupon, hits, taken = row
            found.append((coupon, None, code))
            extra[coupon.id] = (int(hits or 0), int(taken or 0))
            continue
        grant = await session.scalar(select(CouponGrant).where(CouponGrant.code == code)) if code else None
        if grant is None:
            raise CouponNotFound("no coupon has this code", field="coupon_code")
        found.append((await session.get(Coupon, grant.coupon_id), grant, code))  # type: ignore[arg-type]
    for grant_id in member_coupon_ids:
        grant = await session.get(CouponGrant, grant_id)
        if grant is None or member_id is None or grant.member_id != member_id:
            raise CouponNotFound("you hold no such coupon", field="member_coupon_ids")
        found.append((await session.get(Coupon, grant.coupon_id), grant, None))  # type: ignore[arg-type]
    for coupon, _, _ in found:
        if coupon.id not in extra:
            hits, taken = (await session.execute(select(*_with_coupon(coupon.id, line.sku_id, line.product_id,
                                                                     line.category_id, member_id)))).one()
            extra[coupon.id] = (int(hits or 0), int(taken or 0))
    return found, extra


def quoted_coupons(session: AsyncSession) -> list[Coupon | CouponRow]:
    """The coupons priced in this session's checkout so far (as `quote_coupons` found them: the ORM row, or the
    `CouponRow` a member's checkout read)."""
    return list(session.info.get(_QUOTED, ()))


async def _member_refusal(session: AsyncSession, coupon: Coupon, grant: CouponGrant | None,
                          member_id: int | None, taken: int) -> str | None:
    per_use_limit = coupon.per_member_limit is not None and grant is None or (
        coupon.per_member_limit is not None and coupon.distribution == Distribution.CODES.value)
    if member_id is None and (coupon.new_members_only or per_use_limit):
        return "member_required"
    if member_id is not None and coupon.new_members_only and not await _svc._is_new_member(session, member_id):
        return "new_members_only"
    if member_id is not None and per_use_limit and taken >= coupon.per_member_limit:  # type: ignore[operator]
        return "limit_reached"
    return None


async def quote_coupons(*, session: AsyncSession, line: rules.LineFacts, member_id: int | None,
                        codes: Sequence[str], member_coupon_ids: Sequence[int], floor_cents: int,
                        now: dt.datetime) -> tuple[CouponDiscount, ...]:
    """The coupons asked for, applied to `line` (read only). A coupon that does not apply raises (the buyer asked
    for it: an order is never placed at a price they did not expect): CouponNotFound, CouponNotApplicable (with a
    reason code), CouponSoldOut, CouponLimitReached, InvalidCoupon."""
    if not codes and not member_coupon_ids:
        return ()
    if len(codes) + len(member_coupon_ids) > rules.MAX_COUPONS_PER_ORDER:
        raise InvalidCoupon(f"at most {rules.MAX_COUPONS_PER_ORDER} coupons on one order", field="coupon_code")
    found, extra = await _resolve(session, codes, member_coupon_ids, member_id, line)
    # The session's identity map holds rows weakly: keeping the coupons for the transaction lets reserve_coupons
    # take them without reading each one again (the checkout hot path).
    session.info.setdefault(_QUOTED, []).extend(coupon for coupon, _, _ in found)
    if len({coupon.id for coupon, _, _ in found}) < len(found):
        raise CouponNotApplicable("the same coupon is given twice", reason="duplicate")
    if len(found) > 1 and not all(coupon.stackable for coupon, _, _ in found):
        raise CouponNotApplicable("this coupon cannot be combined with another", reason="not_stackable")
    for coupon, grant, _ in found:
        if grant is not None and grant.status != GrantStatus.AVAILABLE.value:
            raise CouponNotApplicable(f"coupon {coupon.name} was already used", reason="already_used")
        hits, taken = extra[coupon.id]
        reason = rules.refusal(coupon, line, now, in_scope=coupon.applies_to_all or hits > 0) \
            or await _member_refusal(session, coupon, grant, member_id, taken)
        if reason == "limit_reached":
            raise CouponLimitReached(f"you already used coupon {coupon.name} as often as allowed",
                                     limit=coupon.per_member_limit)
        if reason:
            raise CouponNotApplicable(f"coupon {coupon.name} cannot be used on this order", reason=reason)
        if grant is None and coupon.total_quantity is not None and coupon.taken_count >= coupon.total_quantity:
            raise CouponSoldOut(f"coupon {coupon.name} has been used up")
    remaining = line.subtotal_cents
    discounts = []
    for coupon, grant, code in sorted(found, key=lambda f: (rules.STACK_ORDER[f[0].kind], f[0].id)):
        amount = capped_discount(rules.wanted_discount(coupon, line, remaining), remaining, floor_cents)
        if amount <= 0:  # the coupons before it (or the one-cent floor) left it nothing: never reserve it for 0
            raise CouponNotApplicable(f"coupon {coupon.name} takes nothing off this order", reason="no_discount")
        remaining -= amount
        discounts.append(CouponDiscount(coupon_id=coupon.id, name=coupon.name, kind=coupon.kind, amount_cents=amount,
                                        code=code, grant_id=grant.id if grant is not None else None))
    return tuple(discounts)


async def _take(session: AsyncSession, coupon: Coupon, grant_id: int | None, member_id: int | None, order_id: int,
                now: dt.datetime, *, to: GrantStatus) -> None:
    if grant_id is not None:
        # Conditional UPDATE: of two orders racing for one code or member coupon, exactly one moves it.
        moved = await session.execute(update(CouponGrant).where(
            CouponGrant.id == grant_id, CouponGrant.status == GrantStatus.AVAILABLE.value)
            .values(status=to.value, order_id=order_id, updated_at=now).execution_options(synchronize_session=False))
        if moved.rowcount != 1:  # type: ignore[attr-defined]
            raise CouponNotApplicable(f"coupon {coupon.name} was just used", reason="already_used")
        if coupon.distribution == Distribution.CODES.value and member_id is not None \
                and not await _svc._tally_up(session, coupon, member_id):
            raise CouponLimitReached(f"you already used coupon {coupon.name} as often as allowed")
        return
    if member_id is not None and not await _svc._tally_up(session, coupon, member_id):
        raise CouponLimitReached(f"you already used coupon {coupon.name} as often as allowed")
    if not await _svc._take_one(session, coupon.id):
        raise CouponSoldOut(f"coupon {coupon.name} has been used up")


async def reserve_coupons(*, session: AsyncSession, order_id: int, discounts: Sequence[CouponDiscount],
                          member_id: int | None, now: dt.datetime) -> None:
    """The order was just placed with these coupons: take them (same transaction). Raises if one is gone since
    the quote; the order is then not placed and nothing is taken."""
    postgresql = session.get_bind().dialect.name == "postgresql"
    quoted = {coupon.id: coupon for coupon in quoted_coupons(session)}  # as priced a moment ago: not read again
    for d in discounts:
        coupon = quoted.get(d.coupon_id) or await session.get(Coupon, d.coupon_id)
        assert coupon is not None
        if postgresql and d.grant_id is None and member_id is not None and coupon.per_member_limit is not None:
            await _take_code_in_one(session, coupon, member_id, order_id, d.amount_cents, now)
            continue
        if not postgresql and d.grant_id is None:
            await _take_code_in_one_trip(session, coupon, member_id, order_id, d.amount_cents, now)
            continue
        await _take(session, coupon, d.grant_id, member_id, order_id, now, to=GrantStatus.RESERVED)
        session.add(CouponRedemption(coupon_id=coupon.id, order_id=order_id, grant_id=d.grant_id, member_id=member_id,
                                     discount_cents=d.amount_cents, status=RedemptionStatus.RESERVED.value,
                                     created_at=now, updated_at=now))


def _take_code_statement() -> Any:
    """`_take_code_in_one`'s statement, built once: the conditional tally upsert, the conditional count UPDATE (only
    if the tally took) and the redemption row (only if the count took)."""
    tally_table, coupon_table, redemption_table = CouponTally.__table__, Coupon.__table__, CouponRedemption.__table__
    coupon_id, member_id = bindparam("b_coupon_id", type_=Integer()), bindparam("b_member_id", type_=Integer())
    tally = (postgresql_insert(tally_table).values(coupon_id=coupon_id, member_id=member_id, taken=1)
             .on_conflict_do_update(index_elements=["coupon_id", "member_id"], set_={"taken": tally_table.c.taken + 1},
                                    where=tally_table.c.taken < bindparam("b_limit", type_=Integer()))
             .returning(tally_table.c.coupon_id).cte("tally"))
    # The conditional UPDATE is the lock: concurrent ones queue on the row and re-check the count (as _take_one).
    total, count = coupon_table.c.total_quantity, coupon_table.c.taken_count
    taken = (update(coupon_table)
             .where(coupon_table.c.id == coupon_id, total.is_(None) | (count < total),
                    exists(select(tally.c.coupon_id)))
             .values(taken_count=count + 1).returning(coupon_table.c.id).cte("taken"))
    now = bindparam("b_now", type_=redemption_table.c.created_at.type)
    values = select(coupon_id.label("coupon_id"), member_id.label("member_id"),
                    bindparam("b_order_id", type_=Integer()).label("order_id"),
                    bindparam("b_discount_cents", type_=redemption_table.c.discount_cents.type).label("discount_cents"),
                    null().label("grant_id"),
                    literal(RedemptionStatus.RESERVED.value, redemption_table.c.status.type).label("status"),
                    now.label("created_at"), now.label("updated_at"))
    redeemed = (insert(redemption_table)
                .from_select(["coupon_id", "member_id", "order_id", "discount_cents", "grant_id", "status",
                              "created_at", "updated_at"], values.where(exists(select(taken.c.id))))
                .returning(redemption_table.c.id).cte("redeemed"))
    return select(select(func.count()).select_from(tally).scalar_subquery(),
                  select(func.count()).select_from(taken).scalar_subquery(),
                  select(func.count()).select_from(redeemed).scalar_subquery())


_TAKE_CODE = _take_code_statement()


async def _take_code_in_one(session: AsyncSession, coupon: Coupon, member_id: int, order_id: int,
                            discount_cents: int, now: dt.datetime) -> None:
    """`_take` of a member's public-code coupon and its redemption row, as one statement on PostgreSQL: the same
    conditional tally upsert and conditional count UPDATE (each only if the one before it took), then the row."""
    counted, took, _ = (await session.execute(_TAKE_CODE, {
        "b_coupon_id": coupon.id, "b_member_id": member_id, "b_limit": coupon.per_member_limit,
        "b_order_id": order_id, "b_discount_cents": discount_cents, "b_now": now})).one()
    if not counted:
        raise CouponLimitReached(f"you already used coupon {coupon.name} as often as allowed")
    if not took:
        raise CouponSoldOut(f"coupon {coupon.name} has been used up")


def takes_with_order(*, session: AsyncSession, discounts: Sequence[CouponDiscount], member_id: int | None,
                     now: dt.datetime) -> list[Take] | None:
    """`reserve_coupons` as parts of the order's own statement on PostgreSQL (orders.one_statement), one take per
    coupon; None when one of them is not a public-code coupon the quote loaded (a member's own coupon, a batch code:
    `reserve_coupons` then takes them all once the order is in)."""
    quoted = {coupon.id: coupon for coupon in quoted_coupons(session)}
    takes = []
    for d in discounts:
        coupon = quoted.get(d.coupon_id)
        if coupon is None or d.grant_id is not None:
            return None
        tally = member_id is not None and coupon.per_member_limit is not None
        takes.append(Take(shape=("coupon", tally), build=_take_builder(tally), params={
            "coupon_id": coupon.id, "member_id": member_id, "limit": coupon.per_member_limit,
            "discount_cents": d.amount_cents, "now": now}, after=_after_take(coupon.name)))
    return takes


@functools.cache
def _take_builder(tally: bool) -> TakeBuilder:
    """`_TAKE_CODE` as a take (built once per shape): with `tally`, the member's conditional tally upsert first."""
    tally_table, coupon_table, redemption_table = CouponTally.__table__, Coupon.__table__, CouponRedemption.__table__

    def build(order_id: Any, go_on: Any, name: str) -> tuple[list[Any], list[Any], Any]:
        coupon_id = bindparam(f"{name}coupon_id", type_=Integer())
        member_id = bindparam(f"{name}member_id", type_=Integer())
        ctes: list[Any] = []
        if tally:
            counted = (postgresql_insert(tally_table)
                       .from_select(["coupon_id", "member_id", "taken"],
                                    select(coupon_id, member_id, literal(1, Integer())).where(go_on))
                       .on_conflict_do_update(index_elements=["coupon_id", "member_id"],
                                              set_={"taken": tally_table.c.taken + 1},
                                              where=tally_table.c.taken < bindparam(f"{name}limit", type_=Integer()))
                       .returning(tally_table.c.coupon_id).cte(f"{name}tally"))
            ctes.append(counted)
            go_on = exists(select(counted.c.coupon_id))
            columns = [select(func.count()).select_from(counted).scalar_subquery()]
        else:
            columns = [literal(1, Integer())]
        # The conditional UPDATE is the lock: concurrent ones queue on the row and re-check the count (as _take_one).
        total, count = coupon_table.c.total_quantity, coupon_table.c.taken_count
        taken = (update(coupon_table).where(coupon_table.c.id == coupon_id, total.is_(None) | (count < total), go_on)
                 .values(taken_count=count + 1).returning(coupon_table.c.id).cte(f"{name}taken"))
        now = bindparam(f"{name}now", type_=redemption_table.c.created_at.type)
        values = select(coupon_id, member_id, order_id,
                        bindparam(f"{name}discount_cents", type_=redemption_table.c.discount_cents.type), null(),
                        literal(RedemptionStatus.RESERVED.value, redemption_table.c.status.type), now, now)
        redeemed = (insert(redemption_table)
                    .from_select(["coupon_id", "member_id", "order_id", "discount_cents", "grant_id", "status",
                                  "created_at", "updated_at"], values.where(exists(select(taken.c.id))))
                    .returning(redemption_table.c.id).cte(f"{name}redeemed"))
        ctes += [taken, redeemed]
        columns.append(select(func.count()).select_from(taken).scalar_subquery())
        return ctes, columns, exists(select(redeemed.c.id))

    return build


def _after_take(name: str) -> Any:
    async def after(session: AsyncSession, order_id: int, take: Take) -> None:
        counted, took = take.results
        if not counted:
            raise CouponLimitReached(f"you already used coupon {name} as often as allowed")
        if not took:
            raise CouponSoldOut(f"coupon {name} has been used up")
    return after


_tally_table = CouponTally.__table__
_SQLITE_TALLY = (sqlite_insert(_tally_table)  # _svc._tally_up, built once
                 .values(coupon_id=bindparam("b_coupon_id"), member_id=bindparam("b_member_id"), taken=1)
                 .on_conflict_do_update(index_elements=["coupon_id", "member_id"],
                                        set_={"taken": _tally_table.c.taken + 1},
                                        where=_tally_table.c.taken < bindparam("b_limit", type_=Integer())))
_SQLITE_TAKE = (update(Coupon.__table__)  # _svc._take_one, built once
                .where(Coupon.__table__.c.id == bindparam("b_coupon_id"),
                       Coupon.__table__.c.total_quantity.is_(None)
                       | (Coupon.__table__.c.taken_count < Coupon.__table__.c.total_quantity))
                .values(taken_count=Coupon.__table__.c.taken_count + 1))
_SQLITE_REDEEMED = insert(CouponRedemption.__table__)


def _take_code_steps(coupon: Coupon, member_id: int | None, order_id: Any, discount_cents: int,
                     now: dt.datetime) -> tuple[list[sqlite_trip.Step], int]:
    """SQLite: `_take` of a public-code coupon and its redemption row as steps of a trip (quanyi.sqlite_trip): the
    tally upsert (a member, a per-member limit), the conditional count UPDATE, the row, each only if the one before
    took. Also how many steps come before the count (a trip that stopped after them: the tally said no)."""
    ids = {"b_coupon_id": coupon.id}
    steps = []
    if member_id is not None and coupon.per_member_limit is not None:
        steps.append(sqlite_trip.Step(_SQLITE_TALLY, {**ids, "b_member_id": member_id,
                                                      "b_limit": coupon.per_member_limit},
                                      expect=sqlite_trip.rowcount_is(1)))
    tallied = len(steps)
    steps.append(sqlite_trip.Step(_SQLITE_TAKE, ids, expect=sqlite_trip.rowcount_is(1)))
    steps.append(sqlite_trip.Step(_SQLITE_REDEEMED, {
        "coupon_id": coupon.id, "order_id": order_id, "grant_id": None, "member_id": member_id,
        "discount_cents": discount_cents, "status": RedemptionStatus.RESERVED.value, "created_at": now,
        "updated_at": now}))
    return steps, tallied


def _refuse_untaken(name: str, steps: int, tallied: int, ran: int) -> None:
    """Raises the refusal of a code's take whose trip ran `ran` of its `steps` (the last one that ran said stop)."""
    if ran < steps:
        if ran == tallied:  # the tally said no
            raise CouponLimitReached(f"you already used coupon {name} as often as allowed")
        raise CouponSoldOut(f"coupon {name} has been used up")


async def _take_code_in_one_trip(session: AsyncSession, coupon: Coupon, member_id: int | None, order_id: int,
                                 discount_cents: int, now: dt.datetime) -> None:
    """`_take_code_steps` in a trip of their own to the connection's thread (quanyi.sqlite_trip) under the writer
    lock."""
    steps, tallied = _take_code_steps(coupon, member_id, order_id, discount_cents, now)
    ran = len(await sqlite_trip.run(await core_connection(session), steps))
    _refuse_untaken(coupon.name, len(steps), tallied, ran)


def trip_takes_with_order(*, session: AsyncSession, discounts: Sequence[CouponDiscount], member_id: int | None,
                          now: dt.datetime) -> list[sqlite_trip.Take] | None:
    """`reserve_coupons` as steps of the order's own trip on SQLite (quanyi.sqlite_trip, orders.checkout), one take
    per coupon; None when one of them is not a public-code coupon the quote loaded (a member's own coupon, a batch
    code: `reserve_coupons` then takes them all once the order is in)."""
    quoted = {coupon.id: coupon for coupon in quoted_coupons(session)}
    takes = []
    for d in discounts:
        coupon = quoted.get(d.coupon_id)
        if coupon is None or d.grant_id is not None:
            return None
        steps, tallied = _take_code_steps(coupon, member_id, sqlite_trip.Returned(0), d.amount_cents, now)
        takes.append(sqlite_trip.Take(steps, _after_trip_take(coupon.name, len(steps), tallied)))
    return takes


def _after_trip_take(name: str, steps: int, tallied: int) -> Any:
    async def after(session: AsyncSession, order_id: int, take: sqlite_trip.Take) -> None:
        _refuse_untaken(name, steps, tallied, len(take.results))
    return after


async def _redemptions(session: AsyncSession, order_id: int, statuses: Sequence[str]) -> list[CouponRedemption]:
    return list((await session.scalars(select(CouponRedemption).where(
        CouponRedemption.order_id == order_id, CouponRedemption.status.in_(list(statuses)))
        .order_by(CouponRedemption.id).with_for_update())).all())


async def release_coupons(*, session: AsyncSession, order_id: int, returned: bool, now: dt.datetime) -> int:
    """Give the order's coupons back (cancelled / expired: released; refunded in full before delivery: returned).
    Idempotent: only coupons still counted are given back. The caller holds the order row lock."""
    rows = await _redemptions(session, order_id, LIVE_REDEMPTIONS)
    for r in rows:
        coupon = await session.get(Coupon, r.coupon_id)
        assert coupon is not None
        r.status = (RedemptionStatus.RETURNED if returned else RedemptionStatus.RELEASED).value
        r.updated_at = now
        if r.grant_id is not None:
            await session.execute(update(CouponGrant).where(CouponGrant.id == r.grant_id).values(
                status=GrantStatus.AVAILABLE.value, order_id=None, updated_at=now)
                .execution_options(synchronize_session=False))
            counted_per_member = coupon.distribution == Distribution.CODES.value
        else:
            await _svc._give_back_one(session, coupon.id)
            counted_per_member = True
        if counted_per_member and r.member_id is not None and coupon.per_member_limit is not None:
            await _svc._tally_down(session, coupon.id, r.member_id)
    return len(rows)


async def confirm_coupons(*, session: AsyncSession, order_id: int, now: dt.datetime) -> None:
    """The order was paid: its reserved coupons are used."""
    for r in await _redemptions(session, order_id, [RedemptionStatus.RESERVED.value]):
        r.status, r.updated_at = RedemptionStatus.USED.value, now
        if r.grant_id is not None:
            await session.execute(update(CouponGrant).where(CouponGrant.id == r.grant_id).values(
                status=GrantStatus.USED.value, updated_at=now).execution_options(synchronize_session=False))


async def retake_coupons(*, session: AsyncSession, order_id: int, now: dt.datetime) -> bool:
    """Money arrived for an order cancelled unpaid, whose coupons went back: take them again as used. False if one
    is gone (used up or used elsewhere meanwhile): nothing is taken and the order must be refunded."""
    rows = await _redemptions(session, order_id, [RedemptionStatus.RELEASED.value])
    try:
        async with session.begin_nested():
            for r in rows:
                coupon = await session.get(Coupon, r.coupon_id)
                assert coupon is not None
                await _take(session, coupon, r.grant_id, r.member_id, order_id, now, to=GrantStatus.USED)
                r.status, r.updated_at = RedemptionStatus.USED.value, now
    except (CouponNotApplicable, CouponSoldOut, CouponLimitReached):
        return False
    return True
