"""Logging in to and out of the enterprise portal: the shop's one browser login flow (quanyi.web.login_flow) for
enterprise users: enterprise code, username and password under the shop's login limits (quanyi.logins), then
the second factor when the user has one; every success and failure in the shop's audit log."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from quanyi import logins
from quanyi.context import ShopContext
from quanyi.enterprises import user_sessions, users
from quanyi.enterprises.models import EnterpriseUser
from quanyi.enterprises.portal import auth
from quanyi.enterprises.portal.rendering import render_page
from quanyi.enterprises.user_sessions import PortalLogin
from quanyi.web.login_flow import Who, install_login_routes, public_routes

__all__ = ["router", "PUBLIC_ROUTES", "ENTERPRISE_USERS"]

router = auth.portal_router("/portal")

# Routes anyone may open (the isolation sweep checks every other portal route refuses strangers).
PUBLIC_ROUTES = public_routes("/portal")


def _who(code: str, username: str) -> Who:
    return Who(name=users.actor_name(code, username), staff_id=None, object_type="enterprise", object_id=code)


class EnterpriseUserAccounts:
    """Enterprise users (quanyi.enterprises.users) as the login flow sees them: an enterprise code and a
    username; audit rows about the enterprise."""

    open_session = staticmethod(user_sessions.open_portal_session)
    end_session = staticmethod(user_sessions.end_portal_session)
    fields = (("enterprise", 48), ("username", 64))
    actions = "portal_"
    failed_error = "portal.login.failed"
    notices: Mapping[str, str] = {"password": "portal.m.password_changed"}

    def session_hours(self, settings: Any) -> float:
        return float(settings.enterprise_portal_session_hours)

    async def check_password(self, ctx: ShopContext, values: Mapping[str, str], password: str,
                             ip: str) -> tuple[EnterpriseUser, Who]:
        user, enterprise = await users.authenticate(db=ctx.db, limiter=ctx.limiter,
                                                    limits=logins.LoginLimits.from_settings(ctx.settings),
                                                    code=values["enterprise"], username=values["username"],
                                                    password=password, ip=ip)
        return user, _who(enterprise.code, user.username)

    def who_failed(self, values: Mapping[str, str]) -> Who:
        who = _who(values["enterprise"] or "?", values["username"] or "?")
        return Who(name=who.name, staff_id=None, object_type="enterprise", object_id=values["enterprise"])

    def who_of(self, login: PortalLogin) -> Who:
        return _who(login.enterprise_code, login.username)

    async def check_code(self, ctx: ShopContext, login: PortalLogin, code: str, ip: str) -> EnterpriseUser:
        return await users.check_second_factor(db=ctx.db, limiter=ctx.limiter,
                                               limits=logins.LoginLimits.from_settings(ctx.settings),
                                               cipher=ctx.cipher, user_id=login.user_id, code=code, ip=ip)


ENTERPRISE_USERS = EnterpriseUserAccounts()
install_login_routes(router, area=auth.AREA, accounts=ENTERPRISE_USERS, render=render_page, templates="portal")
