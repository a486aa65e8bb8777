"""Distribution (分销): the programme, promoters (推广员) and which promoter brought an order (attribution).

- A member applies (or an operator adds a partner); the operator approves, or the programme approves at once.
- A promoter's link `/r/CODE` puts its code in the buyer's cookie for `attribution_days`; a member who arrives
  that way is bound to it (锁粉) for the same window. At checkout `attribute_order` fixes the promoter (binding
  first, then the link or the code the API was given) and, with two levels, whoever recruited that promoter.
- No self-referral: an order whose contact or member is the promoter's own earns it nothing (an explicit code
  is refused with 422, a cookie is ignored).
- Commission is posted by the ledger on delivery (`ledger.order_events`, rates from the profit-sharing rules);
  `commission_recipients` tells it who earns and the margin rule. Balances and withdrawals: `settlement.py`.
"""

from __future__ import annotations

import datetime as dt
import re
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Integer, and_, bindparam, func, literal, select
from sqlalchemy.ext.asyncio import AsyncSession

from quanyi.db import utcnow
from quanyi.errors import Conflict, InvalidInput, NotFound
from quanyi.orders.contact import normalize_contact
from quanyi.orders.models import Order
from quanyi.promoters.models import (
    AttributionSource,
    OrderAttribution,
    Promoter,
    PromoterBinding,
    PromoterProgram,
    PromoterStatus,
)

__all__ = [
    "PromoterNotFound", "InvalidPromoter", "PromoterConflict", "UnknownPromoterCode", "SelfReferral",
    "CommissionRecipients", "NO_RECIPIENTS", "ProgramUpdate", "get_program", "update_program", "normalize_code",
    "add_promoter", "apply", "approve", "reject", "suspend", "reinstate", "get_promoter", "promoter_for_member",
    "list_promoters", "attribute_order", "bind_member", "active_binding", "commission_recipients",
    "attribution_of", "attributed_orders", "promotion_link",
]

CODE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$"
_CODE = re.compile(CODE_PATTERN)
_ALPHABET = "23456789ABCDEFGHJKMNPQRSTVWXYZ"  # no 0/O, 1/I/L: read aloud and typed from a poster


class PromoterNotFound(NotFound):
    code = "promoter_not_found"


class InvalidPromoter(InvalidInput):
    code = "invalid_promoter"


class PromoterConflict(Conflict):
    code = "promoter_conflict"


class UnknownPromoterCode(InvalidInput):
    code = "unknown_promoter_code"


class SelfReferral(InvalidInput):
    code = "self_referral"


@dataclass(frozen=True, slots=True)
class CommissionRecipients:
    """Who earns commission on an order at delivery (promoter codes; None: nobody at that level)."""

    level1: str | None = None
    level2: str | None = None
    max_margin_share_bps: int = 10_000


NO_RECIPIENTS = CommissionRecipients()


# ---------------------------------------------------------------- the programme

def _default_program() -> PromoterProgram:
    return PromoterProgram(id=1, enabled=True, auto_approve=False, levels=1, attribution_days=30, hold_days=7,
                           max_margin_share_bps=10_000, min_withdrawal_cents=100, updated_by="", updated_at=utcnow())


async def get_program(session: AsyncSession, *, lock: bool = False) -> PromoterProgram:
    """The programme's settings (defaults until an operator saves them)."""
    stmt = select(PromoterProgram).where(PromoterProgram.id == 1)
    if lock:
        stmt = stmt.with_for_update()
    program = await session.scalar(stmt)
    if program is None:
        program = _default_program()
        if lock:
            session.add(program)
            await session.flush()
    return program


@dataclass(frozen=True, slots=True)
class ProgramUpdate:
    enabled: bool | None = None
    auto_approve: bool | None = None
    levels: int | None = None
    attribution_days: int | None = None
    hold_days: int | None = None
    max_margin_share_bps: int | None = None
    min_withdrawal_cents: int | None = None


_LIMITS = {"levels": (1, 2), "attribution_days": (1, 365), "hold_days": (0, 365),
           "max_margin_share_bps": (0, 10_000), "min_withdrawal_cents": (1, 10**12)}


async def update_program(*, session: AsyncSession, data: ProgramUpdate, actor: str,
                         now: dt.datetime | None = None) -> PromoterProgram:
    """Change the programme's settings (only the fields given)."""
    for field, (low, high) in _LIMITS.items():
        value = getattr(data, field)
        if value is not None and not low <= value <= high:
            raise InvalidPromoter(f"{field} must be between {low} and {high}", field=field)
    program = await get_program(session, lock=True)
    for field in ("enabled", "auto_approve", *_LIMITS):
        value = getattr(data, field)
        if value is not None:
            setattr(program, field, value)
    program.updated_by, program.updated_at = actor[:64], now or utcnow()
    await session.flush()
    return program


# ---------------------------------------------------------------- promoters

def normalize_code(code: str) -> str:
    """Promoter codes are case-insensitive (typed from posters): stored and compared in upper case."""
    code = code.strip()
    if not _CODE.fullmatch(code):
        raise InvalidPromoter("a promoter code is 1-32 letters, digits, '_' or '-', starting with a letter or digit",
                              field="code")
    return code.upper()


def _contact(contact: str) -> str:
    try:
        return normalize_contact(contact)[1]
    except ValueError as exc:
        raise InvalidPromoter(str(exc), field="contact") from None


def _name(name: str) -> str:
    name = " ".join(name.split())
    if not 1 <= len(name) <= 100:
        raise InvalidPromoter("a name of 1-100 characters is required", field="name")
    return name


async def _new_code(session: AsyncSession) -> str:
    while True:
        code = "".join(secrets.choice(_ALPHABET) for _ in range(8))
        if await session.scalar(select(Promoter.id).where(Promoter.code == code)) is None:
            return code


async def get_promoter(*, session: AsyncSession, code: str, lock: bool = False) -> Promoter:
    try:
        canonical = normalize_code(code)
    except InvalidPromoter:
        raise PromoterNotFound(f"no promoter {code!r}") from None
    stmt = select(Promoter).where(Promoter.code == canonical)
    if lock:
        stmt = stmt.with_for_update().execution_options(populate_existing=True)
    promoter = await session.scalar(stmt)
    if promoter is None:
        raise PromoterNotFound(f"no promoter {code!r}")
    return promoter


async def promoter_for_member(*, session: AsyncSession, member_id: int) -> Promoter | None:
    return await session.scalar(select(Promoter).where(Promoter.member_id == member_id))


async def list_promoters(*, session: AsyncSession, status: str | None = None, limit: int = 500) -> Sequence[Promoter]:
    stmt = select(Promoter).order_by(Promoter.id.desc()).limit(limit)
    if status is not None:
        stmt = stmt.where(Promoter.status == status)
    return (await session.scalars(stmt)).all()


async def _parent(session: AsyncSession, referrer_code: str | None, contact: str,
                  member_id: int | None) -> Promoter | None:
    """The approved promoter who recruited a new one (not the applicant themself)."""
    if not referrer_code:
        return None
    try:
        parent = await get_promoter(session=session, code=referrer_code)
    except PromoterNotFound:
        return None
    if parent.status != PromoterStatus.APPROVED or parent.contact == contact \
            or (member_id is not None and parent.member_id == member_id):
        return None
    return parent


async def add_promoter(*, session: AsyncSession, name: str, contact: str, actor: str, code: str | None = None,
                       parent_code: str | None = None, member_id: int | None = None,
                       now: dt.datetime | None = None) -> Promoter:
    """An operator adds a promoter (a partner, a KOL), approved at once. `code`: its own code, else generated."""
    now = now or utcnow()
    contact_value = _contact(contact)
    canonical = normalize_code(code) if code else await _new_code(session)
    if await session.scalar(select(Promoter.id).where(Promoter.code == canonical)) is not None:
        raise PromoterConflict(f"promoter code {canonical} is taken", field="code")
    if member_id is not None and await promoter_for_member(session=session, member_id=member_id) is not None:
        raise PromoterConflict("this member is already a promoter")
    parent = None
    if parent_code:
        parent = await _parent(session, parent_code, contact_value, member_id)
        if parent is None:
            raise InvalidPromoter(f"{parent_code!r} is not an approved promoter other than this one",
                                  field="parent_code")
    promoter = Promoter(code=canonical, name=_name(name), contact=contact_value, member_id=member_id,
                        parent_id=parent.id if parent else None, status=PromoterStatus.APPROVED.value, note="",
                        created_by=actor[:64], applied_at=now, reviewed_by=actor[:64], reviewed_at=now,
                        review_reason="added by the operator")
    session.add(promoter)
    await session.flush()
    return promoter


async def apply(*, session: AsyncSession, member_id: int, name: str, contact: str, note: str = "",
                referrer_code: str | None = None, now: dt.datetime | None = None) -> Promoter:
    """A member applies to become a promoter (申请推广员): pending, or approved at once when the programme
    auto-approves. `referrer_code`: the promoter whose link brought them (their level-2 parent). A rejected
    member may apply again (the same row is reopened)."""
    now = now or utcnow()
    program = await get_program(session)
    if not program.enabled:
        raise PromoterConflict("the promoter programme is closed")
    contact_value = _contact(contact)
    existing = await promoter_for_member(session=session, member_id=member_id)
    if existing is not None and existing.status != PromoterStatus.REJECTED:
        raise PromoterConflict(f"you are already a promoter ({existing.status})", status=existing.status)
    parent = await _parent(session, referrer_code, contact_value, member_id)
    promoter = existing or Promoter(code=await _new_code(session), member_id=member_id, created_by="member")
    promoter.name, promoter.contact, promoter.note = _name(name), contact_value, note.strip()[:500]
    promoter.parent_id = parent.id if parent else promoter.parent_id
    promoter.applied_at, promoter.reviewed_by, promoter.reviewed_at, promoter.review_reason = now, None, None, None
    promoter.status = PromoterStatus.PENDING.value
    if program.auto_approve:
        promoter.status, promoter.reviewed_by, promoter.reviewed_at = PromoterStatus.APPROVED.value, "auto", now
        promoter.review_reason = "approved automatically"
    if existing is None:
        session.add(promoter)
    await session.flush()
    return promoter


_MOVES = {
    PromoterStatus.PENDING: {PromoterStatus.APPROVED, PromoterStatus.REJECTED},
    PromoterStatus.APPROVED: {PromoterStatus.SUSPENDED},
    PromoterStatus.SUSPENDED: {PromoterStatus.APPROVED},
}


async def _move(session: AsyncSession, code: str, target: PromoterStatus, actor: str, reason: str,
                now: dt.datetime | None, only_from: PromoterStatus | None = None) -> Promoter:
    reason = reason.strip()
    if not reason:
        raise InvalidPromoter("a reason is required", field="reason")
    promoter = await get_promoter(session=session, code=code, lock=True)  # two reviewers decide once
    current = PromoterStatus(promoter.status)
    if target not in _MOVES.get(current, set()) or (only_from is not None and current is not only_from):
        raise PromoterConflict(f"promoter {promoter.code} is {promoter.status}; it cannot become {target}",
                               status=promoter.status)
    promoter.status, promoter.reviewed_by, promoter.reviewed_at = target.value, actor[:64], now or utcnow()
    promoter.review_reason = reason[:500]
    await session.flush()
    return promoter


async def approve(*, session: AsyncSession, code: str, actor: str, reason: str = "approved",
                  now: dt.datetime | None = None) -> Promoter:
    """Approve an application (审核通过): its link starts earning."""
    return await _move(session, code, PromoterStatus.APPROVED, actor, reason, now, only_from=PromoterStatus.PENDING)


async def reject(*, session: AsyncSession, code: str, actor: str, reason: str,
                 now: dt.datetime | None = None) -> Promoter:
    """Refuse an application, with the reason the applicant sees."""
    return await _move(session, code, PromoterStatus.REJECTED, actor, reason, now)


async def suspend(*, session: AsyncSession, code: str, actor: str, reason: str,
                  now: dt.datetime | None = None) -> Promoter:
    """Stop a promoter: no new attributions, and orders delivered from now on earn it nothing; commission already
    earned stays withdrawable."""
    return await _move(session, code, PromoterStatus.SUSPENDED, actor, reason, now)


async def reinstate(*, session: AsyncSession, code: str, actor: str, reason: str,
                    now: dt.datetime | None = None) -> Promoter:
    """Let a suspended promoter earn again."""
    return await _move(session, code, PromoterStatus.APPROVED, actor, reason, now,
                       only_from=PromoterStatus.SUSPENDED)


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


def promotion_link(base_url: str, code: str) -> str:
    """The promoter's link (推广链接), also the content of its QR code."""
    return f"{base_url.rstrip('/')}/r/{code}"
