"""Console sessions (控制台会话): the browser's login, kept in an HttpOnly cookie.

A console session is a staff session of channel "console" (so changing a password or disabling a staff
member ends it like any other). It ends at the first of: logout, its absolute expiry, or being idle longer
than the idle limit. A session that still waits for the second factor opens only the second-factor page;
passing it replaces that session with a new one (new token): a token seen before login is never the token
of a logged-in session.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from quanyi.db import Database, utcnow
from quanyi.logins import SECOND_FACTOR_MINUTES, TOUCH_EVERY, idle_too_long
from quanyi.staff.models import CONSOLE_CHANNEL, StaffSession, StaffUser
from quanyi.staff.service import SESSIONS, Principal, merchant_works, open_session, principal_of

__all__ = ["ConsoleLogin", "SECOND_FACTOR_MINUTES", "TOUCH_EVERY", "open_console_session", "console_login",
           "end_console_session", "touch"]


@dataclass(frozen=True, slots=True)
class ConsoleLogin:
    principal: Principal
    session_id: int
    second_factor_pending: bool
    last_seen_at: dt.datetime | None
    has_second_factor: bool


async def open_console_session(
    *, db: Database, user: StaffUser, hours: float, ip: str, user_agent: str, second_factor_pending: bool,
    replaces: str | None = None, now: dt.datetime | None = None,
) -> str:
    """A new console session token (the old one, `replaces`, ends first)."""
    now = now or utcnow()
    if replaces:
        async with db.transaction() as session:
            await end_console_session(session=session, token=replaces, now=now)
    hours = SECOND_FACTOR_MINUTES / 60 if second_factor_pending else hours
    token, _ = await open_session(db=db, user=user, hours=hours, ip=ip, user_agent=user_agent,
                                  channel=CONSOLE_CHANNEL, second_factor_pending=second_factor_pending, now=now)
    return token


async def console_login(*, session: AsyncSession, token: str, idle: dt.timedelta,
                        now: dt.datetime | None = None) -> ConsoleLogin | None:
    """Who this console cookie belongs to, or None (unknown, ended, expired, idle too long, staff disabled)."""
    if not SESSIONS.may_be_ours(token):
        return None
    now = now or utcnow()
    row = (await session.execute(
        select(StaffSession, StaffUser)
        .join(StaffUser, StaffUser.id == StaffSession.staff_id)
        .where(*SESSIONS.is_open(token), StaffSession.channel == CONSOLE_CHANNEL, StaffSession.expires_at > now,
               StaffUser.active.is_(True), merchant_works())
    )).one_or_none()
    if row is None:
        return None
    record, user = row
    if idle_too_long(record.last_seen_at, now, idle):
        return None
    return ConsoleLogin(principal=principal_of(user), session_id=record.id,
                        second_factor_pending=record.second_factor_pending, last_seen_at=record.last_seen_at,
                        has_second_factor=user.totp_enabled_at is not None)


touch = SESSIONS.touch  # the session was used now (the idle clock starts again)


async def end_console_session(*, session: AsyncSession, token: str, now: dt.datetime | None = None) -> bool:
    """Log out of the console: this token's console session ends (an API token is not ended here)."""
    return await SESSIONS.end(session=session, token=token, now=now, where=[StaffSession.channel == CONSOLE_CHANNEL])
