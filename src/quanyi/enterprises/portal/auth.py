"""Who is using the portal, and may they: the session cookie, the per-page permission, the form check.

Every portal page takes its user through `needs(permission)` and passes `user.code` (their enterprise) to the
enterprises services, which find every purchase, campaign and user within that enterprise only: another
enterprise's number is simply not found (404), whatever the URL says.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request

from quanyi.deps import client_ip, user_agent
from quanyi.enterprises import user_sessions, users
from quanyi.enterprises.user_sessions import PortalLogin
from quanyi.errors import DomainError
from quanyi.staff.audit import Actor
from quanyi.staff.service import PermissionDenied
from quanyi.web.login_area import LoginArea

__all__ = ["COOKIE", "PortalUser", "PortalLoginRequired", "PortalForbidden", "needs", "UserDep", "portal_router",
           "current_login", "AREA"]

COOKIE = "qy_portal"


class PortalLoginRequired(DomainError):
    code = "portal_login_required"


class PortalForbidden(PermissionDenied):
    code = "permission_denied"


@dataclass(frozen=True, slots=True)
class PortalUser:
    login: PortalLogin
    ip: str
    user_agent: str

    @classmethod
    def of(cls, login: PortalLogin, request: Request) -> PortalUser:
        """The enterprise user of this request's (finished) portal login."""
        return cls(login=login, ip=client_ip(request), user_agent=user_agent(request))

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


# The portal: enterprise user sessions (quanyi.enterprises.user_sessions), under /portal.
AREA: LoginArea[PortalLogin] = LoginArea(
    home="/portal", cookie=COOKIE, state_key="portal_login",
    idle_minutes=lambda settings: settings.enterprise_portal_idle_minutes, find=user_sessions.portal_login,
    touch=user_sessions.touch, login_required=PortalLoginRequired, message="log in to the portal first")
current_login = AREA.current_login
portal_router = AREA.router


def needs(permission: str) -> Any:
    """Dependency of a portal page: the logged-in enterprise user whose role holds `permission`."""
    if not any(permission in held for held in users.ROLES.values()):
        raise ValueError(f"unknown portal permission {permission!r}")

    async def portal_user(request: Request) -> PortalUser:
        login = await AREA.logged_in(request)
        if not users.can(login.role, permission):
            raise PortalForbidden(f"your role ({login.role}) cannot do this", permission=permission)
        return PortalUser.of(login, request)

    portal_user.portal_permission = permission  # type: ignore[attr-defined]
    return Depends(portal_user)


UserDep = Annotated[PortalUser, needs(users.VIEW)]

