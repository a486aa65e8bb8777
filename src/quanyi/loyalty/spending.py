"""Points spent at checkout (积分抵现): how many may pay for an order (`quote`, the price calculation's points step)
and taking them for the order just placed (`spend`, in its transaction), oldest-expiring lots first; the rules
of points and their ledger postings are in `loyalty/points.py`.
"""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass
from typing import Any

from sqlalchemy import BigInteger, Integer, String, bindparam, cast, exists, func, insert, literal, select, true, update
from sqlalchemy.ext.asyncio import AsyncSession

from quanyi import sqlite_trip
from quanyi.db import utcnow
from quanyi.ledger.postings import (
    new_posting_lines,
    new_posting_params,
    new_posting_steps,
    order_posting_ctes,
    posting_ctes,
)
from quanyi.loyalty.facts import facts_read_for, loyalty_facts
from quanyi.loyalty.models import MemberLoyalty, PointsKind, PointsLot, PointsMovement
from quanyi.loyalty.points import (
    PointsInsufficient,
    _lots,
    _move,
    _post,
    account_of,
    expire_due,
    get_program,
    points_lines,
)
from quanyi.orders.numbers import core_connection
from quanyi.orders.one_statement import Take, TakeBuilder

__all__ = ["PointsQuoteResult", "quote", "spend", "take_with_order", "trip_take_with_order"]


@dataclass(frozen=True, slots=True)
class PointsQuoteResult:
    points: int
    discount_cents: int
    note: str | None


async def quote(*, session: AsyncSession, member_id: int, points: int, remaining_cents: int,
                max_discount_cents: int, now: dt.datetime, sku_id: int | None = None) -> PointsQuoteResult:
    """How many of the requested points may pay for an order with `remaining_cents` left after coupons: at most
    the member's available points, the programme's share of the order, and `max_discount_cents`. Read with the
    rest of the calculation's loyalty facts (`loyalty.facts`)."""
    facts = await loyalty_facts(session=session, member_id=member_id, sku_id=sku_id, now=now)
    program = facts.program
    if not program.points_enabled:
        return PointsQuoteResult(0, 0, "points_unavailable")
    value = program.point_value_cents
    available = facts.available_points
    by_share = remaining_cents * program.max_points_share_bps // 10_000
    allowed = min(points, available, min(by_share, max_discount_cents) // value)
    note = None
    if allowed < points:
        note = "points_balance" if allowed == available else "points_max_share"
    return PointsQuoteResult(allowed, allowed * value, note)


async def spend(*, session: AsyncSession, member_id: int, order_id: int, points: int,
                now: dt.datetime | None = None) -> None:
    """Take `points` for the order just placed (its checkout transaction), oldest-expiring first. The point value
    is the one the price was calculated with (its loyalty facts, same `now`), else the programme's now."""
    now = now or utcnow()
    if points <= 0:
        return
    facts = facts_read_for(session, member_id, now)
    value = facts.program.point_value_cents if facts is not None else (await get_program(session)).point_value_cents
    reference = f"points_spent:{order_id}"
    memo = f"{points} points spent on order {order_id}"
    if facts is not None and facts.points_due == 0:
        await _spend_nothing_due(session, member_id, order_id, points, now, reference, value, memo)
        return  # posted with the lots
    await _spend_after_expiry(session, member_id, order_id, points, now, reference, value)
    await _post(session, reference=reference, kind="points_spent", points=-points,  # the order was just placed
                value_cents=value, order_id=order_id, now=now, new=True, memo=memo)


_account = MemberLoyalty.__table__
_TAKE_BALANCE = (update(_account)  # the member's lock and the points, or nothing; built once
                 .where(_account.c.member_id == bindparam("b_member_id", type_=Integer()),
                        _account.c.points_balance >= bindparam("b_points", type_=BigInteger()))
                 .values(points_balance=_account.c.points_balance - bindparam("b_points", type_=BigInteger()),
                         updated_at=bindparam("b_now", type_=_account.c.updated_at.type))
                 .returning(_account.c.points_balance))


async def _spend_nothing_due(session: AsyncSession, member_id: int, order_id: int, points: int, now: dt.datetime,
                             reference: str, value: int, memo: str) -> None:
    """`spend` when the calculation's facts found no points due to expire at `now` (none can become due at
    that moment later): the conditional UPDATE takes the member's lock and the points, or nothing; the lots, their
    journal rows and the ledger posting go with it (PostgreSQL: one more statement; SQLite: one trip)."""
    if session.get_bind().dialect.name == "sqlite":
        return await _spend_in_one_trip(session, member_id, order_id, points, now, reference, value, memo)
    balance = await session.scalar(_TAKE_BALANCE, {"b_member_id": member_id, "b_points": points, "b_now": now})
    if balance is None:
        available = await session.scalar(select(MemberLoyalty.points_balance)
                                         .where(MemberLoyalty.member_id == member_id))
        raise PointsInsufficient("not enough points any more: they were spent or expired since the price was shown",
                                 available=max(0, int(available or 0)))
    lines, posting = await new_posting_params(session, reference=reference, kind="points_spent", memo=memo,
                                              now=now, order_id=order_id, lines=points_lines(-points, value))
    took, _ = (await session.execute(_lots_statement(lines), {
        "b_member_id": member_id, "b_points": points, "before": int(balance) + points, "b_order_id": order_id,
        "b_reference": reference, "b_now": now, **posting})).one()
    left = points - int(took)
    if left:  # balance and lots disagree: never spend what is not there (the posting rolls back with it)
        raise PointsInsufficient("not enough points", available=points - left)


def _trip_statements() -> tuple[Any, Any]:
    """SQLite: the journal rows of a spend from the member's lots (oldest-expiring first, a running sum; the balance
    after each), then the lots lowered by what their rows took. Built once."""
    lots, journal = PointsLot.__table__, PointsMovement.__table__
    points, member_id = bindparam("b_points", type_=BigInteger()), bindparam("b_member_id", type_=Integer())
    reference = bindparam("b_reference", type_=journal.c.reference.type)
    upto = func.sum(lots.c.remaining).over(order_by=(lots.c.expires_at, lots.c.id))
    picked = (select(lots.c.id, lots.c.remaining, upto.label("upto"))
              .where(lots.c.member_id == member_id, lots.c.remaining > 0).subquery("picked"))
    needed = (select(picked.c.id, func.min(picked.c.remaining, points - (picked.c.upto - picked.c.remaining))
                     .label("take"), picked.c.upto)
              .where(picked.c.upto - picked.c.remaining < points).subquery("needed"))
    rows = select(member_id, literal(PointsKind.SPENT.value), -needed.c.take,
                  bindparam("b_balance", type_=BigInteger()) + points - func.min(needed.c.upto, points),
                  bindparam("b_order_id", type_=Integer()), needed.c.id, reference, literal(""),
                  bindparam("b_now", type_=journal.c.created_at.type))
    written = (insert(journal).from_select(["member_id", "kind", "points", "balance_after", "order_id", "lot_id",
                                            "reference", "note", "created_at"], rows)
               .returning(journal.c.points))
    own = journal.alias("own")  # this spend's rows (its reference names the order just placed)
    took = (select(own.c.points).where(own.c.reference == reference, own.c.lot_id == lots.c.id,
                                       own.c.kind == PointsKind.SPENT.value).scalar_subquery())
    lowered = (update(lots).where(lots.c.id.in_(select(own.c.lot_id).where(own.c.reference == reference,
                                                                          own.c.kind == PointsKind.SPENT.value)))
               .values(remaining=lots.c.remaining + took))
    return written, lowered


_TRIP_JOURNAL, _TRIP_LOTS = _trip_statements()


async def _spend_in_one_trip(session: AsyncSession, member_id: int, order_id: int, points: int, now: dt.datetime,
                             reference: str, value: int, memo: str) -> None:
    """`_spend_nothing_due` on SQLite in one trip to the connection's thread (quanyi.sqlite_trip): `_trip_steps`."""
    steps = await _trip_steps(session, member_id, order_id, points, now, reference, value, memo, at=0)
    await _spent_in_trip(session, member_id, points, await sqlite_trip.run(await core_connection(session), steps))


async def _trip_steps(session: AsyncSession, member_id: int, order_id: int | sqlite_trip.Returned, points: int,
                      now: dt.datetime, reference: str | sqlite_trip.Returned, value: int,
                      memo: str | sqlite_trip.Returned, *, at: int) -> list[sqlite_trip.Step]:
    """SQLite, under the writer lock: the conditional balance UPDATE, the journal rows from the lots, the lots, the
    ledger posting (as `post(new=True)`), each after the one before, as steps of a trip whose step `at` is the
    first of them; nothing after the balance when it did not cover the points. The lots are read as the facts of
    this checkout found them: BEGIN IMMEDIATE holds SQLite's one writer lock since (Database.transaction)."""
    steps = [sqlite_trip.Step(_TAKE_BALANCE, {"b_member_id": member_id, "b_points": points, "b_now": now},
                              expect=sqlite_trip.returned_a_row),
             sqlite_trip.Step(_TRIP_JOURNAL, {"b_member_id": member_id, "b_points": points,
                                              "b_balance": sqlite_trip.Returned(at), "b_order_id": order_id,
                                              "b_reference": reference, "b_now": now}),
             sqlite_trip.Step(_TRIP_LOTS, {"b_reference": reference})]
    return steps + await new_posting_steps(session, reference=reference, kind="points_spent", memo=memo, now=now,
                                           order_id=order_id, lines=points_lines(-points, value),
                                           at=at + len(steps))


async def _spent_in_trip(session: AsyncSession, member_id: int, points: int,
                         done: list[tuple[int, list[Any]]]) -> None:
    """Answers for `_trip_steps` once their trip is back (`done`: what each of them that ran gave)."""
    if not done or not done[0][1]:
        available = await session.scalar(select(MemberLoyalty.points_balance)
                                         .where(MemberLoyalty.member_id == member_id))
        raise PointsInsufficient("not enough points any more: they were spent or expired since the price was shown",
                                 available=max(0, int(available or 0)))
    took = -sum(int(row[0]) for row in done[1][1])
    if took < points:  # balance and lots disagree: never spend what is not there (the caller's transaction rolls back)
        raise PointsInsufficient("not enough points", available=took)


async def trip_take_with_order(*, session: AsyncSession, member_id: int, points: int, now: dt.datetime,
                               at: int) -> sqlite_trip.Take | None:
    """`spend` as steps of the order's own trip on SQLite (orders.checkout; the order's id is step 0's, the take's
    first step is step `at`): `_trip_steps`. None when `spend` must do it once the order is in (as
    `take_with_order`: points due to expire, or no facts read)."""
    facts = facts_read_for(session, member_id, now)
    if points <= 0 or facts is None or facts.points_due:
        return None
    order_id = sqlite_trip.Returned(0)
    steps = await _trip_steps(session, member_id, order_id, points, now,
                              sqlite_trip.Returned(0, prefix="points_spent:"), facts.program.point_value_cents,
                              sqlite_trip.Returned(0, prefix=f"{points} points spent on order "), at=at)

    async def after(session: AsyncSession, order_id: int, take: sqlite_trip.Take) -> None:
        await _spent_in_trip(session, member_id, points, take.results)

    return sqlite_trip.Take(steps, after)


@functools.cache
def _lots_statement(posting_lines: int) -> Any:
    """PostgreSQL, under the member's lock (taken by the statement before, so this one reads the lots as they
    are): the lots' part of `_spend_nothing_due` as one statement, built once: oldest-expiring lots first, a journal
    row per lot with the balance after it (`before`: the balance before the spend), and the spend's ledger posting
    (ledger.postings.posting_ctes). Returns the points taken."""
    lots, journal = PointsLot.__table__, PointsMovement.__table__
    points, member_id = bindparam("b_points", type_=BigInteger()), bindparam("b_member_id", type_=Integer())
    upto = func.sum(lots.c.remaining).over(order_by=(lots.c.expires_at, lots.c.id))  # points up to this lot
    picked = (select(lots.c.id, lots.c.remaining, upto.label("upto"))
              .where(lots.c.member_id == member_id, lots.c.remaining > 0).cte("picked"))
    needed = (select(picked.c.id, func.least(picked.c.remaining, points - (picked.c.upto - picked.c.remaining))
                     .label("take"), picked.c.upto)
              .where(picked.c.upto - picked.c.remaining < points).cte("needed"))
    taken = (update(lots).where(lots.c.id == needed.c.id).values(remaining=lots.c.remaining - needed.c.take)
             .returning(lots.c.id, needed.c.take, needed.c.upto).cte("taken"))
    rows = select(member_id, literal(PointsKind.SPENT.value), -taken.c.take,
                  bindparam("before", type_=BigInteger()) - func.least(taken.c.upto, points),
                  bindparam("b_order_id", type_=Integer()), taken.c.id,
                  bindparam("b_reference", type_=journal.c.reference.type), literal(""),
                  bindparam("b_now", type_=journal.c.created_at.type))
    written = (insert(journal).from_select(["member_id", "kind", "points", "balance_after", "order_id", "lot_id",
                                            "reference", "note", "created_at"], rows)
               .returning(journal.c.id).cte("written"))
    return select(select(func.coalesce(func.sum(taken.c.take), 0)).scalar_subquery(),
                  select(func.count()).select_from(written).scalar_subquery()).add_cte(*posting_ctes(posting_lines))


async def take_with_order(*, session: AsyncSession, member_id: int, points: int, now: dt.datetime) -> Take | None:
    """`spend` as a part of the order's own statement on PostgreSQL (orders.one_statement): the conditional balance
    UPDATE (the member's lock), the lots, their journal rows and the ledger posting. None when `spend` must do it
    once the order is in: this calculation's facts found points due to expire (they expire first), or were not
    read (the point value is the one the price was calculated with)."""
    facts = facts_read_for(session, member_id, now)
    if points <= 0 or facts is None or facts.points_due:
        return None
    lines, posting = await new_posting_lines(session, reference="points_spent:<new order>", kind="points_spent",
                                             lines=points_lines(-points, facts.program.point_value_cents), now=now)
    return Take(shape=("points", lines), build=_spend_builder(lines), after=_after_spend(member_id, points), params={
        "member_id": member_id, "points": points, "now": now, "memo": f"{points} points spent on order ",
        "reference": "points_spent:", **posting})


@functools.cache
def _spend_builder(posting_lines: int) -> TakeBuilder:
    """The take of `take_with_order`, built once per number of posting lines."""
    lots, journal = PointsLot.__table__, PointsMovement.__table__

    def build(order_id: Any, go_on: Any, name: str) -> tuple[list[Any], list[Any], Any]:
        member_id = bindparam(f"{name}member_id", type_=Integer())
        points = bindparam(f"{name}points", type_=BigInteger())
        now = bindparam(f"{name}now", type_=journal.c.created_at.type)
        reference = bindparam(f"{name}reference", type_=String()) + cast(order_id, String())
        balance = (update(_account)  # the member's lock and the points, or nothing (as _TAKE_BALANCE)
                   .where(_account.c.member_id == member_id, _account.c.points_balance >= points, go_on)
                   .values(points_balance=_account.c.points_balance - points, updated_at=now)
                   .returning(_account.c.points_balance).cte(f"{name}balance"))
        # The lots only once the member's lock is held (joined to the UPDATE that takes it), and locked themselves:
        # a lot that the transaction this one waited for changed is read as that transaction left it (FOR UPDATE
        # reads the row's newest version). A lot it added (or took back from 0) is not in this statement's snapshot:
        # the take then comes up short and `after` takes the rest from the lots read again.
        locked = (select(lots.c.id, lots.c.remaining, lots.c.expires_at).select_from(lots.join(balance, true()))
                  .where(lots.c.member_id == member_id, lots.c.remaining > 0)
                  .with_for_update(of=lots).cte(f"{name}locked"))
        upto = func.sum(locked.c.remaining).over(order_by=(locked.c.expires_at, locked.c.id))  # points up to this lot
        picked = select(locked.c.id, locked.c.remaining, upto.label("upto")).cte(f"{name}picked")
        needed = (select(picked.c.id, func.least(picked.c.remaining, points - (picked.c.upto - picked.c.remaining))
                         .label("take"), picked.c.upto)
                  .where(picked.c.upto - picked.c.remaining < points).cte(f"{name}needed"))
        taken = (update(lots).where(lots.c.id == needed.c.id).values(remaining=lots.c.remaining - needed.c.take)
                 .returning(lots.c.id, needed.c.take, needed.c.upto).cte(f"{name}lots"))
        before = select(balance.c.points_balance).scalar_subquery() + points
        rows = select(member_id, literal(PointsKind.SPENT.value), -taken.c.take,
                      before - func.least(taken.c.upto, points), order_id, taken.c.id, reference, literal(""), now)
        written = (insert(journal).from_select(["member_id", "kind", "points", "balance_after", "order_id", "lot_id",
                                                "reference", "note", "created_at"], rows)
                   .returning(journal.c.id).cte(f"{name}journal"))
        posting = order_posting_ctes(posting_lines, name, reference=reference, order_id=order_id,
                                     memo=bindparam(f"{name}memo", type_=String()) + cast(order_id, String()),
                                     source=balance)
        columns = [select(balance.c.points_balance).scalar_subquery(),
                   select(func.coalesce(func.sum(taken.c.take), 0)).scalar_subquery(),
                   select(func.count()).select_from(written).scalar_subquery()]
        go_on_after = exists(select(balance.c.points_balance))
        return [balance, locked, picked, needed, taken, written, *posting], columns, go_on_after

    return build


def _after_spend(member_id: int, points: int) -> Any:
    async def after(session: AsyncSession, order_id: int, take: Take) -> None:
        balance, took, _ = take.results
        if balance is None:
            available = await session.scalar(select(MemberLoyalty.points_balance)
                                             .where(MemberLoyalty.member_id == member_id))
            raise PointsInsufficient("not enough points any more: they were spent or expired since the price was "
                                     "shown", available=max(0, int(available or 0)))
        left = points - int(took)
        if not left:
            return
        # Short: a lot came in while the statement waited for the member's lock (see _spend_builder). The lock is
        # held: the rest from the lots as they are now, oldest-expiring first (journal rows as `spend` writes them).
        after_balance = int(balance) + left
        for lot in await _lots(session, member_id):
            step = min(left, lot.remaining)
            lot.remaining -= step
            after_balance -= step
            session.add(PointsMovement(member_id=member_id, kind=PointsKind.SPENT.value, points=-step,
                                       balance_after=after_balance, order_id=order_id, lot_id=lot.id,
                                       reference=f"points_spent:{order_id}", note="", created_at=take.params["now"]))
            left -= step
            if not left:
                break
        if left:  # balance and lots disagree: never spend what is not there (the caller's transaction rolls back)
            raise PointsInsufficient("not enough points", available=points - left)
    return after


async def _spend_after_expiry(session: AsyncSession, member_id: int, order_id: int, points: int, now: dt.datetime,
                              reference: str, value: int) -> None:
    account = await account_of(session, member_id)
    lots = await _lots(session, member_id)  # under the account lock: expire the due ones, spend from the rest
    await expire_due(session, account, now, lots=lots, point_value_cents=value)
    if account.points_balance < points:
        raise PointsInsufficient("not enough points any more: they were spent or expired since the price was shown",
                                 available=max(0, account.points_balance))
    left = points
    for lot in lots:
        if not lot.remaining:
            continue  # expired just now
        take = min(left, lot.remaining)
        lot.remaining -= take
        _move(session, account, PointsKind.SPENT, -take, reference=reference, now=now, order_id=order_id,
              lot_id=lot.id)
        left -= take
        if not left:
            break
    if left:  # balance and lots disagree: never spend what is not there
        raise PointsInsufficient("not enough points", available=points - left)
