"""The order link of delivery e-mails and SMS (`/orders/{no}/open#t=TOKEN`): it opens the order without
re-entering number and contact, for QUANYI_ORDER_LINK_TTL_DAYS, and its token never lands in a log.

The token travels in the URL fragment, which browsers never send: `GET /orders/{no}/open` is a page whose script
(static/app.js) moves the fragment into a form, drops it from the address bar and posts it. `POST` checks the token
and exchanges it for the access cookie, then redirects to the token-free order page. A link whose fragment was lost
(`?t=` in the query, e.g. an old mail client) still works without script through the page's button, and the access
log redacts it. An expired link gets the lookup form with the order number filled in and says why; links sent
before links expired (they carried the access token itself) count as expired.
"""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import APIRouter, Path, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from quanyi.db import utcnow
from quanyi.deps import ContextDep
from quanyi.orders.access import LinkCheck, check_order_link, verify_order_access
from quanyi.orders.numbers import normalize_order_no
from quanyi.web.csrf import CSRF_PROTECTED
from quanyi.web.i18n import pick_locale, translate
from quanyi.web.routes import grant_order_access, lookup_page
from quanyi.web.templating import render

__all__ = ["router"]

router = APIRouter(include_in_schema=False)
OrderNoPath = Annotated[str, Path(max_length=64)]
_TOKEN_SHAPE = re.compile(r"[A-Za-z0-9._-]{1,96}")


def _to_lookup(order_no: str | None) -> RedirectResponse:
    return RedirectResponse(f"/lookup?order_no={order_no or ''}", status_code=303)


@router.get("/orders/{order_no}/open", response_class=HTMLResponse)
async def open_order_page(order_no: OrderNoPath, request: Request, ctx: ContextDep) -> Response:
    """The page an order link lands on: it posts the link's token (from the fragment, or a legacy `?t=`)."""
    canonical = normalize_order_no(order_no)
    if canonical is None:
        return _to_lookup(None)
    token = request.query_params.get("t", "")
    return render(request, "open_order.html", {
        "order_no": canonical, "token": token if _TOKEN_SHAPE.fullmatch(token) else "",
    }, headers={"Referrer-Policy": "no-referrer"})


@router.post("/orders/{order_no}/open", dependencies=[CSRF_PROTECTED])
async def open_order(order_no: OrderNoPath, request: Request, ctx: ContextDep) -> Response:
    """Exchange a valid link token for the access cookie and show the order; an expired one offers lookup."""
    canonical = normalize_order_no(order_no)
    token = str((await request.form()).get("t", ""))[:128]
    if canonical is None:
        return _to_lookup(None)
    secret = ctx.settings.app_secret.get_secret_value()
    check = check_order_link(secret, canonical, token, now=utcnow())
    if check is LinkCheck.INVALID and verify_order_access(secret, canonical, token):
        check = LinkCheck.EXPIRED  # a link from before links expired: it carried the access token itself
    if check is LinkCheck.VALID:
        response = RedirectResponse(f"/orders/{canonical}", status_code=303)
        grant_order_access(response, request, ctx, canonical)
        return response
    if check is LinkCheck.EXPIRED:
        locale = pick_locale(request, ctx.settings.default_locale)
        days = int(ctx.settings.order_link_ttl_days) if ctx.settings.order_link_ttl_days >= 1 else 1
        return lookup_page(request, form={"order_no": canonical},
                           error=translate(locale, "link.expired", days=days), status_code=410)
    return _to_lookup(canonical)
