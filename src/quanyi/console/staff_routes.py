"""Staff and roles (员工与角色): the staff of the caller's scope, add a staff member, give roles, disable / enable,
reset a lost second factor. Through the staff service the admin API and the CLI use: a merchant's owner manages
their merchant's staff with merchant roles only; platform staff manage everyone. Passwords are set by the new staff
member's manager once and never shown again; nobody disables themself or resets their own second factor."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Request
from fastapi.responses import HTMLResponse, Response

import quanyi.console.texts.staff  # noqa: F401 - registers the texts
from quanyi.console import forms
from quanyi.console.auth import ConsoleUser, console_router, needs
from quanyi.console.menu import MenuItem, register
from quanyi.console.rendering import render_page
from quanyi.deps import ContextDep
from quanyi.errors import DomainError, NotFound
from quanyi.merchants import service as merchants_service
from quanyi.staff import service as staff_service
from quanyi.staff.audit import record_action
from quanyi.staff.permissions import ADMIN
from quanyi.staff.roles import MERCHANT, PLATFORM, ROLES, roles_for_scope
from quanyi.staff.schemas import StaffCreate

__all__ = ["router"]

router = console_router("/console/staff")
register(MenuItem("staff", "/console/staff", ADMIN, group="system", order=10, icon="users"))

Manager = Annotated[ConsoleUser, needs(ADMIN)]
Username = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._-]+$")]


def _roles_offered(user: ConsoleUser) -> dict[str, list]:
    """The roles this manager may give, by side: a merchant's owner only their merchant's roles."""
    if not user.scope.is_platform:
        return {MERCHANT: list(roles_for_scope(user.scope.merchant_id).values())}
    return {PLATFORM: list(roles_for_scope(None).values()), MERCHANT: list(roles_for_scope(0).values())}


async def _list_page(request: Request, ctx: ContextDep, user: ConsoleUser, *, message: forms.Message | None = None,
                     typed: dict[str, object] | None = None, status_code: int = 200) -> HTMLResponse:
    async with ctx.db.read_session() as session:
        staff = await staff_service.list_staff(session=session, scope=user.scope)
        merchants = {m.id: m.code for m in await merchants_service.list_merchants(session=session, scope=user.scope)}
    return render_page(request, "console/staff.html", {
        "staff": staff, "merchants": merchants, "offered": _roles_offered(user), "message": message,
        "typed": typed or {}, "role_names": lambda u: sorted(u.roles.split()),
    }, user=user, active="staff", status_code=status_code)


@router.get("", response_class=HTMLResponse)
async def staff_list(request: Request, ctx: ContextDep, user: Manager) -> HTMLResponse:
    return await _list_page(request, ctx, user, message=forms.flash(request, "st", ("created",), values=("name",)))


@router.post("", response_class=HTMLResponse)
async def create_staff(request: Request, ctx: ContextDep, user: Manager) -> Response:
    form = await request.form()
    typed = {"username": str(form.get("username", ""))[:64], "merchant_code": str(form.get("merchant_code", ""))[:32],
             "roles": [str(r) for r in form.getlist("roles")]}
    try:
        data = forms.validated(StaffCreate, {
            "username": forms.text(form, "username", max_length=64), "password": str(form.get("password", "")),
            "roles": typed["roles"], "merchant_code": forms.text(form, "merchant_code", max_length=32) or None})
        async with ctx.db.transaction() as session:
            merchant_id = user.scope.merchant_id
            if data.merchant_code is not None:  # another merchant than the caller's: "not found", as in the API
                merchant_id = await merchants_service.resolve_owner(session=session, scope=user.scope,
                                                                    merchant_code=data.merchant_code)
            created = await staff_service.create_staff(session=session, username=data.username,
                                                       password=data.password, roles=data.roles,
                                                       merchant_id=merchant_id)
            await record_action(session=session, actor=user.actor, action="staff_created", object_type="staff",
                                object_id=created.username, summary=f"merchant={merchant_id or 'platform'} "
                                f"roles={','.join(sorted(data.roles)) or '-'}")
            name = created.username
    except DomainError as exc:
        return await _list_page(request, ctx, user, message=forms.error(exc), typed=typed,
                                status_code=forms.status_for(exc))
    return forms.back(f"/console/staff/{name}", "created", name=name)


async def _detail(request: Request, ctx: ContextDep, user: ConsoleUser, username: str, *,
                  message: forms.Message | None = None, status_code: int = 200) -> HTMLResponse:
    try:
        async with ctx.db.read_session() as session:
            member = await staff_service.get_staff(session=session, username=username, scope=user.scope)
            merchants = {m.id: m.code for m in await merchants_service.list_merchants(session=session,
                                                                                     scope=user.scope)}
    except NotFound:
        return forms.not_found(request, user, active="staff")
    return render_page(request, "console/staff_member.html", {
        "m": member, "merchant_code": merchants.get(member.merchant_id) if member.merchant_id else None,
        "roles": list(roles_for_scope(member.merchant_id).values()), "held": set(member.roles.split()),
        "unknown_roles": sorted(set(member.roles.split()) - ROLES.keys()),
        "permissions": sorted(staff_service.effective_permissions(member)), "is_me": member.id ==
        user.principal.staff_id, "message": message,
    }, user=user, active="staff", status_code=status_code)


@router.get("/{username}", response_class=HTMLResponse)
async def staff_member(username: Username, request: Request, ctx: ContextDep, user: Manager) -> HTMLResponse:
    message = forms.flash(request, "st", ("created", "roles_saved", "enabled", "disabled", "reset"), values=("name",))
    return await _detail(request, ctx, user, username, message=message)


@router.post("/{username}/roles", response_class=HTMLResponse)
async def set_roles(username: Username, request: Request, ctx: ContextDep, user: Manager) -> Response:
    roles = [str(r)[:64] for r in (await request.form()).getlist("roles")][:20]
    try:
        async with ctx.db.transaction() as session:
            member = await staff_service.replace_roles(session=session, username=username, roles=roles,
                                                       scope=user.scope)
            await record_action(session=session, actor=user.actor, action="staff_roles_set", object_type="staff",
                                object_id=member.username, summary=member.roles or "-")
            name = member.username
    except NotFound:
        return forms.not_found(request, user, active="staff")
    except DomainError as exc:
        return await _detail(request, ctx, user, username, message=forms.error(exc), status_code=forms.status_for(exc))
    return forms.back(f"/console/staff/{name}", "roles_saved")


@router.post("/{username}/active", response_class=HTMLResponse)
async def set_active(username: Username, request: Request, ctx: ContextDep, user: Manager) -> Response:
    active = forms.checkbox(await request.form(), "active")
    try:
        async with ctx.db.transaction() as session:
            await staff_service.set_active(session=session, username=username, active=active, scope=user.scope,
                                           by_staff_id=user.principal.staff_id)
            member = await staff_service.get_staff(session=session, username=username, scope=user.scope)
            await record_action(session=session, actor=user.actor,
                                action="staff_enabled" if active else "staff_disabled", object_type="staff",
                                object_id=member.username)
            name = member.username
    except NotFound:
        return forms.not_found(request, user, active="staff")
    except DomainError as exc:
        return await _detail(request, ctx, user, username, message=forms.error(exc), status_code=forms.status_for(exc))
    return forms.back(f"/console/staff/{name}", "enabled" if active else "disabled")


@router.post("/{username}/reset-2fa", response_class=HTMLResponse)
async def reset_second_factor(username: Username, request: Request, ctx: ContextDep, user: Manager) -> Response:
    try:
        async with ctx.db.transaction() as session:
            member = await staff_service.reset_second_factor(session=session, username=username, scope=user.scope,
                                                             by_staff_id=user.principal.staff_id)
            await record_action(session=session, actor=user.actor, action="staff_2fa_reset", object_type="staff",
                                object_id=member.username, summary="second factor off, sessions ended")
            name = member.username
    except NotFound:
        return forms.not_found(request, user, active="staff")
    except DomainError as exc:
        return await _detail(request, ctx, user, username, message=forms.error(exc), status_code=forms.status_for(exc))
    return forms.back(f"/console/staff/{name}", "reset")
