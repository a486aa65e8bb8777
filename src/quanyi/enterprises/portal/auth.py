"""Who is using the portal, and may they: the session cookie, the per-page permission, the form check.

Every portal page takes its user through `needs(permission)` and passes `user.code` (their enterprise) to the
enterprises services, which find every purchase, campaign and user within that enterprise only: another
enterprise's number is simply not found (404), whatever the URL says.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse

from quanyi.context import ShopContext
from quanyi.deps import client_ip, user_agent
from quanyi.enterprises import user_sessions, users
from quanyi.enterprises.user_sessions import PortalLogin
from quanyi.errors import DomainError
from quanyi.staff.audit import Actor
from quanyi.staff.service import PermissionDenied
from quanyi.web.csrf import CSRF_PROTECTED, register_session_cookie

__all__ = ["COOKIE", "PortalUser", "PortalLoginRequired", "PortalForbidden", "needs", "UserDep", "portal_router",
           "current_login", "set_session_cookie", "clear_session_cookie", "safe_next", "login_redirect"]

COOKIE = "qy_portal"
COOKIE_PATH = "/portal"
# Form tokens are bound to the portal session: logging in or out makes every earlier token worthless.
register_session_cookie(COOKIE)


class PortalLoginRequired(DomainError):
    code = "portal_login_required"


class PortalForbidden(PermissionDenied):
    code = "permission_denied"


@dataclass(frozen=True, slots=True)
class PortalUser:
    login: PortalLogin
    ip: str
    user_agent: str

    @property
    def code(self) -> str:
        """The user's enterprise: the only one whose objects their pages ask the services for."""
        return self.login.enterprise_code

    @property
    def name(self) -> str:
        return self.login.display_name or self.login.username

    @property
    def actor_name(self) -> str:
        return users.actor_name(self.login.enterprise_code, self.login.username)

    @property
    def actor(self) -> Actor:
        """The enterprise user as the shop's audit log records them (no staff id)."""
        return Actor(name=self.actor_name, staff_id=None, ip=self.ip, user_agent=self.user_agent)

    def can(self, permission: str) -> bool:
        return users.can(self.login.role, permission)


def _ctx(request: Request) -> ShopContext:
    return request.app.state.ctx  # type: ignore[no-any-return]


async def current_login(request: Request) -> PortalLogin | None:
    """The portal session of this request's cookie, or None; the idle clock restarts (at most once a minute)."""
    if hasattr(request.state, "portal_login"):
        return request.state.portal_login  # type: ignore[no-any-return]
    token = request.cookies.get(COOKIE)
    login = None
    if token:
        ctx = _ctx(request)
        idle = dt.timedelta(minutes=ctx.settings.enterprise_portal_idle_minutes)
        async with ctx.db.read_session() as session:
            login = await user_sessions.portal_login(session=session, token=token, idle=idle)
        if login is not None and (login.last_seen_at is None
                                  or dt.datetime.now(dt.UTC) - login.last_seen_at > user_sessions.TOUCH_EVERY):
            async with ctx.db.transaction() as session:
                await user_sessions.touch(session=session, session_id=login.session_id)
    request.state.portal_login = login
    return login


def safe_next(value: str | None) -> str:
    """Where to go after logging in: only a portal path of this shop (no open redirect)."""
    if value and value.startswith("/portal") and not value.startswith("//") and "\\" not in value:
        return value
    return "/portal"


def portal_router(prefix: str) -> APIRouter:
    """A portal section's router: not in the OpenAPI document; every form checked against cross-site requests."""
    return APIRouter(prefix=prefix, include_in_schema=False, dependencies=[CSRF_PROTECTED])


def needs(permission: str) -> Any:
    """Dependency of a portal page: the logged-in enterprise user whose role holds `permission`."""
    if not any(permission in held for held in users.ROLES.values()):
        raise ValueError(f"unknown portal permission {permission!r}")

    async def portal_user(request: Request) -> PortalUser:
        login = await current_login(request)
        if login is None or login.second_factor_pending:
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            raise PortalLoginRequired("log in to the portal first",
                                      next=target if request.method == "GET" else "/portal")
        if not users.can(login.role, permission):
            raise PortalForbidden(f"your role ({login.role}) cannot do this", permission=permission)
        return PortalUser(login=login, ip=client_ip(request), user_agent=user_agent(request))

    portal_user.portal_permission = permission  # type: ignore[attr-defined]
    return Depends(portal_user)


UserDep = Annotated[PortalUser, needs(users.VIEW)]


def set_session_cookie(response: Any, request: Request, token: str) -> None:
    # HttpOnly: no script reads it. Lax: never sent with a cross-site form post. No max-age: the server ends it.
    response.set_cookie(COOKIE, token, httponly=True, samesite="lax", path=COOKIE_PATH,
                        secure=request.url.scheme == "https")


def clear_session_cookie(response: Any) -> None:
    response.delete_cookie(COOKIE, path=COOKIE_PATH)


def login_redirect(exc: PortalLoginRequired) -> RedirectResponse:
    target = safe_next(str(exc.context.get("next") or ""))
    suffix = "" if target == "/portal" else f"?next={quote(target, safe='/')}"
    response = RedirectResponse(f"/portal/login{suffix}", status_code=303)
    clear_session_cookie(response)
    return response
