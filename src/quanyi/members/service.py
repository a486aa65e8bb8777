"""Buyer accounts (会员): sign up and log in with a one-time code (or a password once set), contacts, guest orders
attached to the account, log out everywhere, and the operator's list / disable.

Signing up and logging in are one flow: ask for a code for a contact, enter it; a contact without an account gets
one. So the answers never say whether an account exists (no account enumeration): a code is "sent" either way, and
a password login fails with the same message for an unknown contact, a contact without a password and a wrong
password, in the same time. Plain functions; routes and CLI call these.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import delete, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from quanyi.db import Database, like_anywhere, utcnow
from quanyi.errors import Conflict, DomainError, InvalidInput, NotFound
from quanyi.members.codes import (
    CodeCannotBeSent,
    CodeExpired,
    CodeWrong,
    ContactInvalid,
    SignInLimits,
    SignInRateLimited,
    check_code,
    limit_code_requests,
    normalize_member_contact,
    reserve_login_attempt,
    send_code,
)
from quanyi.members.extensions import member_created_handlers
from quanyi.members.models import CodePurpose, LoginMethod, Member, MemberCode, MemberSession, MemberStatus
from quanyi.members.sessions import MemberLogin, end_all_sessions, open_member_session
from quanyi.orders import service as orders_service
from quanyi.passwords import hash_password, password_matches
from quanyi.risk.service import RateLimiter

__all__ = ["SignInLimits", "ContactInvalid", "SignInRateLimited", "CodeCannotBeSent", "CodeWrong", "CodeExpired",
           "InvalidCredentials", "MemberDisabled", "ContactTaken", "PasswordRejected", "MemberNotFound",
           "SignedIn", "CodeSent", "PASSWORD_MIN_LENGTH", "FRESH_CODE_LOGIN",
           "request_sign_in_code", "sign_in_with_code", "sign_in_with_password", "request_contact_code",
           "add_contact_with_code", "change_password", "get_member", "find_member", "list_members", "count_members",
           "disable_member", "enable_member", "open_sessions", "purge_expired", "KEEP_ENDED_SESSIONS",
           "KEEP_USED_CODES"]

PASSWORD_MIN_LENGTH = 8
PASSWORD_MAX_LENGTH = 128
# A session opened with a code this recently may set a new password without the old one (the member just proved
# their contact: that is how a forgotten password is replaced).
FRESH_CODE_LOGIN = dt.timedelta(minutes=15)
# Ended sessions stay this long (support sees when and from where a member logged in); codes a day past expiry.
KEEP_ENDED_SESSIONS = dt.timedelta(days=30)
KEEP_USED_CODES = dt.timedelta(days=1)


class InvalidCredentials(DomainError):
    code = "invalid_credentials"


class MemberDisabled(DomainError):
    code = "member_disabled"


class ContactTaken(Conflict):
    code = "contact_taken"


class PasswordRejected(InvalidInput):
    code = "password_rejected"


class MemberNotFound(NotFound):
    code = "member_not_found"


@dataclass(frozen=True, slots=True)
class CodeSent:
    code_id: str
    expires_in_seconds: int
    contact_kind: str


@dataclass(frozen=True, slots=True)
class SignedIn:
    token: str
    member_id: int
    created: bool  # a new account (sign-up)
    attached_orders: int  # guest orders of the proved contact now on the account


def _contact_column(kind: str):  # type: ignore[no-untyped-def]
    return Member.email if kind == "email" else Member.phone


async def _member_by_contact(session: AsyncSession, kind: str, contact: str, *, lock: bool = False) -> Member | None:
    stmt = select(Member).where(_contact_column(kind) == contact)
    return await session.scalar(stmt.with_for_update() if lock else stmt)


# ---------------------------------------------------------------- sign up / log in by code

async def request_sign_in_code(*, db: Database, limiter: RateLimiter, limits: SignInLimits, secret: bytes,
                               contact: str, locale: str, ip: str, device: str,
                               now: dt.datetime | None = None) -> CodeSent:
    """Send a sign-in code to `contact`, whether or not it has an account (the answer is the same)."""
    now = now or utcnow()
    kind, value = normalize_member_contact(contact)
    await limit_code_requests(limiter=limiter, limits=limits, contact=value, ip=ip, device=device)
    async with db.transaction() as session:
        row = await send_code(session=session, secret=secret, limits=limits, purpose=CodePurpose.SIGN_IN,
                              contact_kind=kind, contact=value, locale=locale, ip=ip, now=now)
    return CodeSent(code_id=row.public_id, expires_in_seconds=limits.code_ttl_seconds, contact_kind=kind)


async def sign_in_with_code(*, db: Database, limiter: RateLimiter, limits: SignInLimits, secret: bytes, code_id: str,
                            code: str, locale: str, ip: str, device: str, user_agent: str,
                            replaces: str | None = None, now: dt.datetime | None = None) -> SignedIn:
    """Log in (or sign up) with a sign-in code. The contact is proved, so its guest orders join the account.
    `replaces`: the session token the client came with, ended now (a login always makes a new token)."""
    now = now or utcnow()
    slot = await reserve_login_attempt(limiter=limiter, limits=limits, ip=ip, device=device)
    kind, contact = await check_code(db=db, secret=secret, code_id=code_id, code=code, purpose=CodePurpose.SIGN_IN,
                                     now=now)
    await slot.give_back()
    async with db.transaction() as session:
        member = await _member_by_contact(session, kind, contact, lock=True)
        created = member is None
        if member is None:
            member = Member(email=contact if kind == "email" else None, phone=contact if kind == "phone" else None,
                            status=MemberStatus.ACTIVE, locale=locale[:8], created_at=now)
            session.add(member)
            await session.flush()
            for handler in member_created_handlers():  # other features' sign-up hooks, same transaction
                await handler(session=session, member_id=member.id, contact_kind=kind, contact=contact, now=now)
        elif member.status is not MemberStatus.ACTIVE:
            raise MemberDisabled("this account is disabled; please contact the shop")
        attached = await orders_service.attach_guest_orders(session=session, member_id=member.id, contact_kind=kind,
                                                            contact=contact)
        token = await open_member_session(session=session, member=member, method=LoginMethod.CODE,
                                          days=limits.session_days, ip=ip, user_agent=user_agent, replaces=replaces,
                                          now=now)
        return SignedIn(token=token, member_id=member.id, created=created, attached_orders=attached)


# ---------------------------------------------------------------- log in by password

async def sign_in_with_password(*, db: Database, limiter: RateLimiter, limits: SignInLimits, contact: str,
                                password: str, ip: str, device: str, user_agent: str, replaces: str | None = None,
                                now: dt.datetime | None = None) -> SignedIn:
    """Log in with contact + password. Unknown contact, no password set, wrong password: one answer
    (InvalidCredentials), one cost. Failures count per client and per contact before the check."""
    now = now or utcnow()
    try:
        kind, value = normalize_member_contact(contact)
    except ContactInvalid:
        kind, value = "email", ""
    slot = await reserve_login_attempt(limiter=limiter, limits=limits, ip=ip, device=device,
                                       contact=value or contact.strip()[:254])
    async with db.read_session() as session:
        member = await _member_by_contact(session, kind, value) if value else None
    stored = member.password_hash if member is not None else None
    if not await password_matches(stored, password[:PASSWORD_MAX_LENGTH * 4]) or member is None:
        raise InvalidCredentials("wrong contact or password")  # its slot stays taken
    await slot.give_back()
    if member.status is not MemberStatus.ACTIVE:
        raise MemberDisabled("this account is disabled; please contact the shop")
    async with db.transaction() as session:
        fresh = await session.get(Member, member.id, with_for_update=True, populate_existing=True)
        if fresh is None or fresh.status is not MemberStatus.ACTIVE or fresh.password_hash != stored:
            raise InvalidCredentials("wrong contact or password")  # disabled or password changed meanwhile
        token = await open_member_session(session=session, member=fresh, method=LoginMethod.PASSWORD,
                                          days=limits.session_days, ip=ip, user_agent=user_agent, replaces=replaces,
                                          now=now)
    return SignedIn(token=token, member_id=member.id, created=False, attached_orders=0)


# ---------------------------------------------------------------- the account: contacts and password

async def request_contact_code(*, db: Database, limiter: RateLimiter, limits: SignInLimits, secret: bytes,
                               login: MemberLogin, contact: str, locale: str, ip: str, device: str,
                               now: dt.datetime | None = None) -> CodeSent:
    """Send a code to a contact the logged-in member wants on their account (an e-mail next to a phone, or a
    new one). Said the same way whether another account holds it; that is told only once the code is proved."""
    now = now or utcnow()
    kind, value = normalize_member_contact(contact)
    await limit_code_requests(limiter=limiter, limits=limits, contact=value, ip=ip, device=device)
    async with db.transaction() as session:
        row = await send_code(session=session, secret=secret, limits=limits, purpose=CodePurpose.ADD_CONTACT,
                              contact_kind=kind, contact=value, locale=locale, ip=ip, member_id=login.member_id,
                              now=now)
    return CodeSent(code_id=row.public_id, expires_in_seconds=limits.code_ttl_seconds, contact_kind=kind)


async def add_contact_with_code(*, db: Database, limiter: RateLimiter, limits: SignInLimits, secret: bytes,
                                login: MemberLogin, code_id: str, code: str, ip: str, device: str,
                                now: dt.datetime | None = None) -> int:
    """Put a proved contact on the account (replacing the one of its kind) and attach its guest orders; how many.
    ContactTaken when another account has it."""
    now = now or utcnow()
    slot = await reserve_login_attempt(limiter=limiter, limits=limits, ip=ip, device=device)
    kind, contact = await check_code(db=db, secret=secret, code_id=code_id, code=code,
                                     purpose=CodePurpose.ADD_CONTACT, member_id=login.member_id, now=now)
    await slot.give_back()
    async with db.transaction() as session:
        holder = await _member_by_contact(session, kind, contact)
        if holder is not None and holder.id != login.member_id:
            raise ContactTaken("another account uses this contact; log in with it there", field="contact")
        member = await session.get(Member, login.member_id, with_for_update=True, populate_existing=True)
        if member is None or member.status is not MemberStatus.ACTIVE:
            raise MemberDisabled("this account is disabled; please contact the shop")
        if kind == "email":
            member.email = contact
        else:
            member.phone = contact
        await session.flush()
        return await orders_service.attach_guest_orders(session=session, member_id=member.id, contact_kind=kind,
                                                        contact=contact)


def check_new_password(password: str) -> None:
    if not PASSWORD_MIN_LENGTH <= len(password) <= PASSWORD_MAX_LENGTH:
        raise PasswordRejected(f"a password has {PASSWORD_MIN_LENGTH} to {PASSWORD_MAX_LENGTH} characters",
                               field="password")
    if password.strip() == "" or len(set(password)) < 3:
        raise PasswordRejected("this password is too easy to guess", field="password")


async def change_password(*, db: Database, login: MemberLogin, new_password: str, current_password: str | None,
                          now: dt.datetime | None = None) -> int:
    """Set or change the member's password; every other session ends (how many). Needs the current password,
    unless there is none yet or this session was opened with a code in the last FRESH_CODE_LOGIN."""
    now = now or utcnow()
    check_new_password(new_password)
    async with db.read_session() as session:
        member = await session.get(Member, login.member_id)
    if member is None or member.status is not MemberStatus.ACTIVE:
        raise MemberDisabled("this account is disabled; please contact the shop")
    fresh_code = login.method is LoginMethod.CODE and now - login.session_created_at <= FRESH_CODE_LOGIN
    if member.password_hash is not None and not fresh_code and (
            not current_password or not await password_matches(member.password_hash, current_password)):
        raise InvalidCredentials("the current password is wrong", field="current_password")
    new_hash = await hash_password(new_password)  # slow by design: outside the transaction
    async with db.transaction() as session:
        row = await session.get(Member, login.member_id, with_for_update=True, populate_existing=True)
        assert row is not None
        row.password_hash = new_hash
        row.password_changed_at = now
        return await end_all_sessions(session=session, member_id=row.id, except_session_id=login.session_id,
                                      now=now)


# ---------------------------------------------------------------- reading, operators

async def get_member(*, session: AsyncSession, member_id: int) -> Member:
    member = await session.get(Member, member_id)
    if member is None:
        raise MemberNotFound("member not found")
    return member


async def find_member(*, session: AsyncSession, ref: str) -> Member:
    """A member by id ("42"), e-mail or phone (normalized as at checkout)."""
    ref = ref.strip()
    if ref.isdigit() and len(ref) < 10:
        return await get_member(session=session, member_id=int(ref))
    try:
        kind, value = normalize_member_contact(ref)
    except ContactInvalid:
        raise MemberNotFound("member not found") from None
    member = await _member_by_contact(session, kind, value)
    if member is None:
        raise MemberNotFound("member not found")
    return member


def _filter(stmt, query: str | None, status: MemberStatus | None):  # type: ignore[no-untyped-def]
    if status is not None:
        stmt = stmt.where(Member.status == status)
    if query:
        pattern = like_anywhere(query.strip().lower())  # a % or _ typed by staff is a character, not a wildcard
        stmt = stmt.where(or_(func.lower(Member.email).like(pattern, escape="\\"),
                              Member.phone.like(pattern, escape="\\")))
    return stmt


async def list_members(*, session: AsyncSession, query: str | None = None, status: MemberStatus | None = None,
                       limit: int = 50, offset: int = 0) -> Sequence[Member]:
    """Members, newest first; `query` matches part of the e-mail or phone."""
    stmt = _filter(select(Member), query, status).order_by(Member.id.desc()).limit(limit).offset(offset)
    return (await session.scalars(stmt)).all()


async def count_members(*, session: AsyncSession, query: str | None = None,
                        status: MemberStatus | None = None) -> int:
    return int(await session.scalar(_filter(select(func.count()).select_from(Member), query, status)) or 0)


async def disable_member(*, session: AsyncSession, member: Member, reason: str,
                         now: dt.datetime | None = None) -> int:
    """Stop the member logging in and end every session of theirs (how many). Their orders stay theirs."""
    now = now or utcnow()
    if not reason.strip():
        raise InvalidInput("say why the account is disabled", field="reason")
    member.status = MemberStatus.DISABLED
    member.disabled_at = now
    member.disabled_reason = reason.strip()[:500]
    return await end_all_sessions(session=session, member_id=member.id, now=now)


async def enable_member(*, session: AsyncSession, member: Member) -> None:
    member.status = MemberStatus.ACTIVE
    member.disabled_at = None
    member.disabled_reason = None


async def open_sessions(*, session: AsyncSession, member_id: int,
                        now: dt.datetime | None = None) -> Sequence[MemberSession]:
    """The member's sessions still open (their devices), newest first."""
    now = now or utcnow()
    stmt = (select(MemberSession)
            .where(MemberSession.member_id == member_id, MemberSession.revoked_at.is_(None),
                   MemberSession.expires_at > now)
            .order_by(MemberSession.id.desc()))
    return (await session.scalars(stmt)).all()


async def purge_expired(*, session: AsyncSession, now: dt.datetime | None = None) -> int:
    """Delete codes a day past their expiry and sessions that ended (expired or revoked) over
    KEEP_ENDED_SESSIONS ago, so the tables do not grow with every login; how many rows went."""
    now = now or utcnow()
    codes = await session.execute(delete(MemberCode).where(MemberCode.expires_at < now - KEEP_USED_CODES))
    ended_before = now - KEEP_ENDED_SESSIONS
    sessions = await session.execute(delete(MemberSession).where(
        or_(MemberSession.expires_at < ended_before, MemberSession.revoked_at < ended_before)))
    return int(codes.rowcount) + int(sessions.rowcount)  # type: ignore[attr-defined]
