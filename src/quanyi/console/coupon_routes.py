"""The console's coupon page (优惠券): the caller's coupons (a merchant's staff: their merchant's) with what each
gives, how it is handed out, and its counts (taken of the total, orders by status). Making and changing coupons is
on the admin API and `quanyi coupons` (README "Coupons")."""

from __future__ import annotations

from typing import Annotated

from fastapi import Request
from fastapi.responses import HTMLResponse

import quanyi.console.texts.coupons  # noqa: F401 - registers the texts
from quanyi.console.auth import ConsoleUser, console_router, needs
from quanyi.console.menu import MenuItem, register
from quanyi.console.rendering import render_page
from quanyi.coupons import service as coupons_service
from quanyi.coupons.texts import summary
from quanyi.deps import ContextDep
from quanyi.web.i18n import pick_locale

__all__ = ["router"]

router = console_router("/console/coupons")
register(MenuItem("coupons", "/console/coupons", "catalog.manage", group="sales", order=60, icon="tag"))
Marketer = Annotated[ConsoleUser, needs("catalog.manage")]  # coupons are prices: the catalog's editors run them


@router.get("", response_class=HTMLResponse)
async def coupons_page(request: Request, ctx: ContextDep, user: Marketer) -> HTMLResponse:
    locale = pick_locale(request, ctx.settings.default_locale)
    async with ctx.db.read_session() as session:
        coupons = await coupons_service.list_coupons(session=session, scope=user.scope, limit=200)
        rows = [{"coupon": c, "summary": summary(c, locale),
                 "usage": await coupons_service.usage_counts(session=session, coupon_id=c.id)} for c in coupons]
    return render_page(request, "console/coupons.html", {"rows": rows}, user=user, active="coupons")
