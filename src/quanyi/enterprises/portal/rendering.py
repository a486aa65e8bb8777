"""Drawing portal pages: a template inside the portal layout (the console's styles and building blocks), the
menu the user's role may see, their language, and the headers every portal page carries."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import HTMLResponse

import quanyi.console.texts.enterprises  # noqa: F401 - the enterprise texts the portal shares with the console
import quanyi.enterprises.portal.texts  # noqa: F401 - the portal's own texts
from quanyi.console.i18n import console_text
from quanyi.console.rendering import CONSOLE_CSP
from quanyi.enterprises import users
from quanyi.enterprises.portal.auth import PortalUser
from quanyi.shoptime import shop_zone
from quanyi.web.i18n import LANG_COOKIE, pick_locale
from quanyi.web.templating import templates

__all__ = ["render_page", "MENU"]

# (key, href, permission, icon): the portal menu, each entry shown to roles holding its permission.
MENU = (("home", "/portal", users.VIEW, "chart"), ("statement", "/portal/statement", users.VIEW, "book"),
        ("prices", "/portal/prices", users.VIEW, "scale"), ("purchases", "/portal/purchases", users.VIEW, "orders"),
        ("campaigns", "/portal/campaigns", users.VIEW, "users"), ("users", "/portal/users", users.USERS, "shield"))


def render_page(request: Request, template: str, context: dict[str, Any], *, user: PortalUser | None,
                active: str = "", status_code: int = 200, headers: dict[str, str] | None = None) -> HTMLResponse:
    """`active` names the menu entry to highlight; `user` None draws a page outside the layout (login)."""
    ctx = request.app.state.ctx
    locale = pick_locale(request, ctx.settings.default_locale)
    here = request.url.path if request.method == "GET" else "/portal"
    query = urlencode([(k, v) for k, v in request.query_params.multi_items() if k != "lang"]) \
        if request.method == "GET" else ""
    page_context = {
        "request": request,
        "locale": locale,
        "other_locale": "en" if locale == "zh-CN" else "zh-CN",
        "t": lambda key, **values: console_text(locale, key, **values),
        "shop_name": ctx.settings.shop_name,
        "shop_zone": shop_zone(ctx.settings.shop_timezone),
        "user": user,
        "menu": [item for item in MENU if user and user.can(item[2])],
        "active": active,
        "lang_url": f"{here}?{query + '&' if query else ''}lang=",
        **context,
    }
    response = templates.TemplateResponse(request, template, page_context, status_code=status_code)
    response.headers["Content-Security-Policy"] = CONSOLE_CSP
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Robots-Tag"] = "noindex, nofollow"
    for name, value in (headers or {}).items():
        response.headers[name] = value
    if request.query_params.get("lang") == locale:
        response.set_cookie(LANG_COOKIE, locale, max_age=365 * 86400, samesite="lax", httponly=True)
    return response
