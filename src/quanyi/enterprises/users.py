"""Enterprise portal users (企业门户账号): the people of an enterprise customer who log in at /portal and run
its account themselves — balance and statement, prices, bulk purchases and their codes, benefit campaigns.

Created by the shop's operators (admin API, `quanyi enterprises users`, console) and by the enterprise's own
admins for their enterprise. A login names the enterprise code, the username (unique within the enterprise)
and the password; the password rules, the failure limits, the session tokens and the optional TOTP second
factor are the shop's one implementation (quanyi.logins, quanyi.second_factor), shared with staff logins.

Roles (one per user), each a set of permissions checked by every portal page:
- admin: everything, the enterprise's users, and top-up requests (充值申请: money the enterprise pays in);
- purchaser: buys (bulk purchases, the codes' download links) and runs benefit campaigns;
- viewer: reads (balance, statement, prices, purchases, campaigns and their claims), never the codes.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from quanyi import logins
from quanyi.db import Database, utcnow
from quanyi.enterprises import service as enterprises_service
from quanyi.enterprises import user_sessions
from quanyi.enterprises.models import (
    Enterprise,
    EnterpriseUser,
    EnterpriseUserRecoveryCode,
)
from quanyi.errors import Conflict, InvalidInput, NotFound
from quanyi.inventory.crypto import CardKeyCipher
from quanyi.logins import LoginLimits
from quanyi.passwords import hash_password
from quanyi.risk.service import RateLimiter
from quanyi.second_factor import SecondFactorStore

__all__ = [
    "VIEW", "BUY", "CAMPAIGNS", "USERS", "TOP_UP", "ROLES", "SECOND_FACTOR", "EnterpriseUserNotFound",
    "EnterpriseUserExists", "InvalidEnterpriseUserInput", "NoSecondFactor", "can", "actor_name", "create_user",
    "list_users", "get_user", "get_user_by_id", "update_user", "set_password", "reset_second_factor", "end_sessions",
    "authenticate", "check_second_factor",
]

VIEW, BUY, CAMPAIGNS, USERS, TOP_UP = "view", "buy", "campaigns", "users", "top_up"
ROLES: dict[str, frozenset[str]] = {
    "admin": frozenset({VIEW, BUY, CAMPAIGNS, USERS, TOP_UP}),
    "purchaser": frozenset({VIEW, BUY, CAMPAIGNS}),
    "viewer": frozenset({VIEW}),
}
SECOND_FACTOR = SecondFactorStore(user_model=EnterpriseUser, recovery_model=EnterpriseUserRecoveryCode,
                                  owner_field="user_id", label="enterprise-user-totp")
_LOGIN_COUNTER = "portal-login"  # failures counted apart from staff logins, under the same limits


class EnterpriseUserNotFound(NotFound):
    code = "enterprise_user_not_found"


class EnterpriseUserExists(Conflict):
    code = "enterprise_user_exists"


class InvalidEnterpriseUserInput(InvalidInput):
    code = "invalid_enterprise_user"


class NoSecondFactor(Conflict):
    code = "no_second_factor"


def can(role: str, permission: str) -> bool:
    return permission in ROLES.get(role, frozenset())


def actor_name(enterprise_code: str, username: str) -> str:
    """How an enterprise user appears as an actor (audit log, `created_by`): `acme/alice` (lower case, like
    staff names, so the console's audit filter finds it)."""
    return f"{enterprise_code}/{username}".lower()[:64]


def _check_role(role: str) -> str:
    if role not in ROLES:
        raise InvalidEnterpriseUserInput(f"role must be one of {', '.join(ROLES)}", field="role")
    return role


async def create_user(*, session: AsyncSession, code: str, username: str, password: str, role: str,
                      actor: str, display_name: str = "", now: dt.datetime | None = None) -> EnterpriseUser:
    """Add a portal user to the enterprise with an argon2-hashed password and one role."""
    now = now or utcnow()
    enterprise = await enterprises_service.get_enterprise(session=session, code=code)
    name = logins.check_username(username, InvalidEnterpriseUserInput)
    logins.check_password(password, InvalidEnterpriseUserInput)
    _check_role(role)
    if await session.scalar(select(EnterpriseUser.id).where(EnterpriseUser.enterprise_id == enterprise.id,
                                                            EnterpriseUser.username == name)) is not None:
        raise EnterpriseUserExists(f"enterprise {enterprise.code} already has a user {name!r}")
    user = EnterpriseUser(enterprise_id=enterprise.id, username=name, display_name=display_name.strip()[:100],
                          password_hash=await hash_password(password), role=role, active=True,
                          created_by=actor[:64], created_at=now, password_changed_at=now)
    try:
        async with session.begin_nested():  # a concurrent creation of the same name loses here
            session.add(user)
            await session.flush()
    except IntegrityError:
        raise EnterpriseUserExists(f"enterprise {enterprise.code} already has a user {name!r}") from None
    return user


async def list_users(*, session: AsyncSession, code: str) -> Sequence[EnterpriseUser]:
    enterprise = await enterprises_service.get_enterprise(session=session, code=code)
    return (await session.scalars(select(EnterpriseUser).where(EnterpriseUser.enterprise_id == enterprise.id)
                                  .order_by(EnterpriseUser.username))).all()


async def get_user(*, session: AsyncSession, code: str, username: str, lock: bool = False) -> EnterpriseUser:
    """A user of this enterprise by username (another enterprise's user is not found)."""
    enterprise = await enterprises_service.get_enterprise(session=session, code=code)
    stmt = select(EnterpriseUser).where(EnterpriseUser.enterprise_id == enterprise.id,
                                        EnterpriseUser.username == logins.normalize_username(username)[:64])
    user = await session.scalar(stmt.with_for_update().execution_options(populate_existing=True) if lock else stmt)
    if user is None:
        raise EnterpriseUserNotFound(f"enterprise {code} has no user {username!r}")
    return user


async def get_user_by_id(*, session: AsyncSession, user_id: int) -> EnterpriseUser:
    user = await session.get(EnterpriseUser, user_id)
    if user is None:
        raise EnterpriseUserNotFound(f"no enterprise user {user_id}")
    return user


async def update_user(*, session: AsyncSession, code: str, username: str, role: str | None = None,
                      active: bool | None = None, display_name: str | None = None, by_user_id: int | None = None,
                      now: dt.datetime | None = None) -> EnterpriseUser:
    """Change a user's role, name or whether they may log in (disabling ends their sessions). `by_user_id`: the
    enterprise user asking, who can neither disable themselves nor change their own role (an enterprise's last
    admin would lock it out; the shop's operators can always help)."""
    user = await get_user(session=session, code=code, username=username, lock=True)
    if by_user_id is not None and user.id == by_user_id and (
            (active is False) or (role is not None and role != user.role)):
        raise InvalidEnterpriseUserInput("you cannot disable your own account or change your own role")
    if role is not None:
        user.role = _check_role(role)
    if display_name is not None:
        user.display_name = display_name.strip()[:100]
    if active is not None:
        user.active = active
        if not active:
            await end_sessions(session=session, user_id=user.id, now=now)
    await session.flush()
    return user


async def set_password(*, session: AsyncSession, code: str, username: str, password: str,
                       now: dt.datetime | None = None) -> EnterpriseUser:
    """Replace a user's password and end every session they have."""
    now = now or utcnow()
    user = await get_user(session=session, code=code, username=username, lock=True)
    user.password_hash = await hash_password(logins.check_password(password, InvalidEnterpriseUserInput))
    user.password_changed_at = now
    await end_sessions(session=session, user_id=user.id, now=now)
    return user


async def reset_second_factor(*, session: AsyncSession, code: str, username: str,
                              now: dt.datetime | None = None) -> EnterpriseUser:
    """Turn off a user's second factor (a lost phone) and end their sessions."""
    user = await get_user(session=session, code=code, username=username, lock=True)
    if user.totp_enabled_at is None:
        raise NoSecondFactor(f"{user.username} has no second factor to reset")
    await SECOND_FACTOR.disable(session=session, owner_id=user.id)
    await end_sessions(session=session, user_id=user.id, now=now)
    return user


async def end_sessions(*, session: AsyncSession, user_id: int, now: dt.datetime | None = None) -> int:
    """End every open portal session of a user; how many were open."""
    return await user_sessions.SESSIONS.end_all(session=session, owner_id=user_id, now=now)


async def authenticate(*, db: Database, limiter: RateLimiter, limits: LoginLimits, code: str, username: str,
                       password: str, ip: str) -> tuple[EnterpriseUser, Enterprise]:
    """Check enterprise code, username and password under the login limits (quanyi.logins): the user and their
    enterprise, or LoginFailed (one answer for an unknown enterprise or user, a disabled one, a wrong password)
    / LoginRateLimited."""
    code, name = code.strip()[:48], logins.normalize_username(username)[:64]

    async def load() -> tuple[tuple[EnterpriseUser, Enterprise] | None, str | None, bool]:
        async with db.read_session() as session:
            # The code as typed in any case (codes differing only in case: the exact one).
            rows = (await session.execute(
                select(EnterpriseUser, Enterprise).join(Enterprise, Enterprise.id == EnterpriseUser.enterprise_id)
                .where(func.lower(Enterprise.code) == code.lower(), EnterpriseUser.username == name)
                .limit(5))).all()
        exact = [row for row in rows if row[1].code == code]
        row = exact[0] if exact else (rows[0] if len(rows) == 1 else None)
        if row is None:
            return None, None, False
        return (row[0], row[1]), row[0].password_hash, row[0].active

    return await logins.check_password_login(limiter=limiter, limits=limits, counter=_LOGIN_COUNTER, ip=ip,
                                             account=f"{code.lower()}/{name}", password=password, load=load)


async def check_second_factor(*, db: Database, limiter: RateLimiter, limits: LoginLimits, cipher: CardKeyCipher,
                              user_id: int, code: str, ip: str, now: dt.datetime | None = None) -> EnterpriseUser:
    """Check a user's TOTP or recovery code under the same limits as passwords; uses the code up."""
    async with db.read_session() as session:
        row = (await session.execute(select(EnterpriseUser, Enterprise.code).join(
            Enterprise, Enterprise.id == EnterpriseUser.enterprise_id).where(EnterpriseUser.id == user_id))).first()
    if row is None:
        raise logins.LoginFailed("wrong or already used code")
    user, enterprise_code = row

    async def use() -> bool:
        async with db.transaction() as session:
            return await SECOND_FACTOR.use_code(session=session, cipher=cipher, owner_id=user_id, code=code, now=now)

    await logins.check_code_login(limiter=limiter, limits=limits, counter=_LOGIN_COUNTER, ip=ip,
                                  account=f"{enterprise_code.lower()}/{user.username}", use_code=use)
    return user  # type: ignore[no-any-return]
