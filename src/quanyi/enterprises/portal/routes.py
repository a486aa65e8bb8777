"""Mounts the enterprise portal (/portal) and answers its refusals: the login page for strangers, the 403
page (inside the layout) for a role without the permission."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import Response

from quanyi.console.said import say
from quanyi.enterprises.portal import (
    account_routes,
    campaign_routes,
    login_routes,
    purchase_routes,
    top_up_routes,
    user_routes,
)
from quanyi.enterprises.portal.auth import AREA, PortalForbidden, PortalUser
from quanyi.enterprises.portal.rendering import render_page
from quanyi.enterprises.user_sessions import PortalLogin
from quanyi.errors import DomainError
from quanyi.web.i18n import pick_locale

__all__ = ["install", "SECTIONS", "PUBLIC_ROUTES"]

SECTIONS = (login_routes, account_routes, top_up_routes, purchase_routes, campaign_routes, user_routes)
PUBLIC_ROUTES = login_routes.PUBLIC_ROUTES


def _forbidden(request: Request, login: PortalLogin, exc: DomainError) -> Response:
    detail = say(exc.message, pick_locale(request, request.app.state.ctx.settings.default_locale))
    return render_page(request, "portal/forbidden.html", {"detail": detail}, user=PortalUser.of(login, request),
                       status_code=403)


def install(app: FastAPI) -> None:
    # After the sections: the gateways' notifications of online top-ups (no login).
    routers = [*(section.router for section in SECTIONS), top_up_routes.notify_router]
    AREA.mount(app, routers, forbidden=PortalForbidden, draw_forbidden=_forbidden)
