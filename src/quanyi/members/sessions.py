"""Member sessions (会员登录会话): a random token in the member's HttpOnly cookie (`qy_member`) or an app's
`X-Member-Token` header; the database keeps only its SHA-256.

A session ends at the first of: its expiry (QUANYI_MEMBER_SESSION_DAYS), logging out, logging out everywhere,
a new password (every other session ends), or the member being disabled. Logging in always makes a new token
and ends the session the client came with (rotation): a token seen before a login is never a logged-in token.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from quanyi import logins
from quanyi.db import utcnow
from quanyi.logins import TOUCH_EVERY
from quanyi.members.models import LoginMethod, Member, MemberSession, MemberStatus

__all__ = ["MemberLogin", "TOKEN_PREFIX", "TOUCH_EVERY", "SESSIONS", "open_member_session",
           "member_login", "login_from_row", "login_select", "due_for_touch", "touch", "end_member_session",
           "end_all_sessions"]

TOKEN_PREFIX = "qm_"  # noqa: S105 - marks member tokens apart from other tokens
# Member sessions: stored, rotated and ended the shop's one way (quanyi.logins.SessionTable), as staff and
# enterprise users' are; what differs is only how long they last and where the token travels (qy_member, path /,
# with max-age, or the X-Member-Token header).
SESSIONS = logins.SessionTable(MemberSession, owner_field="member_id", prefix=TOKEN_PREFIX)


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


async def open_member_session(*, session: AsyncSession, member: Member, method: LoginMethod, days: float, ip: str,
                              user_agent: str, replaces: str | None = None, now: dt.datetime | None = None) -> str:
    """A new session token for `member` (in the caller's transaction); the session of `replaces` ends first."""
    now = now or utcnow()
    if replaces:
        await end_member_session(session=session, token=replaces, now=now)
    token, record = SESSIONS.start(owner_id=member.id, now=now, expires_at=now + dt.timedelta(days=days), ip=ip,
                                   user_agent=user_agent, method=method)
    session.add(record)
    member.last_login_at = now
    await session.flush()
    return token


async def member_login(*, session: AsyncSession, token: str, now: dt.datetime | None = None) -> MemberLogin | None:
    """The logged-in member of this token, or None (unknown, revoked, expired, member disabled)."""
    if not SESSIONS.may_be_ours(token):
        return None
    now = now or utcnow()
    row = (await session.execute(_LOGIN, {"token_hash": logins.hash_token(token), "now": now})).one_or_none()
    return None if row is None else login_from_row(tuple(row))


def login_from_row(row: Sequence[Any]) -> MemberLogin:
    """The MemberLogin of a row of `login_select`."""
    member_id, session_id, method, email, phone, has_password, locale, created_at, last_seen_at = row
    return MemberLogin(member_id=member_id, session_id=session_id, method=method, email=email, phone=phone,
                       has_password=bool(has_password), locale=locale, session_created_at=created_at,
                       last_seen_at=last_seen_at)


def login_select(token_hash: Any, now: Any) -> Any:
    """`member_login`'s read for `token_hash` at `now` (binds): the columns of a MemberLogin (`login_from_row`'s
    order), no ORM rows. The token's row, not ended, as SESSIONS.is_open says. A member's checkout reads it as a
    subquery of a bigger statement (orders.member_checkout)."""
    return (select(Member.id.label("member_id"), MemberSession.id.label("session_id"), MemberSession.method,
                   Member.email, Member.phone, Member.password_hash.is_not(None).label("has_password"), Member.locale,
                   MemberSession.created_at, MemberSession.last_seen_at)
            .join(Member, Member.id == MemberSession.member_id)
            .where(MemberSession.token_hash == token_hash, MemberSession.revoked_at.is_(None),
                   MemberSession.expires_at > now, Member.status == MemberStatus.ACTIVE))


# `member_login`'s statement, built once (a member's checkout looks it up first), with the token's hash bound at each
# call.
_LOGIN = login_select(bindparam("token_hash"), bindparam("now", type_=MemberSession.expires_at.type))


def due_for_touch(login: MemberLogin, now: dt.datetime | None = None) -> bool:
    """Whether the session's last use is worth writing down again (quanyi.logins.due_for_touch)."""
    return logins.due_for_touch(login.last_seen_at, now)


async def touch(*, session: AsyncSession, login: MemberLogin, now: dt.datetime | None = None) -> None:
    """Record that the session was used now: the member's list of devices shows it."""
    await SESSIONS.touch(session=session, session_id=login.session_id, now=now)


async def end_member_session(*, session: AsyncSession, token: str, now: dt.datetime | None = None) -> bool:
    """Log out this token's session; False when it was not an open session."""
    return await SESSIONS.end(session=session, token=token, now=now)


async def end_all_sessions(*, session: AsyncSession, member_id: int, except_session_id: int | None = None,
                           now: dt.datetime | None = None) -> int:
    """Log the member out everywhere (but `except_session_id`, when given); how many sessions ended."""
    return await SESSIONS.end_all(session=session, owner_id=member_id, now=now, keep=except_session_id)
