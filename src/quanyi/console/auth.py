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

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request

from quanyi.deps import client_ip, user_agent
from quanyi.errors import DomainError
from quanyi.scope import Scope
from quanyi.staff import sessions as console_sessions
from quanyi.staff.audit import Actor
from quanyi.staff.permissions import PERMISSIONS
from quanyi.staff.service import PermissionDenied, Principal
from quanyi.staff.sessions import ConsoleLogin
from quanyi.web.login_area import LoginArea

__all__ = ["COOKIE", "AUTHENTICATED", "ConsoleUser", "ConsoleLoginRequired", "ConsoleForbidden", "ConsolePlatformOnly",
           "needs",
           "UserDep", "console_router", "current_login", "AREA"]

COOKIE = "qy_console"
AUTHENTICATED = "authenticated"  # the route needs a logged-in staff member, nothing more


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

    @classmethod
    def of(cls, login: ConsoleLogin, request: Request) -> ConsoleUser:
        """The staff member of this request's (finished) console login."""
        return cls(principal=login.principal, session_id=login.session_id, has_second_factor=login.has_second_factor,
                   ip=client_ip(request), user_agent=user_agent(request))

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


# The console: staff sessions of channel "console" (quanyi.staff.sessions), under /console.
AREA: LoginArea[ConsoleLogin] = LoginArea(
    home="/console", cookie=COOKIE, state_key="console_login",
    idle_minutes=lambda settings: settings.console_idle_minutes, find=console_sessions.console_login,
    touch=console_sessions.touch, login_required=ConsoleLoginRequired, message="log in to the console first")
current_login = AREA.current_login
console_router = AREA.router


class ConsolePlatformOnly(ConsoleForbidden):
    code = "platform_only"


def needs(permission: str, *, platform_only: bool = False) -> Any:
    """Dependency of a console route: the logged-in staff member holding `permission` (AUTHENTICATED: any).
    `platform_only`: platform configuration (gateways, risk rules, the platform's books, merchants, resellers),
    refused to a merchant's staff whatever they hold, as the admin API's PlatformAdminDep does."""
    if permission != AUTHENTICATED and permission not in PERMISSIONS:
        raise ValueError(f"unknown permission {permission!r}")

    async def console_user(request: Request) -> ConsoleUser:
        login = await AREA.logged_in(request)
        if permission != AUTHENTICATED and not login.principal.can(permission):
            raise ConsoleForbidden(f"this needs the {permission} permission", permission=permission)
        if platform_only and login.principal.merchant_id is not None:
            raise ConsolePlatformOnly("only platform staff can open this page", permission="platform")
        return ConsoleUser.of(login, request)

    console_user.console_permission = permission  # type: ignore[attr-defined]
    console_user.console_platform_only = platform_only  # type: ignore[attr-defined]
    return Depends(console_user)


UserDep = Annotated[ConsoleUser, needs(AUTHENTICATED)]

