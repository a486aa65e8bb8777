"""What every password login of the shop does the same way (员工登录, 企业门户登录): usernames and passwords,
session tokens, and checking a password or a second-factor code under the failure limits.

Staff (quanyi.staff) and enterprise portal users (quanyi.enterprises.users) each keep their own accounts and
sessions in their own tables (members, quanyi.members, their sessions too); this module is the one place for the
rules they share:

- a session token is random (256 bits) with a prefix naming its kind; only its SHA-256 is stored, so a copy of
  the database cannot be replayed as a session; each login rotates it, ending sets revoked_at (`SessionTable`);
- failed attempts are counted per client IP and per account in the shop's rate limiter *before* the password
  is checked (parallel guesses cannot all pass the limit at once), outside any transaction of the caller (a
  refused login still counts); past either limit every attempt is refused, even a right password;
- an unknown account costs one argon2 verification like a wrong password and gets the same answer, so neither
  the timing nor the message tells which accounts exist.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import secrets
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from quanyi.config import Settings
from quanyi.db import utcnow
from quanyi.errors import DomainError, InvalidInput
from quanyi.passwords import password_matches
from quanyi.risk.service import RateLimiter, reserve_attempt

__all__ = ["LoginFailed", "LoginRateLimited", "LoginLimits", "MIN_PASSWORD_LENGTH", "hash_token", "new_token",
           "normalize_username", "check_username", "check_password", "check_password_login", "check_code_login",
           "idle_too_long", "due_for_touch", "TOUCH_EVERY", "SECOND_FACTOR_MINUTES", "SessionTable"]

MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 1024
_USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,63}$")

TOUCH_EVERY = dt.timedelta(seconds=60)  # a session's last_seen_at is written at most once a minute
SECOND_FACTOR_MINUTES = 5  # a password-checked browser session waits this long for the second factor
_MAX_TOKEN_LENGTH = 128

UserT = TypeVar("UserT")


class LoginFailed(DomainError):
    code = "login_failed"


class LoginRateLimited(DomainError):
    code = "too_many_attempts"


@dataclass(frozen=True)
class LoginLimits:
    window_seconds: int
    max_failures_per_ip: int
    max_failures_per_user: int
    session_hours: float

    @classmethod
    def from_settings(cls, settings: Settings) -> LoginLimits:
        """The staff login limits (QUANYI_STAFF_LOGIN_*); the enterprise portal counts under the same numbers."""
        return cls(window_seconds=settings.staff_login_window_seconds,
                   max_failures_per_ip=settings.staff_login_max_failures_per_ip,
                   max_failures_per_user=settings.staff_login_max_failures_per_user,
                   session_hours=settings.staff_session_hours)


def hash_token(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8")).digest()


def new_token(prefix: str) -> str:
    """A new session token (256 random bits) starting with `prefix`, which tells its kind at a glance."""
    return prefix + secrets.token_urlsafe(32)


def normalize_username(username: str) -> str:
    return username.strip().lower()


def check_username(username: str, error: type[InvalidInput] = InvalidInput) -> str:
    """The normalized username, or `error` when it is not 2-64 characters of a-z, 0-9, '.', '_', '-'."""
    name = normalize_username(username)
    if not _USERNAME.match(name):
        raise error("username must be 2-64 characters of a-z, 0-9, '.', '_' or '-'")
    return name


def check_password(password: str, error: type[InvalidInput] = InvalidInput) -> str:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise error(f"password must be at least {MIN_PASSWORD_LENGTH} characters")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise error(f"password must be at most {MAX_PASSWORD_LENGTH} characters")
    return password


def _limit_keys(counter: str, ip: str, account: str, limits: LoginLimits) -> list[tuple[str, int]]:
    return [(f"{counter}:ip:{ip}", limits.max_failures_per_ip),
            (f"{counter}:user:{account}", limits.max_failures_per_user)]


async def check_password_login(
    *, limiter: RateLimiter, limits: LoginLimits, counter: str, ip: str, account: str, password: str,
    load: Callable[[], Awaitable[tuple[UserT | None, str | None, bool]]],
) -> UserT:
    """Check a password under the login limits. `counter` names the kind of login ("staff-login"), `account`
    the account tried (its failures are counted under it); `load` finds (user or None, password hash, may log
    in). The user, or LoginRateLimited / LoginFailed (one message for unknown, disabled, wrong password)."""
    slot = await reserve_attempt(limiter, _limit_keys(counter, ip, account, limits),
                                 window_seconds=limits.window_seconds)
    if slot is None:
        raise LoginRateLimited("too many failed logins; try again later", retry_after=limits.window_seconds)
    user, password_hash, allowed = await load()
    # Always one argon2 verification, against a dummy hash when there is no such user.
    matched = await password_matches(password_hash if user is not None else None, password)
    if not matched or user is None or not allowed:
        raise LoginFailed("wrong username or password")  # its slot stays taken: the failure is counted
    await slot.give_back()
    return user


async def check_code_login(
    *, limiter: RateLimiter, limits: LoginLimits, counter: str, ip: str, account: str,
    use_code: Callable[[], Awaitable[bool]],
) -> None:
    """Check a second-factor code under the same limits as passwords (a wrong code counts as a failed login);
    `use_code` accepts and uses it up in its own transaction. LoginRateLimited / LoginFailed when refused."""
    slot = await reserve_attempt(limiter, _limit_keys(counter, ip, account, limits),
                                 window_seconds=limits.window_seconds)
    if slot is None:
        raise LoginRateLimited("too many failed logins; try again later", retry_after=limits.window_seconds)
    if not await use_code():
        raise LoginFailed("wrong or already used code")
    await slot.give_back()


def idle_too_long(last_seen_at: dt.datetime | None, now: dt.datetime, idle: dt.timedelta) -> bool:
    """A browser session unused for longer than `idle` has ended."""
    return last_seen_at is not None and now - last_seen_at > idle


def due_for_touch(last_seen_at: dt.datetime | None, now: dt.datetime | None = None) -> bool:
    """Whether a session's last use is worth writing down again (at most once a minute: a browsing user does
    not take the database's write lock on every page)."""
    return last_seen_at is None or (now or utcnow()) - last_seen_at >= TOUCH_EVERY


@dataclass(frozen=True)
class SessionTable:
    """The login sessions of one kind of account in its own table: staff (API and console), enterprise portal
    users, members. `model` has id, token_hash, `<owner_field>`, created_at, expires_at, last_seen_at,
    revoked_at, ip, user_agent. The one place for how a session is stored, rotated and ended:

    - its token is `new_token(prefix)`, handed out once; only its SHA-256 is stored;
    - a login ends the session the client came with (`end`, then `start`): a token seen before a login is
      never a logged-in token;
    - ending a session (logout), every session of an account (a new password, disabled, an administrator)
      sets revoked_at; nothing brings it back.
    """

    model: Any
    owner_field: str
    prefix: str

    def may_be_ours(self, token: str) -> bool:
        """Whether `token` can be one of this table's (its prefix, a sane length): others are not looked up."""
        return token.startswith(self.prefix) and len(token) <= _MAX_TOKEN_LENGTH

    def is_open(self, token: str) -> list[Any]:
        """SQL conditions: the row of this token, not ended (expiry is the caller's: it knows `now`)."""
        return [self.model.token_hash == hash_token(token), self.model.revoked_at.is_(None)]

    def start(self, *, owner_id: int, now: dt.datetime, expires_at: dt.datetime, ip: str, user_agent: str,
              **columns: Any) -> tuple[str, Any]:
        """A new session row (the caller adds it in its transaction) and its token, to hand out once."""
        token = new_token(self.prefix)
        row = self.model(token_hash=hash_token(token), **{self.owner_field: owner_id}, created_at=now,
                         expires_at=expires_at, last_seen_at=now, ip=ip[:64], user_agent=user_agent[:512], **columns)
        return token, row

    async def end(self, *, session: AsyncSession, token: str, now: dt.datetime | None = None,
                  where: Sequence[Any] = ()) -> bool:
        """End this token's session (and only if `where` holds too); False when it was not an open session."""
        result = await session.execute(update(self.model).where(*self.is_open(token), *where)
                                       .values(revoked_at=now or utcnow()))
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def end_all(self, *, session: AsyncSession, owner_id: int, now: dt.datetime | None = None,
                      keep: int | None = None) -> int:
        """End every open session of an account (but the session `keep`); how many were open."""
        statement = (update(self.model).where(getattr(self.model, self.owner_field) == owner_id,
                                              self.model.revoked_at.is_(None)).values(revoked_at=now or utcnow()))
        if keep is not None:
            statement = statement.where(self.model.id != keep)
        result = await session.execute(statement)
        return int(result.rowcount or 0)  # type: ignore[attr-defined]

    async def touch(self, *, session: AsyncSession, session_id: int, now: dt.datetime | None = None) -> None:
        """The session was used now (the idle clock starts again; the list of devices shows it)."""
        await session.execute(update(self.model).where(self.model.id == session_id)
                              .values(last_seen_at=now or utcnow()))
