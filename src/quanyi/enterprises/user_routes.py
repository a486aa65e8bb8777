"""Admin API for enterprise portal users (企业门户账号): the people of an enterprise who log in at /portal.
Platform staff only, like the rest of the enterprise admin API; enterprise admins manage their own colleagues
in the portal itself."""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Path

from quanyi.deps import PlatformAdminDep, ReadSessionDep, SessionDep
from quanyi.enterprises import users
from quanyi.enterprises.models import EnterpriseUser
from quanyi.enterprises.routes import CodePath
from quanyi.enterprises.schemas import EnterpriseUserCreate, EnterpriseUserRead, EnterpriseUserUpdate

__all__ = ["router", "user_read"]

logger = logging.getLogger("quanyi.enterprises.users")
router = APIRouter(prefix="/api/admin/enterprises/{code}/users", tags=["admin: enterprises"])
UsernamePath = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")]


def user_read(user: EnterpriseUser) -> EnterpriseUserRead:
    return EnterpriseUserRead(username=user.username, display_name=user.display_name, role=user.role,
                              active=user.active, second_factor=user.totp_enabled_at is not None,
                              created_by=user.created_by, created_at=user.created_at,
                              last_login_at=user.last_login_at)


@router.get("", response_model=list[EnterpriseUserRead], summary="The enterprise's portal users")
async def list_users(code: CodePath, session: ReadSessionDep, _: PlatformAdminDep) -> list[EnterpriseUserRead]:
    return [user_read(u) for u in await users.list_users(session=session, code=code)]


@router.post("", response_model=EnterpriseUserRead, status_code=201,
             summary="Add a portal user (role admin, purchaser or viewer) who logs in at /portal")
async def create_user(code: CodePath, data: EnterpriseUserCreate, session: SessionDep,
                      admin: PlatformAdminDep) -> EnterpriseUserRead:
    user = await users.create_user(session=session, code=code, username=data.username, password=data.password,
                                   role=data.role, display_name=data.display_name, actor=admin)
    logger.info("portal user %s of enterprise %s (%s) created by %s", user.username, code, user.role, admin)
    return user_read(user)


@router.get("/{username}", response_model=EnterpriseUserRead, summary="One portal user")
async def get_user(code: CodePath, username: UsernamePath, session: ReadSessionDep,
                   _: PlatformAdminDep) -> EnterpriseUserRead:
    return user_read(await users.get_user(session=session, code=code, username=username))


@router.patch("/{username}", response_model=EnterpriseUserRead,
              summary="Role, name, enabled (disabling ends their sessions), password (ends their sessions)")
async def update_user(code: CodePath, username: UsernamePath, data: EnterpriseUserUpdate, session: SessionDep,
                      admin: PlatformAdminDep) -> EnterpriseUserRead:
    user = await users.update_user(session=session, code=code, username=username, role=data.role,
                                   active=data.active, display_name=data.display_name)
    if data.password is not None:
        user = await users.set_password(session=session, code=code, username=username, password=data.password)
    logger.info("portal user %s of enterprise %s changed by %s: %s", user.username, code, admin,
                sorted(data.model_dump(exclude_none=True, exclude={"password"}))
                + (["password"] if data.password else []))
    return user_read(user)


@router.post("/{username}/end-sessions", response_model=EnterpriseUserRead,
             summary="Log the user out everywhere (every portal session ends now)")
async def end_sessions(code: CodePath, username: UsernamePath, session: SessionDep,
                       admin: PlatformAdminDep) -> EnterpriseUserRead:
    user = await users.get_user(session=session, code=code, username=username)
    ended = await users.end_sessions(session=session, user_id=user.id)
    logger.info("%d portal sessions of %s/%s ended by %s", ended, code, user.username, admin)
    return user_read(user)


@router.delete("/{username}/second-factor", response_model=EnterpriseUserRead,
               summary="Turn off the user's second factor (a lost phone); ends their sessions")
async def reset_second_factor(code: CodePath, username: UsernamePath, session: SessionDep,
                              admin: PlatformAdminDep) -> EnterpriseUserRead:
    user = await users.reset_second_factor(session=session, code=code, username=username)
    logger.info("second factor of portal user %s/%s reset by %s", code, user.username, admin)
    return user_read(user)
