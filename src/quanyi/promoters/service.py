"""Distribution (分销): the programme and promoters (推广员): codes, applications, approval, suspension.

- A member applies (or an operator adds a partner); the operator approves, or the programme approves at once.
- A promoter's link `/r/CODE` puts its code in the buyer's cookie for `attribution_days`.
- Which promoter brought an order, bindings (锁粉) and who earns commission: `attribution.py`; balances and
  withdrawals: `settlement.py`.
"""

from __future__ import annotations

import datetime as dt
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from quanyi.db import utcnow
from quanyi.errors import Conflict, InvalidInput, NotFound
from quanyi.orders.contact import normalize_contact
from quanyi.promoters.models import (
    Promoter,
    PromoterProgram,
    PromoterStatus,
)

__all__ = [
    "PromoterNotFound", "InvalidPromoter", "PromoterConflict", "UnknownPromoterCode", "SelfReferral",
    "ProgramUpdate", "get_program", "update_program", "normalize_code", "add_promoter", "apply", "approve", "reject",
    "suspend", "reinstate", "get_promoter", "promoter_for_member", "list_promoters", "promotion_link",
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


def promotion_link(base_url: str, code: str) -> str:
    """The promoter's link (推广链接), also the content of its QR code."""
    return f"{base_url.rstrip('/')}/r/{code}"
