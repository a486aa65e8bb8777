"""Drawing portal pages (quanyi.web.area_rendering, as the console does): a template inside the portal layout
(the console's styles and building blocks) with the menu the user's role may see; refusals in the page's language
(quanyi.console.said)."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse

import quanyi.console.texts.enterprises  # noqa: F401 - the enterprise texts the portal shares with the console
import quanyi.enterprises.portal.texts  # noqa: F401 - the portal's own texts
from quanyi.console.said import localize
from quanyi.enterprises import users
from quanyi.enterprises.portal.auth import PortalUser
from quanyi.enterprises.portal.memos import statement_memo
from quanyi.web.area_rendering import render_area_page
from quanyi.web.i18n import pick_locale

__all__ = ["render_page", "MENU"]

# (key, href, permission, icon): the portal menu, each entry shown to roles holding its permission.
MENU = (("home", "/portal", users.VIEW, "chart"), ("statement", "/portal/statement", users.VIEW, "book"),
        ("top_ups", "/portal/top-ups", users.VIEW, "card"),
        ("prices", "/portal/prices", users.VIEW, "scale"), ("purchases", "/portal/purchases", users.VIEW, "orders"),
        ("campaigns", "/portal/campaigns", users.VIEW, "users"), ("users", "/portal/users", users.USERS, "shield"))


def render_page(request: Request, template: str, context: dict[str, Any], *, user: PortalUser | None,
                active: str = "", status_code: int = 200, headers: dict[str, str] | None = None) -> HTMLResponse:
    """`active` names the menu entry to highlight; `user` None draws a page outside the layout (login)."""
    locale = pick_locale(request, request.app.state.ctx.settings.default_locale)
    return render_area_page(request, template, localize(context, locale), home="/portal", user=user,
                            menu=[item for item in MENU if user and user.can(item[2])], active=active,
                            status_code=status_code, headers=headers,
                            helpers=lambda locale: {"statement_memo": lambda line: statement_memo(line, locale)})
