"""Portal sessions (企业门户会话): an enterprise user's login, in an HttpOnly cookie.

A session ends at the first of: logout, its absolute expiry, being idle longer than the idle limit, a new
password, the user disabled, or an administrator ending it. A session that still waits for the second factor
opens only the second-factor page; passing it replaces that session with a new one (new token), and every
login ends the session the browser came with: a token seen before login is never a logged-in token.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from quanyi import logins
from quanyi.db import Database, utcnow
from quanyi.enterprises.models import Enterprise, EnterpriseUser, EnterpriseUserSession
from quanyi.logins import SECOND_FACTOR_MINUTES, TOUCH_EVERY

__all__ = ["PortalLogin", "TOKEN_PREFIX", "SESSIONS", "SECOND_FACTOR_MINUTES", "TOUCH_EVERY", "open_portal_session",
           "portal_login", "touch", "end_portal_session"]

TOKEN_PREFIX = "qe_"  # noqa: S105 - marks enterprise portal tokens apart from staff and member tokens
# Portal sessions: stored, rotated and ended the shop's one way (quanyi.logins.SessionTable).
SESSIONS = logins.SessionTable(EnterpriseUserSession, owner_field="user_id", prefix=TOKEN_PREFIX)


@dataclass(frozen=True, slots=True)
class PortalLogin:
    """Who a portal cookie belongs to, read fresh on every request (a new role or a disabled user counts now)."""

    session_id: int
    user_id: int
    username: str
    display_name: str
    role: str
    enterprise_id: int
    enterprise_code: str
    enterprise_name: str
    enterprise_status: str
    second_factor_pending: bool
    has_second_factor: bool
    last_seen_at: dt.datetime | None


async def open_portal_session(*, db: Database, user: EnterpriseUser, hours: float, ip: str, user_agent: str,
                              second_factor_pending: bool, replaces: str | None = None,
                              now: dt.datetime | None = None) -> str:
    """A new portal session token for `user` (the session of `replaces` ends first); the token, once."""
    now = now or utcnow()
    hours = SECOND_FACTOR_MINUTES / 60 if second_factor_pending else hours
    token, record = SESSIONS.start(owner_id=user.id, now=now, expires_at=now + dt.timedelta(hours=hours), ip=ip,
                                   user_agent=user_agent, second_factor_pending=second_factor_pending)
    async with db.transaction() as session:
        if replaces:
            await SESSIONS.end(session=session, token=replaces, now=now)
        session.add(record)
        if not second_factor_pending:
            await session.execute(update(EnterpriseUser).where(EnterpriseUser.id == user.id)
                                  .values(last_login_at=now))
    return token


async def portal_login(*, session: AsyncSession, token: str, idle: dt.timedelta,
                       now: dt.datetime | None = None) -> PortalLogin | None:
    """The login of this cookie, or None (unknown, ended, expired, idle too long, user disabled)."""
    if not SESSIONS.may_be_ours(token):
        return None
    now = now or utcnow()
    row = (await session.execute(
        select(EnterpriseUserSession, EnterpriseUser, Enterprise)
        .join(EnterpriseUser, EnterpriseUser.id == EnterpriseUserSession.user_id)
        .join(Enterprise, Enterprise.id == EnterpriseUser.enterprise_id)
        .where(*SESSIONS.is_open(token), EnterpriseUserSession.expires_at > now,
               EnterpriseUser.active.is_(True)))).one_or_none()
    if row is None:
        return None
    record, user, enterprise = row
    if logins.idle_too_long(record.last_seen_at, now, idle):
        return None
    return PortalLogin(session_id=record.id, user_id=user.id, username=user.username,
                       display_name=user.display_name, role=user.role, enterprise_id=enterprise.id,
                       enterprise_code=enterprise.code, enterprise_name=enterprise.name,
                       enterprise_status=enterprise.status, second_factor_pending=record.second_factor_pending,
                       has_second_factor=user.totp_enabled_at is not None, last_seen_at=record.last_seen_at)


touch = SESSIONS.touch  # the session was used now (the idle clock starts again)
end_portal_session = SESSIONS.end  # logout: False when it was not an open session
