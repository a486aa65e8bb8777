"""Users of the enterprise in the portal (成员管理), for its admins: add colleagues with a role, change roles,
disable / enable (ends their sessions), set a new password, reset a lost second factor, log someone out
everywhere. The users service keeps the rules (an admin can neither disable themselves nor change their own
role); every action is audited with the admin as actor."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Request
from fastapi.responses import HTMLResponse, Response

from quanyi.deps import ContextDep
from quanyi.enterprises import service as enterprises_service
from quanyi.enterprises import users
from quanyi.enterprises.portal import auth
from quanyi.enterprises.portal.auth import PortalUser, needs
from quanyi.enterprises.portal.pages import audit, forms, not_found
from quanyi.enterprises.portal.rendering import render_page
from quanyi.errors import DomainError, NotFound

__all__ = ["router"]

router = auth.portal_router("/portal/users")
AdminDep = Annotated[PortalUser, needs(users.USERS)]
Username = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")]
MESSAGES = ("user_added", "user_changed")


async def _page(request: Request, ctx: ContextDep, user: PortalUser, *, message: forms.Message | None = None,
                typed: dict[str, str] | None = None, status_code: int = 200) -> HTMLResponse:
    async with ctx.db.read_session() as session:
        listed = await users.list_users(session=session, code=user.code)
    return render_page(request, "portal/users.html", {
        "users": listed, "roles": list(users.ROLES), "message": message, "typed": typed or {},
    }, user=user, active="users", status_code=status_code)


@router.get("", response_class=HTMLResponse)
async def user_list(request: Request, ctx: ContextDep, user: AdminDep) -> Response:
    return await _page(request, ctx, user, message=forms.flash(request, "portal", MESSAGES, values=("name",)))


@router.post("", response_class=HTMLResponse)
async def add_user(request: Request, ctx: ContextDep, user: AdminDep) -> Response:
    form = await request.form()
    typed = {name: str(form.get(name, ""))[:100] for name in ("username", "display_name", "role")}
    try:
        enterprises_service.check_not_suspended(user.login.enterprise_status)
        async with ctx.db.transaction() as session:
            made = await users.create_user(
                session=session, code=user.code, username=forms.text(form, "username", max_length=64, required=True),
                password=str(form.get("password", ""))[:1024], role=forms.text(form, "role", max_length=16),
                display_name=forms.text(form, "display_name", max_length=100), actor=user.actor_name)
            await audit(session, user, "portal_user_created", f"{made.username} ({made.role})")
    except DomainError as exc:
        return await _page(request, ctx, user, message=forms.error(exc), typed=typed,
                           status_code=forms.status_for(exc))
    return forms.back("/portal/users", "user_added", name=made.username)


@router.post("/{username}/{action}", response_class=HTMLResponse)
async def change_user(username: Username, action: Annotated[str, Path(
        pattern=r"^(role|disable|enable|reset-2fa|logout|password)$")], request: Request, ctx: ContextDep,
        user: AdminDep) -> Response:
    form = await request.form()
    try:
        async with ctx.db.transaction() as session:
            found = await users.get_user(session=session, code=user.code, username=username)
            if action in ("password", "reset-2fa") and found.id == user.login.user_id:
                # One's own: on the account page, with the current password or code under the login limits (a
                # session alone must not set a password it knows or take the second factor off).
                raise users.InvalidEnterpriseUserInput(
                    "自己的密码和两步验证请在“我的账户”页修改（需输入当前密码或动态码）")
            if action in ("enable", "role"):  # more access; disabling, sign-outs and resets secure what exists
                enterprises_service.check_not_suspended(user.login.enterprise_status)
            if action in ("disable", "enable", "role"):
                await users.update_user(
                    session=session, code=user.code, username=found.username, by_user_id=user.login.user_id,
                    active=None if action == "role" else action == "enable",
                    role=forms.text(form, "role", max_length=16, required=True) if action == "role" else None)
            elif action == "password":
                await users.set_password(session=session, code=user.code, username=found.username,
                                         password=str(form.get("password", ""))[:1024])
            elif action == "reset-2fa":
                await users.reset_second_factor(session=session, code=user.code, username=found.username)
            else:
                await users.end_sessions(session=session, user_id=found.id)
            await audit(session, user, f"portal_user_{action}", found.username)
    except NotFound:
        return not_found(request, user)
    except DomainError as exc:
        return await _page(request, ctx, user, message=forms.error(exc), status_code=forms.status_for(exc))
    return forms.back("/portal/users", "user_changed", name=username)
