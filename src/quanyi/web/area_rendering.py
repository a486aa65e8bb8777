"""Drawing the pages of a login area (quanyi.web.login_area): the console and the enterprise portal draw every
page, inside their layout or outside it (login), the same way: the console's texts in the visitor's language,
the menu the user may see, a language switch that re-opens the page, and the headers every such page carries
(a strict CSP, no-store, noindex)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import urlencode

import segno
from fastapi import Request
from fastapi.responses import HTMLResponse
from markupsafe import Markup

from quanyi.console.i18n import console_text
from quanyi.second_factor import Enrolment
from quanyi.web.templating import page_context, page_response

__all__ = ["AREA_CSP", "render_area_page", "enrolment_qr"]

# Area pages load nothing from elsewhere and run no inline script; charts are drawn by the vendored ECharts from
# data the page carries as JSON. Nothing may frame them.
AREA_CSP = ("default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
            "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'")


def render_area_page(request: Request, template: str, context: dict[str, Any], *, home: str, user: Any,
                     menu: Sequence[Any], active: str = "", status_code: int = 200,
                     headers: dict[str, str] | None = None,
                     helpers: Callable[[str], dict[str, Any]] | None = None) -> HTMLResponse:
    """`home` is the area's path; `user` None draws a page outside the layout (login); `menu` what the layout
    lists, `active` the entry to highlight; `helpers(locale)` adds the area's own template functions."""
    locale, base = page_context(request, console_text)
    # The language switch re-opens this page (GET) in the other language; a page drawn for a POST goes home.
    here = request.url.path if request.method == "GET" else home
    query = urlencode([(k, v) for k, v in request.query_params.multi_items() if k != "lang"]) \
        if request.method == "GET" else ""
    drawn = {**base, **(helpers(locale) if helpers else {}), "user": user, "menu": menu, "active": active,
             "lang_url": f"{here}?{query + '&' if query else ''}lang=", **context}
    return page_response(request, template, drawn, locale=locale, csp=AREA_CSP, status_code=status_code,
                         headers={"X-Robots-Tag": "noindex, nofollow", **(headers or {})})


def enrolment_qr(enrolment: Enrolment | None) -> Markup | None:
    """The QR code of a second factor being enrolled, for the account page (None: no enrolment shown)."""
    if enrolment is None:
        return None
    # segno draws the code as SVG path data here; no third party ever sees the secret.
    return Markup(segno.make(enrolment.uri, error="m").svg_inline(scale=5, border=2, dark="#111827"))  # noqa: S704
