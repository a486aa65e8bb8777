"""Drawing console pages: a template inside the console layout, with the menu the staff member may see,
their language, and the headers every console page carries."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import HTMLResponse

from quanyi.console.auth import ConsoleUser
from quanyi.console.i18n import console_text
from quanyi.console.menu import visible_menu
from quanyi.shoptime import shop_zone
from quanyi.staff.roles import role_title
from quanyi.web.i18n import LANG_COOKIE, pick_locale
from quanyi.web.templating import templates

__all__ = ["render_page", "CONSOLE_CSP"]

# Console pages load nothing from elsewhere and run no inline script; charts are drawn by the vendored
# ECharts from data the page carries as JSON. Nothing may frame them.
CONSOLE_CSP = ("default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
               "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'")


def render_page(request: Request, template: str, context: dict[str, Any], *, user: ConsoleUser | None,
                active: str = "", status_code: int = 200, headers: dict[str, str] | None = None) -> HTMLResponse:
    """`active` names the menu entry to highlight; `user` None draws a page outside the layout (login)."""
    ctx = request.app.state.ctx
    locale = pick_locale(request, ctx.settings.default_locale)
    # The language switch re-opens this page (GET) in the other language; a page drawn for a POST goes home.
    here = request.url.path if request.method == "GET" else "/console"
    query = urlencode([(k, v) for k, v in request.query_params.multi_items() if k != "lang"]) \
        if request.method == "GET" else ""
    page_context = {
        "request": request,
        "locale": locale,
        "other_locale": "en" if locale == "zh-CN" else "zh-CN",
        "t": lambda key, **values: console_text(locale, key, **values),
        "role_title": lambda name: role_title(name, locale),
        "shop_name": ctx.settings.shop_name,
        "shop_zone": shop_zone(ctx.settings.shop_timezone),
        "user": user,
        "menu": visible_menu(user.principal) if user else [],
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
