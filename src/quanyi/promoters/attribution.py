"""Distribution (分销) attribution: which promoter brought an order, and who earns commission on it.

- A member who arrives by a promoter's link is bound to it (锁粉) for `attribution_days` (`bind_member`).
- At checkout `attribute_order` fixes the promoter (binding first, then the link or the code the API was given)
  and, with two levels, whoever recruited that promoter. No self-referral: an order whose contact or member is the
  promoter's own earns it nothing (an explicit code is refused with 422, a cookie is ignored).
- Commission is posted by the ledger on delivery (`ledger.order_events`); `commission_recipients` tells it who
  earns and the margin rule.
Promoters and the programme themselves: `service.py`; balances and withdrawals: `settlement.py`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Integer, and_, bindparam, func, literal, select
from sqlalchemy.ext.asyncio import AsyncSession

from quanyi.db import utcnow
from quanyi.orders.models import Order
from quanyi.promoters.models import (
    AttributionSource,
    OrderAttribution,
    Promoter,
    PromoterBinding,
    PromoterProgram,
    PromoterStatus,
)
from quanyi.promoters.service import (
    PromoterNotFound,
    SelfReferral,
    UnknownPromoterCode,
    get_program,
    get_promoter,
)

__all__ = [
    "CommissionRecipients", "NO_RECIPIENTS", "active_binding", "program_binding_parts",
    "remember_program_and_binding", "bind_member", "attribute_order", "attribution_of", "commission_recipients",
    "attributed_orders",
]


@dataclass(frozen=True, slots=True)
class CommissionRecipients:
    """Who earns commission on an order at delivery (promoter codes; None: nobody at that level)."""

    level1: str | None = None
    level2: str | None = None
    max_margin_share_bps: int = 10_000


NO_RECIPIENTS = CommissionRecipients()


# ---------------------------------------------------------------- attribution

async def active_binding(*, session: AsyncSession, member_id: int, now: dt.datetime | None = None) -> Promoter | None:
    """The approved promoter this member is bound to, while the binding lasts."""
    now = now or utcnow()
    return await session.scalar(
        select(Promoter).join(PromoterBinding, PromoterBinding.promoter_id == Promoter.id)
        .where(PromoterBinding.member_id == member_id, PromoterBinding.expires_at > now,
               Promoter.status == PromoterStatus.APPROVED))


@dataclass(frozen=True, slots=True)
class _Programme:
    """What attribution needs of the programme's settings (read as columns, no ORM rows)."""

    enabled: bool
    levels: int


@dataclass(frozen=True, slots=True)
class _BoundPromoter:
    """What attribution needs of the approved promoter a member is bound to (read as columns, no ORM rows)."""

    id: int
    code: str
    contact: str
    member_id: int | None
    parent_id: int | None


_PROGRAM_AND_BINDING = "quanyi.promoters.program_and_binding"


def program_binding_parts(member_id: Any, now: Any) -> tuple[tuple[Any, ...], Callable[[Any], Any]]:
    """The programme's settings and `active_binding`'s promoter as columns (in `remember_program_and_binding`'s
    order) and the outer joins that give them onto a FROM clause, for `member_id` and `now` (binds, or columns of
    a statement this read is part of: a member's checkout reads it with its other facts, orders.member_checkout)."""
    columns = (PromoterProgram.id, PromoterProgram.enabled, PromoterProgram.levels, Promoter.id, Promoter.code,
               Promoter.contact, Promoter.member_id, Promoter.parent_id)

    def joined(source: Any) -> Any:
        return (source.outerjoin(PromoterProgram, PromoterProgram.id == 1)
                .outerjoin(PromoterBinding, and_(PromoterBinding.member_id == member_id,
                                                 PromoterBinding.expires_at > now))
                .outerjoin(Promoter, and_(Promoter.id == PromoterBinding.promoter_id,
                                          Promoter.status == PromoterStatus.APPROVED)))

    return columns, joined


def _program_and_binding_statement() -> Any:
    one = select(literal(1).label("one")).subquery("one")
    columns, joined = program_binding_parts(bindparam("member_id", type_=Integer()),
                                            bindparam("now", type_=PromoterBinding.expires_at.type))
    return select(*columns).select_from(joined(one))


_PROGRAM_BINDING = _program_and_binding_statement()


def remember_program_and_binding(session: AsyncSession, member_id: int, now: dt.datetime,
                                 row: Sequence[Any]) -> tuple[_Programme, _BoundPromoter | None]:
    """The programme and binding of `program_binding_parts`' columns as read for this checkout (`row`), kept on the
    session for `attribute_order` at the same `now`."""
    program_id, enabled, levels, promoter_id, code, contact, promoter_member_id, parent_id = row
    program = _Programme(True, 1) if program_id is None else _Programme(bool(enabled), int(levels))
    promoter = (None if promoter_id is None
                else _BoundPromoter(promoter_id, code, contact, promoter_member_id, parent_id))
    session.info[_PROGRAM_AND_BINDING] = (member_id, now, program, promoter)
    return program, promoter


async def _program_and_binding(session: AsyncSession, member_id: int,
                               now: dt.datetime) -> tuple[_Programme, _BoundPromoter | None]:
    """The programme's settings and `active_binding`'s promoter, in one statement (a member's checkout), unless
    this checkout read them already."""
    known = session.info.pop(_PROGRAM_AND_BINDING, None)
    if known is not None and known[:2] == (member_id, now):
        return known[2], known[3]
    row = (await session.execute(_PROGRAM_BINDING, {"member_id": member_id, "now": now})).one()
    return remember_program_and_binding(session, member_id, now, tuple(row))


async def bind_member(*, session: AsyncSession, member_id: int, code: str,
                      now: dt.datetime | None = None) -> Promoter | None:
    """Bind a member to the promoter whose link brought them (first promoter wins while its binding lasts; a
    promoter is never bound to itself). Returns the promoter the member is bound to now, or None."""
    now = now or utcnow()
    program = await get_program(session)
    current = await active_binding(session=session, member_id=member_id, now=now)
    if current is not None or not program.enabled:
        return current
    try:
        promoter = await get_promoter(session=session, code=code)
    except PromoterNotFound:
        return None
    if promoter.status != PromoterStatus.APPROVED or promoter.member_id == member_id:
        return None
    binding = await session.get(PromoterBinding, member_id, with_for_update=True)
    expires = now + dt.timedelta(days=program.attribution_days)
    if binding is None:
        session.add(PromoterBinding(member_id=member_id, promoter_id=promoter.id, bound_at=now, expires_at=expires))
    else:  # the old binding ran out (or its promoter was stopped): the new link takes over
        binding.promoter_id, binding.bound_at, binding.expires_at = promoter.id, now, expires
    await session.flush()
    return promoter


def _own_order(promoter: Promoter | _BoundPromoter, order: Order, member_id: int | None) -> bool:
    return promoter.contact == order.contact or (member_id is not None and promoter.member_id == member_id)


async def attribute_order(*, session: AsyncSession, order: Order, code: str | None = None,
                          source: AttributionSource = AttributionSource.CODE, member_id: int | None = None,
                          now: dt.datetime | None = None) -> OrderAttribution | None:
    """Fix which promoter brought this new order (in its checkout transaction): the member's binding, else
    `code` (from the link's cookie, or named by the API caller). A code the caller named must be an approved
    promoter's and not the buyer's own (UnknownPromoterCode / SelfReferral, 422); a stale cookie is ignored.
    Sets the order's `distributor_code`; returns the attribution or None."""
    now = now or utcnow()
    if code is None and member_id is None:
        return None
    named = source is AttributionSource.CODE and code is not None
    promoter = None
    if member_id is None:
        program = await get_program(session)
    else:
        program, promoter = await _program_and_binding(session, member_id, now)
        if not program.enabled:
            promoter = None
        if promoter is not None:
            source = AttributionSource.BINDING
    if promoter is None and code is not None:
        try:
            promoter = await get_promoter(session=session, code=code)
        except PromoterNotFound:
            promoter = None
        if promoter is None or promoter.status != PromoterStatus.APPROVED:
            if named:
                raise UnknownPromoterCode("no approved promoter has this code", field="distributor_code")
            return None
    if promoter is None or not program.enabled:
        return None
    if _own_order(promoter, order, member_id):
        if named:
            raise SelfReferral("a promoter earns no commission on its own orders", field="distributor_code")
        return None
    parent_id = None
    if program.levels == 2 and promoter.parent_id is not None:
        parent = await session.get(Promoter, promoter.parent_id)
        if parent is not None and parent.status == PromoterStatus.APPROVED and not _own_order(parent, order, member_id):
            parent_id = parent.id
    attribution = OrderAttribution(order_id=order.id, promoter_id=promoter.id, parent_id=parent_id,
                                   source=source.value, created_at=now)
    session.add(attribution)
    order.distributor_code = promoter.code
    await session.flush()
    return attribution


async def attribution_of(*, session: AsyncSession, order_id: int) -> OrderAttribution | None:
    return await session.get(OrderAttribution, order_id)


async def commission_recipients(*, session: AsyncSession,
                                orders: Sequence[Order]) -> dict[int, CommissionRecipients]:
    """For the delivery posting: who earns commission on each order (approved promoters only: a promoter
    suspended before delivery earns nothing on it) and the margin rule. No query for unattributed orders."""
    result = {order.id: NO_RECIPIENTS for order in orders}
    attributed = [order for order in orders if order.distributor_code]
    if not attributed:
        return result
    program = await get_program(session)
    parents = dict((await session.execute(
        select(OrderAttribution.order_id, OrderAttribution.parent_id)
        .where(OrderAttribution.order_id.in_([order.id for order in attributed])))).all())
    codes = {order.distributor_code for order in attributed}
    rows = (await session.execute(
        select(Promoter.id, Promoter.code, Promoter.status)
        .where((Promoter.code.in_(codes)) | (Promoter.id.in_([p for p in parents.values() if p is not None]))))).all()
    approved_codes = {code for _, code, status in rows if status == PromoterStatus.APPROVED}
    approved_ids = {id_: code for id_, code, status in rows if status == PromoterStatus.APPROVED}
    for order in attributed:
        level1 = order.distributor_code if order.distributor_code in approved_codes else None
        level2 = approved_ids.get(parents.get(order.id))  # type: ignore[arg-type]
        if level1 or level2:
            result[order.id] = CommissionRecipients(level1, level2, program.max_margin_share_bps)
    return result


async def attributed_orders(*, session: AsyncSession, promoter: Promoter) -> int:
    """How many orders this promoter brought (level 1)."""
    return int(await session.scalar(select(func.count()).select_from(OrderAttribution)
                                    .where(OrderAttribution.promoter_id == promoter.id)) or 0)


