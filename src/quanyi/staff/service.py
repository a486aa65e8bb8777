"""Staff accounts (员工账号): create, password, permissions, login sessions and who a bearer token belongs to.

Passwords are argon2 hashes. A login hands out a random bearer token; only its SHA-256 is stored, so a copy
of the database cannot be replayed as a session. Failed logins are counted per client IP and per username
in the shop's rate limiter; past either limit every attempt is refused (even a right password) until the
window ends. An unknown username costs one argon2 verification like a wrong password and gets the same
answer, so neither the timing nor the message tells which usernames exist. (These rules are quanyi.logins,
shared with the enterprise portal's logins.)
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from quanyi import logins
from quanyi.db import Database, utcnow
from quanyi.errors import Conflict, DomainError, InvalidInput, NotFound
from quanyi.inventory.crypto import CardKeyCipher
from quanyi.logins import LoginFailed, LoginLimits, LoginRateLimited, hash_token
from quanyi.merchants.models import Merchant, MerchantStatus
from quanyi.passwords import hash_password
from quanyi.risk.service import RateLimiter
from quanyi.scope import PLATFORM, Scope
from quanyi.staff import second_factor
from quanyi.staff.models import API_CHANNEL, StaffSession, StaffUser
from quanyi.staff.permissions import ADMIN, PERMISSIONS
from quanyi.staff.roles import ROLES, permissions_of_roles, roles_for_scope

__all__ = [
    "PERMISSIONS", "ADMIN", "Principal", "LoginLimits", "LoginFailed", "LoginRateLimited", "StaffNotFound",
    "StaffExists", "InvalidStaffInput", "PermissionDenied", "SecondFactorRequired", "create_staff", "set_password",
    "grant", "revoke", "assign_roles", "unassign_roles", "set_active", "end_sessions", "list_staff", "get_staff",
    "get_staff_by_id", "replace_roles", "reset_second_factor", "NoSecondFactor",
    "effective_permissions", "principal_of", "authenticate", "check_second_factor", "open_session", "login", "logout",
    "principal_for_token", "hash_token", "check_new_login", "username_available", "merchant_works",
]

MIN_PASSWORD_LENGTH = logins.MIN_PASSWORD_LENGTH
_TOKEN_PREFIX = "qs_"  # noqa: S105 - tells a staff session token apart from the admin token at a glance
# Staff sessions (API tokens and console cookies): stored, rotated and ended the shop's one way.
SESSIONS = logins.SessionTable(StaffSession, owner_field="staff_id", prefix=_TOKEN_PREFIX)
_LOGIN_COUNTER = "staff-login"  # the rate limiter's failure counters of staff logins


class PermissionDenied(DomainError):
    code = "permission_denied"


class SecondFactorRequired(LoginFailed):
    code = "second_factor_required"


class StaffNotFound(NotFound):
    code = "staff_not_found"


class StaffExists(Conflict):
    code = "staff_exists"


class InvalidStaffInput(InvalidInput):
    code = "invalid_staff_input"


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling the admin API: the admin token ("admin") or a logged-in staff member.
    `permissions` are the effective ones: granted directly and through `roles`."""

    name: str
    permissions: frozenset[str]
    staff_id: int | None = None
    roles: frozenset[str] = frozenset()
    # The merchant this caller works for (商户员工), or None for platform staff and the admin token.
    merchant_id: int | None = None

    def can(self, permission: str) -> bool:
        return ADMIN in self.permissions or permission in self.permissions


def _check_permissions(names: Iterable[str]) -> set[str]:
    wanted = {name.strip() for name in names if name.strip()}
    unknown = wanted - PERMISSIONS.keys()
    if unknown:
        raise InvalidStaffInput(f"unknown permission(s): {', '.join(sorted(unknown))}; known: "
                                + ", ".join(PERMISSIONS))
    return wanted


def _check_roles(names: Iterable[str], merchant_id: int | None = None, *, giving: bool = True) -> set[str]:
    """Known role names; when `giving` them, only roles of the staff member's side: merchant roles for a
    merchant's staff, platform roles for platform staff (a merchant's staff can never hold a platform role)."""
    wanted = {name.strip() for name in names if name.strip()}
    allowed = roles_for_scope(merchant_id) if giving else ROLES
    unknown = wanted - allowed.keys()
    if unknown:
        raise InvalidStaffInput(f"unknown role(s) for this staff member: {', '.join(sorted(unknown))}; known: "
                                + ", ".join(allowed))
    return wanted


def effective_permissions(user: StaffUser) -> frozenset[str]:
    """What a staff member may do now: their own permissions plus those of their roles."""
    return frozenset(user.permissions.split()) | permissions_of_roles(user.roles.split())


def principal_of(user: StaffUser) -> Principal:
    return Principal(name=user.username, permissions=effective_permissions(user), staff_id=user.id,
                     roles=frozenset(user.roles.split()), merchant_id=user.merchant_id)


def _check_password(password: str) -> str:
    return logins.check_password(password, InvalidStaffInput)


def _normalize_username(username: str) -> str:
    return logins.normalize_username(username)


async def _get(session: AsyncSession, username: str, *, lock: bool = False, scope: Scope = PLATFORM) -> StaffUser:
    stmt = select(StaffUser).where(StaffUser.username == _normalize_username(username),
                                   scope.where(StaffUser.merchant_id))
    if lock:
        stmt = stmt.with_for_update()
    user = await session.scalar(stmt)
    if user is None:
        raise StaffNotFound(f"no staff member named {username!r}")
    return user


async def create_staff(
    *, session: AsyncSession, username: str, password: str, permissions: Iterable[str] = (),
    roles: Iterable[str] = (), merchant_id: int | None = None, password_hash: str | None = None,
) -> StaffUser:
    """Add a staff member with an argon2-hashed password and the given permissions and roles. `merchant_id`: a
    merchant's staff member (sees only that merchant's objects), None: platform staff. `password_hash`: a
    password hashed earlier with `hash_password` (a merchant application's owner), instead of `password`."""
    name = logins.check_username(username, InvalidStaffInput)
    granted = _check_permissions(permissions)
    given_roles = _check_roles(roles, merchant_id)
    if password_hash is None:
        _check_password(password)
    if not await username_available(session=session, username=name):
        raise StaffExists(f"staff member {name!r} already exists")
    password_hash = password_hash or await hash_password(password)
    user = StaffUser(username=name, password_hash=password_hash, permissions=" ".join(sorted(granted)),
                     roles=" ".join(sorted(given_roles)), merchant_id=merchant_id)
    session.add(user)
    await session.flush()
    return user


def check_new_login(username: str, password: str) -> str:
    """The normalized username of a new login, or InvalidStaffInput (format, password length)."""
    name = logins.check_username(username, InvalidStaffInput)
    _check_password(password)
    return name


async def username_available(*, session: AsyncSession, username: str) -> bool:
    return await session.scalar(select(StaffUser.id).where(
        StaffUser.username == _normalize_username(username))) is None


async def set_password(*, session: AsyncSession, username: str, password: str, now: dt.datetime | None = None,
                       scope: Scope = PLATFORM) -> None:
    """Replace a staff member's password and end every session they have."""
    now = now or utcnow()
    user = await _get(session, username, lock=True, scope=scope)
    user.password_hash = await hash_password(_check_password(password))
    user.password_changed_at = now
    await _revoke_sessions(session, user.id, now)


async def grant(*, session: AsyncSession, username: str, permissions: Iterable[str],
                     scope: Scope = PLATFORM) -> StaffUser:
    """Add permissions to a staff member (effective on their next request)."""
    user = await _get(session, username, lock=True, scope=scope)
    user.permissions = " ".join(sorted(set(user.permissions.split()) | _check_permissions(permissions)))
    return user


async def revoke(*, session: AsyncSession, username: str, permissions: Iterable[str],
                      scope: Scope = PLATFORM) -> StaffUser:
    """Take permissions away from a staff member (effective on their next request)."""
    user = await _get(session, username, lock=True, scope=scope)
    user.permissions = " ".join(sorted(set(user.permissions.split()) - _check_permissions(permissions)))
    return user


async def assign_roles(*, session: AsyncSession, username: str, roles: Iterable[str],
                       scope: Scope = PLATFORM) -> StaffUser:
    """Give a staff member roles of their side (merchant or platform; effective on their next request)."""
    user = await _get(session, username, lock=True, scope=scope)
    user.roles = " ".join(sorted(set(user.roles.split()) | _check_roles(roles, user.merchant_id)))
    return user


async def unassign_roles(*, session: AsyncSession, username: str, roles: Iterable[str],
                         scope: Scope = PLATFORM) -> StaffUser:
    """Take roles away from a staff member (effective on their next request)."""
    user = await _get(session, username, lock=True, scope=scope)
    user.roles = " ".join(sorted(set(user.roles.split()) - _check_roles(roles, giving=False)))
    return user


async def get_staff(*, session: AsyncSession, username: str, scope: Scope = PLATFORM) -> StaffUser:
    return await _get(session, username, scope=scope)


async def get_staff_by_id(*, session: AsyncSession, staff_id: int) -> StaffUser:
    user = await session.get(StaffUser, staff_id)
    if user is None:
        raise StaffNotFound(f"no staff member with id {staff_id}")
    return user


async def set_active(*, session: AsyncSession, username: str, active: bool, now: dt.datetime | None = None,
                     scope: Scope = PLATFORM, by_staff_id: int | None = None) -> None:
    """Enable or disable a staff member; disabling ends their sessions. `by_staff_id`: who asks (nobody disables
    themself: the last administrator would lock the shop out)."""
    user = await _get(session, username, lock=True, scope=scope)
    if not active and by_staff_id is not None and user.id == by_staff_id:
        raise InvalidStaffInput("you cannot disable your own account")
    user.active = active
    if not active:
        await _revoke_sessions(session, user.id, now or utcnow())


async def replace_roles(*, session: AsyncSession, username: str, roles: Iterable[str],
                        scope: Scope = PLATFORM) -> StaffUser:
    """Give a staff member exactly these roles (only roles of their side: merchant or platform)."""
    user = await _get(session, username, lock=True, scope=scope)
    wanted = _check_roles(roles, user.merchant_id)
    user.roles = " ".join(sorted(wanted))
    return user


class NoSecondFactor(Conflict):
    code = "no_second_factor"


async def reset_second_factor(*, session: AsyncSession, username: str, scope: Scope = PLATFORM,
                              now: dt.datetime | None = None, by_staff_id: int | None = None) -> StaffUser:
    """Turn off a staff member's second factor (a lost phone) and end their sessions; they log in with their
    password alone and may enrol again. `by_staff_id`: who asks; nobody resets their own (a session alone must not
    take the second factor off: one's own is turned off on the account page with a current code)."""
    user = await _get(session, username, lock=True, scope=scope)
    if by_staff_id is not None and user.id == by_staff_id:
        raise InvalidStaffInput("you cannot reset your own second factor: turn it off on your account page with a "
                                "current code, or ask another administrator")
    if user.totp_enabled_at is None:
        raise NoSecondFactor(f"{user.username} has no second factor to reset")
    await second_factor.disable(session=session, staff_id=user.id)
    await _revoke_sessions(session, user.id, now or utcnow())
    return user


async def list_staff(*, session: AsyncSession, scope: Scope = PLATFORM) -> list[StaffUser]:
    """Staff in the scope: a merchant's staff see their colleagues; the platform sees everyone."""
    return list((await session.scalars(select(StaffUser).where(scope.where(StaffUser.merchant_id))
                                       .order_by(StaffUser.username))).all())


async def end_sessions(*, session: AsyncSession, staff_id: int, now: dt.datetime | None = None) -> None:
    """End every open session (API and console) of a staff member."""
    await _revoke_sessions(session, staff_id, now or utcnow())


def merchant_works():  # type: ignore[no-untyped-def]
    """SQL condition: platform staff, or staff of a merchant that is not suspended (a suspended merchant's staff
    cannot log in, and their open sessions, API or console, stop working at once)."""
    active = select(Merchant.id).where(Merchant.id == StaffUser.merchant_id,
                                       Merchant.status == MerchantStatus.ACTIVE.value).exists()
    return or_(StaffUser.merchant_id.is_(None), active)


async def _revoke_sessions(session: AsyncSession, staff_id: int, now: dt.datetime) -> None:
    await SESSIONS.end_all(session=session, owner_id=staff_id, now=now)


async def authenticate(
    *, db: Database, limiter: RateLimiter, limits: LoginLimits, username: str, password: str, ip: str,
) -> StaffUser:
    """Check a username and password under the login limits (quanyi.logins); the staff member, or LoginFailed /
    LoginRateLimited. The API and the console share these limits (one counter per IP and per username).

    Raises LoginRateLimited past the failure limits and LoginFailed, with one message, for an unknown
    user, a disabled one, or a wrong password. The failure counters live in the limiter, outside any
    transaction of the caller, so a refused login is still counted."""
    name = _normalize_username(username)[:64]

    async def load() -> tuple[StaffUser | None, str | None, bool]:
        async with db.read_session() as session:
            user = await session.scalar(select(StaffUser).where(StaffUser.username == name, merchant_works()))
        return user, user.password_hash if user else None, bool(user and user.active)

    return await logins.check_password_login(limiter=limiter, limits=limits, counter=_LOGIN_COUNTER, ip=ip,
                                             account=name, password=password, load=load)


async def check_second_factor(
    *, db: Database, limiter: RateLimiter, limits: LoginLimits, cipher: CardKeyCipher, staff_id: int, code: str,
    ip: str, now: dt.datetime | None = None,
) -> StaffUser:
    """Check a staff member's TOTP code or recovery code under the same limits as passwords (a wrong code
    counts as a failed login); the staff member, or LoginFailed / LoginRateLimited. Uses the code up."""
    async with db.read_session() as session:
        user = await get_staff_by_id(session=session, staff_id=staff_id)

    async def use() -> bool:
        async with db.transaction() as session:
            return await second_factor.use_code(session=session, cipher=cipher, staff_id=staff_id, code=code, now=now)

    await logins.check_code_login(limiter=limiter, limits=limits, counter=_LOGIN_COUNTER, ip=ip,
                                  account=user.username, use_code=use)
    return user


async def open_session(
    *, db: Database, user: StaffUser, hours: float, ip: str, user_agent: str, channel: str = API_CHANNEL,
    second_factor_pending: bool = False, now: dt.datetime | None = None,
) -> tuple[str, StaffSession]:
    """A new session for a staff member who proved who they are: (token, session row). Only the token's
    hash is stored; the token itself is returned once."""
    now = now or utcnow()
    token, record = SESSIONS.start(owner_id=user.id, now=now, expires_at=now + dt.timedelta(hours=hours), ip=ip,
                                   user_agent=user_agent, channel=channel, second_factor_pending=second_factor_pending)
    async with db.transaction() as session:
        session.add(record)
    return token, record


async def login(
    *,
    db: Database,
    limiter: RateLimiter,
    limits: LoginLimits,
    username: str,
    password: str,
    ip: str,
    user_agent: str,
    cipher: CardKeyCipher | None = None,
    otp: str | None = None,
    now: dt.datetime | None = None,
) -> tuple[str, StaffSession, StaffUser]:
    """Log in to the admin API: (bearer token, session, staff member). A staff member with a second factor
    must also give `otp` (their authenticator's code or a recovery code): SecondFactorRequired without it.
    Runs its own transactions: the failure counters must be committed even though the login is refused."""
    user = await authenticate(db=db, limiter=limiter, limits=limits, username=username, password=password, ip=ip)
    if user.totp_enabled_at is not None:
        if not otp or cipher is None:
            raise SecondFactorRequired("this account has a second factor: send its current code as `otp`")
        user = await check_second_factor(db=db, limiter=limiter, limits=limits, cipher=cipher, staff_id=user.id,
                                         code=otp, ip=ip, now=now)
    token, record = await open_session(db=db, user=user, hours=limits.session_hours, ip=ip, user_agent=user_agent,
                                       now=now)
    return token, record, user


async def logout(*, session: AsyncSession, token: str, now: dt.datetime | None = None) -> bool:
    """End the session of this token; False when it was not an open session."""
    return await SESSIONS.end(session=session, token=token, now=now)


async def principal_for_token(*, session: AsyncSession, token: str, now: dt.datetime | None = None) -> Principal | None:
    """The staff member an open, unexpired API session token belongs to, with their current permissions.
    Console session cookies are not bearer tokens (see staff.sessions)."""
    if not SESSIONS.may_be_ours(token):
        return None
    now = now or utcnow()
    row = (
        await session.execute(
            select(StaffUser)
            .join(StaffSession, StaffSession.staff_id == StaffUser.id)
            .where(*SESSIONS.is_open(token), StaffSession.channel == API_CHANNEL, StaffSession.expires_at > now,
                   StaffUser.active.is_(True), merchant_works())
        )
    ).scalar_one_or_none()
    if row is None:
        return None
    return principal_of(row)
