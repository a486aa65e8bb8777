"""Mounts the enterprise portal (/portal) and answers its refusals: the login page for strangers, the 403
page (inside the layout) for a role without the permission."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import Response

from quanyi.enterprises.portal import (
    account_routes,
    campaign_routes,
    login_routes,
    purchase_routes,
    top_up_routes,
    user_routes,
)
from quanyi.enterprises.portal.auth import (
    AREA,
    PortalForbidden,
    PortalUser,
    current_login,
)
from quanyi.enterprises.portal.rendering import render_page

__all__ = ["install", "SECTIONS", "PUBLIC_ROUTES"]

SECTIONS = (login_routes, account_routes, top_up_routes, purchase_routes, campaign_routes, user_routes)
PUBLIC_ROUTES = login_routes.PUBLIC_ROUTES


async def _forbidden(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, PortalForbidden)
    login = await current_login(request)
    assert login is not None
    user = PortalUser.of(login, request)
    return render_page(request, "portal/forbidden.html", {"detail": exc.message}, user=user, status_code=403)


def install(app: FastAPI) -> None:
    for section in SECTIONS:
        app.include_router(section.router)
    app.include_router(top_up_routes.notify_router)  # gateways' notifications of online top-ups (no login)
    AREA.send_strangers_to_login(app)
    app.add_exception_handler(PortalForbidden, _forbidden)
