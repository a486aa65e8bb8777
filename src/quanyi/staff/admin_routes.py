"""Staff administration API (员工管理): the staff of the caller's scope. A merchant's owner adds and manages their
merchant's staff with merchant roles only; platform staff manage everyone (platform roles for platform staff)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Response

from quanyi.deps import AdminDep, ReadSessionDep, ScopeDep, SessionDep
from quanyi.merchants import service as merchants_service
from quanyi.staff import service as staff_service
from quanyi.staff.models import StaffUser
from quanyi.staff.roles import roles_for_scope
from quanyi.staff.schemas import StaffCreate, StaffRead, StaffRolesWrite

__all__ = ["admin_router"]

admin_router = APIRouter(prefix="/api/admin/staff", tags=["staff"])

UsernamePath = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._-]+$")]


def _read(user: StaffUser) -> StaffRead:
    return StaffRead(username=user.username, merchant_id=user.merchant_id, roles=sorted(user.roles.split()),
                     permissions=sorted(staff_service.effective_permissions(user)), active=user.active,
                     second_factor=user.totp_enabled_at is not None, created_at=user.created_at)


@admin_router.get("", response_model=list[StaffRead], summary="Staff of your scope (a merchant's: its own staff)")
async def list_staff(session: ReadSessionDep, _: AdminDep, scope: ScopeDep) -> list[StaffRead]:
    return [_read(u) for u in await staff_service.list_staff(session=session, scope=scope)]


@admin_router.get("/roles", summary="The roles you may give: merchant roles to a merchant's staff, platform roles "
                                    "to platform staff")
async def roles(_: AdminDep, scope: ScopeDep) -> list[dict[str, object]]:
    return [{"name": r.name, "title_zh": r.title_zh, "title_en": r.title_en, "permissions": sorted(r.permissions),
             "description": r.description} for r in roles_for_scope(scope.merchant_id).values()]


@admin_router.post("", response_model=StaffRead, status_code=201,
                   summary="Add a staff member (of your merchant, or of the merchant a platform admin names)")
async def create_staff(data: StaffCreate, session: SessionDep, _: AdminDep, scope: ScopeDep) -> StaffRead:
    merchant_id = scope.merchant_id
    if data.merchant_code is not None:
        merchant_id = await merchants_service.resolve_owner(session=session, scope=scope,
                                                            merchant_code=data.merchant_code)
    user = await staff_service.create_staff(session=session, username=data.username, password=data.password,
                                            roles=data.roles, merchant_id=merchant_id)
    return _read(user)


@admin_router.get("/{username}", response_model=StaffRead, summary="One staff member of your scope")
async def get_staff(username: UsernamePath, session: ReadSessionDep, _: AdminDep, scope: ScopeDep) -> StaffRead:
    return _read(await staff_service.get_staff(session=session, username=username, scope=scope))


@admin_router.put("/{username}/roles", response_model=StaffRead,
                  summary="Replace a staff member's roles (only roles of their side: merchant or platform)")
async def set_roles(username: UsernamePath, data: StaffRolesWrite, session: SessionDep, _: AdminDep,
                    scope: ScopeDep) -> StaffRead:
    user = await staff_service.get_staff(session=session, username=username, scope=scope)
    await staff_service.unassign_roles(session=session, username=user.username, roles=user.roles.split(),
                                       scope=scope)
    return _read(await staff_service.assign_roles(session=session, username=user.username, roles=data.roles,
                                                  scope=scope))


@admin_router.post("/{username}/disable", status_code=204, summary="Disable a staff member (their sessions end)")
async def disable(username: UsernamePath, session: SessionDep, _: AdminDep, scope: ScopeDep) -> Response:
    await staff_service.set_active(session=session, username=username, active=False, scope=scope)
    return Response(status_code=204)


@admin_router.post("/{username}/enable", status_code=204, summary="Allow a disabled staff member to log in again")
async def enable(username: UsernamePath, session: SessionDep, _: AdminDep, scope: ScopeDep) -> Response:
    await staff_service.set_active(session=session, username=username, active=True, scope=scope)
    return Response(status_code=204)
