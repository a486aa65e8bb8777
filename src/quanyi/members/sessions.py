"""Member sessions (会员登录会话): a random token in the member's HttpOnly cookie (`qy_member`) or an app's
`X-Member-Token` header; the database keeps only its SHA-256.

A session ends at the first of: its expiry (QUANYI_MEMBER_SESSION_DAYS), logging out, logging out everywhere,
a new password (every other session ends), or the member being disabled. Logging in always makes a new token
and ends the session the client came with (rotation): a token seen before a login is never a logged-in token.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from quanyi.db import utcnow
from quanyi.members.models import LoginMethod, Member, MemberSession, MemberStatus

__all__ = ["MemberLogin", "TOKEN_PREFIX", "TOUCH_EVERY", "hash_session_token", "open_member_session",
           "member_login", "due_for_touch", "touch", "end_member_session", "end_all_sessions"]

TOKEN_PREFIX = "qm_"  # noqa: S105 - marks member tokens apart from other tokens
TOUCH_EVERY = dt.timedelta(seconds=60)  # last_seen_at is written at most once a minute per session
_MAX_TOKEN_LENGTH = 128


@dataclass(frozen=True, slots=True)
class MemberLogin:
    """Who a request's session belongs to (what CurrentMemberDep gives a route)."""

    member_id: int
    session_id: int
    method: LoginMethod
    email: str | None
    phone: str | None
    has_password: bool
    locale: str
    session_created_at: dt.datetime
    last_seen_at: dt.datetime | None

    @property
    def display_contact(self) -> str:
        return self.email or self.phone or ""


def hash_session_token(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8")).digest()


async def open_member_session(*, session: AsyncSession, member: Member, method: LoginMethod, days: float, ip: str,
                              user_agent: str, replaces: str | None = None, now: dt.datetime | None = None) -> str:
    """A new session token for `member` (in the caller's transaction); the session of `replaces` ends first."""
    now = now or utcnow()
    if replaces:
        await end_member_session(session=session, token=replaces, now=now)
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    session.add(MemberSession(token_hash=hash_session_token(token), member_id=member.id, method=method,
                              created_at=now, expires_at=now + dt.timedelta(days=days), last_seen_at=now,
                              ip=ip[:64], user_agent=user_agent[:512]))
    member.last_login_at = now
    await session.flush()
    return token


async def member_login(*, session: AsyncSession, token: str, now: dt.datetime | None = None) -> MemberLogin | None:
    """The logged-in member of this token, or None (unknown, revoked, expired, member disabled)."""
    if not token.startswith(TOKEN_PREFIX) or len(token) > _MAX_TOKEN_LENGTH:
        return None
    now = now or utcnow()
    row = (await session.execute(
        select(MemberSession, Member)
        .join(Member, Member.id == MemberSession.member_id)
        .where(MemberSession.token_hash == hash_session_token(token), MemberSession.revoked_at.is_(None),
               MemberSession.expires_at > now, Member.status == MemberStatus.ACTIVE)
    )).one_or_none()
    if row is None:
        return None
    record, member = row
    return MemberLogin(member_id=member.id, session_id=record.id, method=record.method, email=member.email,
                       phone=member.phone, has_password=member.password_hash is not None, locale=member.locale,
                       session_created_at=record.created_at, last_seen_at=record.last_seen_at)


def due_for_touch(login: MemberLogin, now: dt.datetime | None = None) -> bool:
    """Whether the session's last use is worth writing down again (at most once a minute, so a browsing member
    does not take the database's write lock on every page)."""
    return login.last_seen_at is None or (now or utcnow()) - login.last_seen_at >= TOUCH_EVERY


async def touch(*, session: AsyncSession, login: MemberLogin, now: dt.datetime | None = None) -> None:
    """Record that the session was used now: the member's list of devices shows it."""
    await session.execute(update(MemberSession).where(MemberSession.id == login.session_id)
                          .values(last_seen_at=now or utcnow()))


async def end_member_session(*, session: AsyncSession, token: str, now: dt.datetime | None = None) -> bool:
    """Log out this token's session; False when it was not an open session."""
    result = await session.execute(
        update(MemberSession)
        .where(MemberSession.token_hash == hash_session_token(token), MemberSession.revoked_at.is_(None))
        .values(revoked_at=now or utcnow()))
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def end_all_sessions(*, session: AsyncSession, member_id: int, except_session_id: int | None = None,
                           now: dt.datetime | None = None) -> int:
    """Log the member out everywhere (but `except_session_id`, when given); how many sessions ended."""
    statement = (update(MemberSession)
                 .where(MemberSession.member_id == member_id, MemberSession.revoked_at.is_(None))
                 .values(revoked_at=now or utcnow()))
    if except_session_id is not None:
        statement = statement.where(MemberSession.id != except_session_id)
    result = await session.execute(statement)
    return int(result.rowcount)  # type: ignore[attr-defined]
