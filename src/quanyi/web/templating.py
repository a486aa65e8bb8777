"""Jinja2 environment for the storefront and the sandbox cashier: filters, i18n, security headers."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from jinja2 import pass_context
from jinja2.runtime import Context
from markupsafe import Markup

from quanyi.catalog.guide import render_guide
from quanyi.money import format_money, to_decimal
from quanyi.payments.titles import title_of
from quanyi.shoptime import DAY_PATTERN, MINUTE_PATTERN, MONTH_PATTERN, shop_time, shop_zone, valid_through
from quanyi.web.csrf import install_template_helpers
from quanyi.web.i18n import LANG_COOKIE, pick_locale, translate

__all__ = ["render", "templates", "page_context", "page_response"]

templates = Jinja2Templates(directory=Path(__file__).parent / "templates")

# Pages load nothing from elsewhere and run no inline script.
CSP = ("default-src 'self'; img-src 'self' data: https:; style-src 'self'; script-src 'self'; "
       "form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'")


@pass_context
def _local_time(context: Context, value: dt.datetime | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """A time on the shop's clock (QUANYI_SHOP_TIMEZONE)."""
    return shop_time(value, context["shop_zone"]).strftime(fmt) if value else ""


templates.env.filters["money"] = format_money
# A price as typed into a form ("9.90"): minor units in the currency's major units, no symbol.
templates.env.filters["amount"] = lambda cents, currency: str(to_decimal(cents, currency))
templates.env.filters["local_time"] = _local_time
templates.env.filters["valid_through"] = pass_context(
    lambda context, value: valid_through(value, context["shop_zone"]).isoformat() if value else "")
install_template_helpers(templates.env)  # csrf_input() / csrf_token() in every form
# Day and time fields are text typed the Chinese way (shoptime.parse_day / parse_minute), their pattern a hint.
templates.env.globals.update(DAY_PATTERN=DAY_PATTERN, MINUTE_PATTERN=MINUTE_PATTERN, MONTH_PATTERN=MONTH_PATTERN)
templates.env.filters["guide"] = lambda text: Markup(render_guide(text or ""))  # noqa: S704 - sanitized by nh3


def page_context(request: Request, text: Callable[..., str]) -> tuple[str, dict[str, Any]]:
    """The locale of this request and what every page is drawn with: the request, its language (and the other
    one, for the switch), `t` (`text(locale, key, **values)`), the shop's name and time zone."""
    ctx = request.app.state.ctx
    locale = pick_locale(request, ctx.settings.default_locale)
    return locale, {
        "request": request,
        "locale": locale,
        "other_locale": "en" if locale == "zh-CN" else "zh-CN",
        "t": lambda key, **values: text(locale, key, **values),
        "title_of": lambda gateway: title_of(gateway, locale),  # a payment gateway's name (payments.titles)
        "shop_name": ctx.settings.shop_name,
        "shop_zone": shop_zone(ctx.settings.shop_timezone),
    }


def page_response(request: Request, template: str, context: dict[str, Any], *, locale: str, csp: str,
                  status_code: int = 200, headers: dict[str, str] | None = None) -> HTMLResponse:
    """A drawn page with the headers every page carries (its CSP, no-store, then `headers`); a page opened with
    ?lang= remembers the language chosen in a cookie."""
    response = templates.TemplateResponse(request, template, context, status_code=status_code)
    response.headers["Content-Security-Policy"] = csp
    response.headers["Cache-Control"] = "no-store"
    for name, value in (headers or {}).items():
        response.headers[name] = value
    if request.query_params.get("lang") == locale:
        response.set_cookie(LANG_COOKIE, locale, max_age=365 * 86400, samesite="lax", httponly=True)
    return response


def render(request: Request, template: str, context: dict[str, Any], *, status_code: int = 200,
           headers: dict[str, str] | None = None) -> HTMLResponse:
    locale, base = page_context(request, translate)
    return page_response(request, template, {**base, **context}, locale=locale, csp=CSP, status_code=status_code,
                         headers=headers)
