"""Points (积分): earned on delivery, spent at checkout through the price calculation, returned when the order
that spent them is cancelled, expired at the end of the following year(s), clawed back by refunds.

Every change locks the member's `loyalty_member` row first (one member's points change one at a time), writes
the journal (`loyalty_points_movement`) and posts the value to the ledger in the same transaction:

| event | debit | credit |
|---|---|---|
| earned (issued) | `points_cost` | `points_liability` |
| spent (redeemed), expired, clawed back | `points_liability` | `points_cost` |
| returned (an unpaid order's points given back) | `points_cost` | `points_liability` |

`points_liability` is what outstanding points are worth (balance × point value); `points_cost` carries the
same amount as the cost of points not yet used. A spent point's real cost is the discount on its order (the
order's revenue is what was paid), so redemption releases the provision instead of booking it twice.

Clawback on refund: the points an order earned are taken back in the refunded share (rounded down), from that
order's lot first, then from the member's other points; if the member has already spent them, the balance goes
below zero (a stated debt, shown on the account page): nothing can be spent until later earnings pay it back.
A refund the gateway refused gives the points back (the clawback follows the refunds that stand).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from quanyi.db import utcnow
from quanyi.errors import Conflict, InvalidInput
from quanyi.ledger import accounts
from quanyi.ledger.postings import Line, post
from quanyi.loyalty import levels
from quanyi.loyalty.models import LoyaltyProgram, MemberLoyalty, PointsKind, PointsLot, PointsMovement
from quanyi.orders.models import Order
from quanyi.shoptime import zone_of

__all__ = ["PointsInsufficient", "InvalidLoyalty", "ProgramUpdate", "get_program", "update_program", "account_of",
           "available_points", "return_for_order", "earn_for_delivered", "clawback_for_refunds",
           "expire_due", "expire_all_due", "adjust", "movements", "expiry_for",
           "liability_drift", "points_lines"]

_CURRENCY = "CNY"  # points are valued in the shop's currency
_OPEN_REFUNDS = ("requested", "processing", "succeeded")


class PointsInsufficient(Conflict):
    code = "points_insufficient"


class InvalidLoyalty(InvalidInput):
    code = "invalid_loyalty"


async def get_program(session: AsyncSession, *, lock: bool = False) -> LoyaltyProgram:
    stmt = select(LoyaltyProgram).where(LoyaltyProgram.id == 1)
    if lock:
        stmt = stmt.with_for_update()
    program = await session.scalar(stmt)
    if program is None:
        program = LoyaltyProgram(id=1, points_enabled=True, points_per_yuan=1, point_value_cents=1,
                                 max_points_share_bps=5000, expiry_years=1, updated_by="", updated_at=utcnow())
        if lock:
            session.add(program)
            await session.flush()
    return program


@dataclass(frozen=True, slots=True)
class ProgramUpdate:
    points_enabled: bool | None = None
    points_per_yuan: int | None = None
    point_value_cents: int | None = None
    max_points_share_bps: int | None = None
    expiry_years: int | None = None


_LIMITS = {"points_per_yuan": (0, 10_000), "point_value_cents": (1, 10_000), "max_points_share_bps": (0, 10_000),
           "expiry_years": (1, 10)}


async def update_program(*, session: AsyncSession, data: ProgramUpdate, actor: str,
                         now: dt.datetime | None = None) -> LoyaltyProgram:
    """Change the points rules. A new point value revalues the outstanding points in the ledger at once."""
    now = now or utcnow()
    for field, (low, high) in _LIMITS.items():
        value = getattr(data, field)
        if value is not None and not low <= value <= high:
            raise InvalidLoyalty(f"{field} must be between {low} and {high}", field=field)
    program = await get_program(session, lock=True)
    old_value = program.point_value_cents
    for field in ("points_enabled", *_LIMITS):
        value = getattr(data, field)
        if value is not None:
            setattr(program, field, value)
    program.updated_by, program.updated_at = actor[:64], now
    if program.point_value_cents != old_value:
        outstanding = int(await session.scalar(select(func.coalesce(func.sum(MemberLoyalty.points_balance), 0)))
                          or 0)
        delta = outstanding * (program.point_value_cents - old_value)
        await post(session, reference=f"points_revalued:{now.isoformat()}", kind="points_revalued", now=now,
                   actor=actor, memo=f"point value {old_value} -> {program.point_value_cents} cents",
                   lines=[Line(accounts.POINTS_COST, delta, _CURRENCY),
                          Line(accounts.POINTS_LIABILITY, -delta, _CURRENCY)])
    await session.flush()
    return program


def expiry_for(earned_at: dt.datetime, years: int, session: AsyncSession) -> dt.datetime:
    """Points earned at `earned_at` expire at the start of the shop's year `years + 1` later (1: end of next year)."""
    zone = zone_of(session)
    local = earned_at.astimezone(zone)
    return dt.datetime(local.year + years + 1, 1, 1, tzinfo=zone).astimezone(dt.UTC)


async def account_of(session: AsyncSession, member_id: int, *, lock: bool = True) -> MemberLoyalty:
    """The member's loyalty row (made on first use), locked: one member's points change one at a time."""
    stmt = select(MemberLoyalty).where(MemberLoyalty.member_id == member_id)
    if lock:
        stmt = stmt.with_for_update().execution_options(populate_existing=True)
    account = await session.scalar(stmt)
    if account is not None:
        return account
    try:
        async with session.begin_nested():  # a concurrent first use wins the primary key; we read its row
            session.add(MemberLoyalty(member_id=member_id, points_balance=0, paid_total_cents=0, updated_at=utcnow()))
            await session.flush()
    except IntegrityError:
        pass
    account = await session.scalar(stmt)
    assert account is not None
    return account


async def _post(session: AsyncSession, *, reference: str, kind: str, points: int, value_cents: int,
                order_id: int | None, memo: str, now: dt.datetime, actor: str = "system", new: bool = False) -> None:
    """Points in (+: issued or given back) or out (-: spent, expired, clawed back) at `value_cents` each.
    `new`: the reference is of something made in this transaction (ledger.postings.post)."""
    await post(session, reference=reference, kind=kind, order_id=order_id, now=now, memo=memo, actor=actor, new=new,
               lines=points_lines(points, value_cents))


def points_lines(points: int, value_cents: int) -> list[Line]:
    """The ledger lines of points in (+) or out (-) at `value_cents` each."""
    amount = points * value_cents
    return [Line(accounts.POINTS_COST, amount, _CURRENCY), Line(accounts.POINTS_LIABILITY, -amount, _CURRENCY)]


def _move(session: AsyncSession, account: MemberLoyalty, kind: PointsKind, points: int, *, reference: str,
          now: dt.datetime, order_id: int | None = None, lot_id: int | None = None, note: str = "") -> None:
    account.points_balance += points
    account.updated_at = now
    session.add(PointsMovement(member_id=account.member_id, kind=kind.value, points=points,
                               balance_after=account.points_balance, order_id=order_id, lot_id=lot_id,
                               reference=reference, note=note[:500], created_at=now))


async def _lots(session: AsyncSession, member_id: int) -> list[PointsLot]:
    return list((await session.scalars(select(PointsLot).where(
        PointsLot.member_id == member_id, PointsLot.remaining > 0)
        .order_by(PointsLot.expires_at, PointsLot.id))).all())


async def expire_due(session: AsyncSession, account: MemberLoyalty, now: dt.datetime, *,
                     lots: list[PointsLot] | None = None, point_value_cents: int | None = None) -> int:
    """Expire the member's lots due by `now` (the caller holds the account lock). Returns points expired.
    `lots`: the member's lots with points left, oldest-expiring first, as the caller just read them under the
    lock (read here otherwise); `point_value_cents`: the programme's, as the caller read it."""
    if point_value_cents is None:
        point_value_cents = (await get_program(session)).point_value_cents
    expired = 0
    for lot in lots if lots is not None else await _lots(session, account.member_id):
        if lot.expires_at > now:
            break
        points, lot.remaining = lot.remaining, 0
        reference = f"points_expired:{lot.id}"
        _move(session, account, PointsKind.EXPIRED, -points, reference=reference, now=now, lot_id=lot.id,
              note=f"earned {lot.created_at.date().isoformat()}, expired")
        await _post(session, reference=reference, kind="points_expired", points=-points,
                    value_cents=point_value_cents, order_id=None, now=now,
                    memo=f"{points} points of member {account.member_id} expired")
        expired += points
    return expired


async def expire_all_due(*, session: AsyncSession, now: dt.datetime | None = None, limit: int = 1000) -> int:
    """The expiry sweep (`quanyi points expire`): every member with lots due. Returns points expired."""
    now = now or utcnow()
    members = (await session.scalars(select(PointsLot.member_id).where(
        PointsLot.remaining > 0, PointsLot.expires_at <= now).distinct().limit(limit))).all()
    total = 0
    for member_id in members:
        total += await expire_due(session, await account_of(session, member_id), now)
    return total


async def available_points(session: AsyncSession, member_id: int, now: dt.datetime) -> int:
    """Points the member could spend now (reads only: lots due to expire already count as gone)."""
    balance = await session.scalar(select(MemberLoyalty.points_balance).where(MemberLoyalty.member_id == member_id))
    due = await session.scalar(select(func.coalesce(func.sum(PointsLot.remaining), 0)).where(
        PointsLot.member_id == member_id, PointsLot.remaining > 0, PointsLot.expires_at <= now))
    return max(0, int(balance or 0) - int(due or 0))


async def _order_sum(session: AsyncSession, order_id: int, *kinds: PointsKind) -> int:
    return int(await session.scalar(select(func.coalesce(func.sum(PointsMovement.points), 0)).where(
        PointsMovement.order_id == order_id, PointsMovement.kind.in_([k.value for k in kinds]))) or 0)


async def return_for_order(*, session: AsyncSession, order_id: int, reason: str,
                           now: dt.datetime | None = None) -> int:
    """Give back what the order spent and has not had back (cancelled, reservation expired, refunded before
    delivery). Idempotent: a second call finds nothing left to return. Returns points given back."""
    now = now or utcnow()
    member_id = await session.scalar(select(PointsMovement.member_id).where(
        PointsMovement.order_id == order_id, PointsMovement.kind == PointsKind.SPENT.value).limit(1))
    if member_id is None:
        return 0
    account = await account_of(session, member_id)  # the lock, then read again: a concurrent return went first
    per_lot: dict[int | None, int] = {}
    for lot_id, points in (await session.execute(
            select(PointsMovement.lot_id, PointsMovement.points).where(
                PointsMovement.order_id == order_id,
                PointsMovement.kind.in_([PointsKind.SPENT.value, PointsKind.RETURNED.value])))).all():
        per_lot[lot_id] = per_lot.get(lot_id, 0) - points
    owed = {lot_id: n for lot_id, n in per_lot.items() if n > 0}
    if not owed:
        return 0
    program = await get_program(session)
    count = int(await session.scalar(select(func.count()).select_from(PointsMovement).where(
        PointsMovement.order_id == order_id, PointsMovement.kind == PointsKind.RETURNED.value)) or 0)
    reference = f"points_returned:{order_id}:{count + 1}"
    for lot_id, n in owed.items():
        lot = await session.get(PointsLot, lot_id) if lot_id is not None else None
        if lot is not None:
            lot.remaining = min(lot.points, lot.remaining + n)  # a lot past expiry is expired on next use
        _move(session, account, PointsKind.RETURNED, n, reference=reference, now=now, order_id=order_id,
              lot_id=lot_id, note=reason)
    total = sum(owed.values())
    await _post(session, reference=reference, kind="points_returned", points=total,
                value_cents=program.point_value_cents, order_id=order_id, now=now,
                memo=f"{total} points of order {order_id} returned: {reason}")
    await expire_due(session, account, now)
    return total


async def _member_paid_total(session: AsyncSession, member_id: int) -> int:
    """What the member has paid for delivered orders, net of refunds (the basis of levels)."""
    return int(await session.scalar(select(func.coalesce(func.sum(Order.total_cents - Order.refunded_cents), 0))
                                    .where(Order.member_id == member_id, Order.delivered_at.is_not(None))) or 0)


async def earn_for_delivered(*, session: AsyncSession, orders: Sequence[Order], now: dt.datetime | None = None) -> None:
    """On delivery: each member's order earns paid ÷ ¥1 × points per yuan × the level's multiplier (rounded
    down); the member's cumulative paid amount grows and the level is upgraded when reached. Idempotent per
    order. Guests' orders read nothing."""
    mine = [o for o in orders if o.member_id is not None and o.customer_account_id is None]
    if not mine:
        return
    now = now or utcnow()
    program = await get_program(session)
    earned = set((await session.scalars(select(PointsMovement.order_id).where(
        PointsMovement.order_id.in_([o.id for o in mine]), PointsMovement.kind == PointsKind.EARNED.value))).all())
    for order in sorted(mine, key=lambda o: (o.member_id, o.id)):  # lock members in one order: no deadlock
        if order.id in earned:
            continue
        account = await account_of(session, order.member_id)  # type: ignore[arg-type]
        level = await levels.level_of(session, account)
        multiplier = level.points_multiplier_bps if level is not None else 10_000
        points = order.total_cents * program.points_per_yuan * multiplier // 1_000_000 \
            if program.points_enabled and order.currency == _CURRENCY else 0
        if points > 0:
            debt = max(0, -account.points_balance)  # a clawback debt is paid back first
            lot = PointsLot(member_id=account.member_id, order_id=order.id, points=points,
                            remaining=max(0, points - debt),
                            expires_at=expiry_for(order.delivered_at or now, program.expiry_years, session),
                            created_at=now)
            session.add(lot)
            await session.flush()
            reference = f"points_earned:{order.order_no}"
            _move(session, account, PointsKind.EARNED, points, reference=reference, now=now, order_id=order.id,
                  lot_id=lot.id, note=f"× {multiplier / 10_000:g}" if multiplier != 10_000 else "")
            await _post(session, reference=reference, kind="points_earned", points=points,
                        value_cents=program.point_value_cents, order_id=order.id, now=now,
                        memo=f"{points} points earned by order {order.order_no}")
        else:  # a marker, so a second delivery event earns nothing either
            _move(session, account, PointsKind.EARNED, 0, reference=f"points_earned:{order.order_no}", now=now,
                  order_id=order.id)
        account.paid_total_cents = await _member_paid_total(session, account.member_id)
        await levels.upgrade(session, account, now)


async def clawback_for_refunds(*, session: AsyncSession, order: Order, now: dt.datetime | None = None) -> int:
    """Make the points the order earned match the refunds that stand: take back the refunded share (or give it
    back when a refund was refused). Returns the change (negative: taken back)."""
    if order.member_id is None:
        return 0
    earned = await _order_sum(session, order.id, PointsKind.EARNED)
    if earned <= 0:
        return 0
    from quanyi.payments.models import Payment, PaymentStatus
    from quanyi.refunds.models import Refund

    now = now or utcnow()
    account = await account_of(session, order.member_id)
    refunded = int(await session.scalar(
        select(func.coalesce(func.sum(Refund.amount_cents), 0)).join(Payment, Payment.id == Refund.payment_id)
        .where(Refund.order_id == order.id, Refund.status.in_(_OPEN_REFUNDS),
               Payment.status != PaymentStatus.DUPLICATE.value)) or 0)
    target = earned * min(refunded, order.total_cents) // order.total_cents if order.total_cents else 0
    already = -await _order_sum(session, order.id, PointsKind.CLAWED_BACK)
    delta = target - already
    if delta == 0:
        return 0
    program = await get_program(session)
    count = int(await session.scalar(select(func.count()).select_from(PointsMovement).where(
        PointsMovement.order_id == order.id, PointsMovement.kind == PointsKind.CLAWED_BACK.value)) or 0)
    reference = f"points_clawback:{order.order_no}:{count + 1}"
    if delta > 0:  # take back: this order's lot first, then the oldest-expiring others, then a stated debt
        left = delta
        lots = await _lots(session, account.member_id)
        lots.sort(key=lambda lot: (lot.order_id != order.id, lot.expires_at, lot.id))
        for lot in lots:
            take = min(left, lot.remaining)
            if take:
                lot.remaining -= take
                _move(session, account, PointsKind.CLAWED_BACK, -take, reference=reference, now=now,
                      order_id=order.id, lot_id=lot.id, note="refund")
                left -= take
            if not left:
                break
        if left:
            _move(session, account, PointsKind.CLAWED_BACK, -left, reference=reference, now=now, order_id=order.id,
                  note=f"refund: {left} points already spent, owed (paid back from future points)")
    else:  # a refund was refused: the points come back to this order's lot
        lot = await session.scalar(select(PointsLot).where(PointsLot.order_id == order.id,
                                                           PointsLot.member_id == account.member_id))
        give = -delta
        if lot is not None:
            lot.remaining = min(lot.points, lot.remaining + give)
        _move(session, account, PointsKind.CLAWED_BACK, give, reference=reference, now=now, order_id=order.id,
              lot_id=lot.id if lot else None, note="refund refused: points given back")
    await _post(session, reference=reference, kind="points_clawback", points=-delta,
                value_cents=program.point_value_cents, order_id=order.id, now=now,
                memo=f"order {order.order_no}: {delta} points clawed back for refunds")
    account.paid_total_cents = await _member_paid_total(session, account.member_id)
    return -delta


async def adjust(*, session: AsyncSession, member_id: int, points: int, reason: str, actor: str,
                 now: dt.datetime | None = None) -> MemberLoyalty:
    """An operator's correction (+ gift / - deduction, never below zero), with a reason; added points expire
    like earned ones."""
    now = now or utcnow()
    reason = reason.strip()
    if not reason or points == 0:
        raise InvalidLoyalty("give a non-zero number of points and a reason")
    program = await get_program(session)
    account = await account_of(session, member_id)
    await expire_due(session, account, now)
    count = int(await session.scalar(select(func.count()).select_from(PointsMovement).where(
        PointsMovement.member_id == member_id, PointsMovement.kind == PointsKind.ADJUSTED.value)) or 0)
    reference = f"points_adjusted:{member_id}:{count + 1}"
    if points > 0:
        lot = PointsLot(member_id=member_id, order_id=None, points=points, remaining=points,
                        expires_at=expiry_for(now, program.expiry_years, session), created_at=now)
        session.add(lot)
        await session.flush()
        _move(session, account, PointsKind.ADJUSTED, points, reference=reference, now=now, lot_id=lot.id, note=reason)
    else:
        if account.points_balance < -points:
            raise PointsInsufficient("the member does not have that many points", available=account.points_balance)
        left = -points
        for lot in await _lots(session, member_id):
            take = min(left, lot.remaining)
            lot.remaining -= take
            _move(session, account, PointsKind.ADJUSTED, -take, reference=reference, now=now, lot_id=lot.id,
                  note=reason)
            left -= take
            if not left:
                break
    await _post(session, reference=reference, kind="points_adjusted", points=points, actor=actor,
                value_cents=program.point_value_cents, order_id=None, now=now, memo=f"{actor}: {reason}")
    return account


async def movements(*, session: AsyncSession, member_id: int, limit: int = 50) -> Sequence[PointsMovement]:
    """The member's points journal, newest first (zero-point markers left out)."""
    return (await session.scalars(select(PointsMovement).where(
        PointsMovement.member_id == member_id, PointsMovement.points != 0)
        .order_by(PointsMovement.id.desc()).limit(limit))).all()


async def liability_drift(*, session: AsyncSession) -> int:
    """Ledger `points_liability` + (sum of balances × point value): 0 when the books and the balances agree."""
    from quanyi.ledger.postings import account_balances

    program = await get_program(session)
    ledger = sum((await account_balances(session, prefix=accounts.POINTS_LIABILITY)).values())
    outstanding = int(await session.scalar(select(func.coalesce(func.sum(MemberLoyalty.points_balance), 0))) or 0)
    return ledger + outstanding * program.point_value_cents

