"""Who is using the console, and may they: the session cookie, the per-route permission, the form check.

Every console route takes its user through `needs(permission)`, and passes `user.scope` (quanyi.scope) to every
service it calls: a merchant's staff see only their merchant's objects, another merchant's are "not found"
(tests/merchants/test_console_isolation.py walks every console route). An anonymous visitor (or one whose
session ended, idled out or still waits for the second factor) is sent to the login page; a staff member
without the permission gets the 403 page. Forms (POST) are checked against cross-site requests by every
console router (`console_router`). The access sweep test enumerates the app's routes and finds each one's permission
on this dependency (`console_permission`), so a console route without one fails the test.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response

from quanyi.context import ShopContext
from quanyi.deps import client_ip, user_agent
from quanyi.errors import DomainError
from quanyi.scope import Scope
from quanyi.staff import sessions as console_sessions
from quanyi.staff.audit import Actor
from quanyi.staff.permissions import PERMISSIONS
from quanyi.staff.service import PermissionDenied, Principal
from quanyi.staff.sessions import ConsoleLogin
from quanyi.web.csrf import CSRF_PROTECTED, register_session_cookie

__all__ = ["COOKIE", "AUTHENTICATED", "ConsoleUser", "ConsoleLoginRequired", "ConsoleForbidden", "ConsolePlatformOnly",
           "needs",
           "UserDep", "console_router", "current_login", "set_session_cookie", "clear_session_cookie", "safe_next"]

COOKIE = "qy_console"
COOKIE_PATH = "/console"
AUTHENTICATED = "authenticated"  # the route needs a logged-in staff member, nothing more
# Form tokens are bound to the console session: logging in or out makes every earlier token worthless.
register_session_cookie(COOKIE)


class ConsoleLoginRequired(DomainError):
    code = "console_login_required"


class ConsoleForbidden(PermissionDenied):
    code = "permission_denied"


@dataclass(frozen=True, slots=True)
class ConsoleUser:
    principal: Principal
    session_id: int
    has_second_factor: bool
    ip: str
    user_agent: str

    @property
    def name(self) -> str:
        return self.principal.name

    @property
    def scope(self) -> Scope:
        """Whose objects this staff member sees (quanyi.scope): every page passes it to the services."""
        return Scope(self.principal.merchant_id)

    def can(self, permission: str) -> bool:
        return self.principal.can(permission)

    @property
    def actor(self) -> Actor:
        """The staff member as the audit log records them."""
        return Actor(name=self.principal.name, staff_id=self.principal.staff_id, ip=self.ip,
                     user_agent=self.user_agent)


def _ctx(request: Request) -> ShopContext:
    return request.app.state.ctx  # type: ignore[no-any-return]


async def current_login(request: Request) -> ConsoleLogin | None:
    """The console session of this request's cookie, or None; the idle clock restarts (at most once a minute)."""
    if hasattr(request.state, "console_login"):
        return request.state.console_login  # type: ignore[no-any-return]
    token = request.cookies.get(COOKIE)
    login = None
    if token:
        ctx = _ctx(request)
        idle = dt.timedelta(minutes=ctx.settings.console_idle_minutes)
        async with ctx.db.read_session() as session:
            login = await console_sessions.console_login(session=session, token=token, idle=idle)
        if login is not None and (login.last_seen_at is None
                                  or dt.datetime.now(dt.UTC) - login.last_seen_at > console_sessions.TOUCH_EVERY):
            async with ctx.db.transaction() as session:
                await console_sessions.touch(session=session, session_id=login.session_id)
    request.state.console_login = login
    return login


def safe_next(value: str | None) -> str:
    """Where to go after logging in: only a console path of this shop (no open redirect)."""
    if value and value.startswith("/console") and not value.startswith("//") and "\\" not in value:
        return value
    return "/console"


def console_router(prefix: str) -> APIRouter:
    """The router of a console section: not in the OpenAPI document, and every form it takes (POST ...)
    checked against cross-site requests (quanyi.web.csrf: Origin + the token bound to this session)."""
    return APIRouter(prefix=prefix, include_in_schema=False, dependencies=[CSRF_PROTECTED])


class ConsolePlatformOnly(ConsoleForbidden):
    code = "platform_only"


def needs(permission: str, *, platform_only: bool = False) -> Any:
    """Dependency of a console route: the logged-in staff member holding `permission` (AUTHENTICATED: any).
    `platform_only`: platform configuration (gateways, risk rules, the platform's books, merchants, resellers),
    refused to a merchant's staff whatever they hold, as the admin API's PlatformAdminDep does."""
    if permission != AUTHENTICATED and permission not in PERMISSIONS:
        raise ValueError(f"unknown permission {permission!r}")

    async def console_user(request: Request) -> ConsoleUser:
        login = await current_login(request)
        if login is None or login.second_factor_pending:
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            raise ConsoleLoginRequired("log in to the console first",
                                       next=target if request.method == "GET" else "/console")
        if permission != AUTHENTICATED and not login.principal.can(permission):
            raise ConsoleForbidden(f"this needs the {permission} permission", permission=permission)
        if platform_only and login.principal.merchant_id is not None:
            raise ConsolePlatformOnly("only platform staff can open this page", permission="platform")
        return ConsoleUser(principal=login.principal, session_id=login.session_id,
                           has_second_factor=login.has_second_factor, ip=client_ip(request),
                           user_agent=user_agent(request))

    console_user.console_permission = permission  # type: ignore[attr-defined]
    console_user.console_platform_only = platform_only  # type: ignore[attr-defined]
    return Depends(console_user)


UserDep = Annotated[ConsoleUser, needs(AUTHENTICATED)]


def set_session_cookie(response: Response, request: Request, token: str) -> None:
    # HttpOnly: no script reads it. Lax: sent when following a link to the console (an alert, a bookmark),
    # never with a cross-site form post. No max-age: the server ends the session (idle / absolute expiry).
    response.set_cookie(COOKIE, token, httponly=True, samesite="lax", path=COOKIE_PATH,
                        secure=request.url.scheme == "https")


def clear_session_cookie(response: Response) -> None:
    response.delete_cookie(COOKIE, path=COOKIE_PATH)


def login_redirect(exc: ConsoleLoginRequired) -> RedirectResponse:
    target = safe_next(str(exc.context.get("next") or ""))
    suffix = "" if target == "/console" else f"?next={quote(target, safe='/')}"
    response = RedirectResponse(f"/console/login{suffix}", status_code=303)
    clear_session_cookie(response)
    return response
