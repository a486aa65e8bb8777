"""Logging in and out of the console: the shop's one browser login flow (quanyi.web.login_flow) for staff:
username and password (the staff login limits of the API apply), then the second factor when the account has
one; every success and failure lands in the audit log."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from quanyi import logins
from quanyi.console import auth
from quanyi.console.auth import UserDep
from quanyi.console.menu import home_for
from quanyi.console.rendering import render_page
from quanyi.context import ShopContext
from quanyi.staff import service as staff_service
from quanyi.staff import sessions as console_sessions
from quanyi.staff.models import StaffUser
from quanyi.staff.sessions import ConsoleLogin
from quanyi.web.login_flow import Who, install_login_routes, public_routes

__all__ = ["router", "PUBLIC_ROUTES", "STAFF"]

router = auth.console_router("/console")

# Routes anyone may open (the access sweep checks every other console route refuses strangers).
PUBLIC_ROUTES = public_routes("/console")


def _who(name: str, staff_id: int | None) -> Who:
    return Who(name=name, staff_id=staff_id, object_type="staff", object_id=name)


class StaffAccounts:
    """Staff (quanyi.staff) as the login flow sees them: a username; audit rows about the staff member."""

    open_session = staticmethod(console_sessions.open_console_session)
    end_session = staticmethod(console_sessions.end_console_session)
    fields = (("username", 64),)
    actions = ""
    failed_error = "login.failed"
    notices: Mapping[str, str] = {}

    def session_hours(self, settings: Any) -> float:
        return float(settings.console_session_hours)

    async def check_password(self, ctx: ShopContext, values: Mapping[str, str], password: str,
                             ip: str) -> tuple[StaffUser, Who]:
        user = await staff_service.authenticate(db=ctx.db, limiter=ctx.limiter,
                                                limits=logins.LoginLimits.from_settings(ctx.settings),
                                                username=values["username"], password=password, ip=ip)
        return user, _who(user.username, user.id)

    def who_failed(self, values: Mapping[str, str]) -> Who:
        return _who(values["username"].lower() or "?", None)

    def who_of(self, login: ConsoleLogin) -> Who:
        return _who(login.principal.name, login.principal.staff_id)

    async def check_code(self, ctx: ShopContext, login: ConsoleLogin, code: str, ip: str) -> StaffUser:
        assert login.principal.staff_id is not None
        return await staff_service.check_second_factor(db=ctx.db, limiter=ctx.limiter,
                                                       limits=logins.LoginLimits.from_settings(ctx.settings),
                                                       cipher=ctx.cipher, staff_id=login.principal.staff_id,
                                                       code=code, ip=ip)


STAFF = StaffAccounts()
install_login_routes(router, area=auth.AREA, accounts=STAFF, render=render_page, templates="console")


@router.get("", response_class=HTMLResponse)
async def home(request: Request, user: UserDep) -> Response:
    """/console: the staff member's first page (the dashboard for most roles)."""
    target = home_for(user.principal)
    if target is None:
        return render_page(request, "console/nothing.html", {}, user=user)
    return RedirectResponse(target, status_code=303)
