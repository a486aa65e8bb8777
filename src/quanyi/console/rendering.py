"""Drawing console pages (quanyi.web.area_rendering): a template inside the console layout, with the menu the
staff member may see and their roles' titles; refusals the page carries are said in its language (console/said.py)."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse

from quanyi.console import audit_said
from quanyi.console.auth import ConsoleUser
from quanyi.console.menu import visible_menu
from quanyi.console.said import localize, say
from quanyi.console.texts.risk_rules import rule_name
from quanyi.payments.titles import gateway_title
from quanyi.shoptime import shop_zone
from quanyi.staff.roles import role_description, role_title
from quanyi.web.area_rendering import render_area_page
from quanyi.web.i18n import pick_locale

__all__ = ["render_page"]


def render_page(request: Request, template: str, context: dict[str, Any], *, user: ConsoleUser | None,
                active: str = "", status_code: int = 200, headers: dict[str, str] | None = None) -> HTMLResponse:
    """`active` names the menu entry to highlight; `user` None draws a page outside the layout (login)."""
    settings = request.app.state.ctx.settings
    locale = pick_locale(request, settings.default_locale)
    zone = shop_zone(settings.shop_timezone)
    return render_area_page(request, template, localize(context, locale, zone=zone), home="/console", user=user,
                            menu=visible_menu(user.principal) if user else [], active=active,
                            status_code=status_code, headers=headers,
                            helpers=lambda locale: {"role_title": lambda name: role_title(name, locale),
                                                    "role_description": lambda name: role_description(name, locale),
                                                    "rule_name": lambda name: rule_name(name, locale),
                                                    "say": lambda recorded: say(recorded, locale, zone=zone),
                                                    "audit_action": lambda code: audit_said.action_text(code, locale),
                                                    "audit_object": lambda kind: audit_said.object_text(kind, locale),
                                                    "audit_summary": lambda entry: audit_said.summary_text(
                                                        entry.action, entry.summary, locale),
                                                    "gateway_title": lambda name: gateway_title(name, locale)})
