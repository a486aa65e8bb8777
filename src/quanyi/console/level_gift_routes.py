"""Level-up gifts in the console (升级礼券): each membership level with the coupons a member reaching it gets, and
a form per level to choose them among the issued coupons. Through coupons.level_gifts (the admin API's and
`quanyi coupons level-gift`'s service); platform configuration, like the levels; every change audited."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Request
from fastapi.responses import HTMLResponse, Response

import quanyi.console.texts.coupons  # noqa: F401 - registers the texts
from quanyi.console import forms
from quanyi.console.auth import ConsoleUser, console_router, needs
from quanyi.console.menu import MenuItem, register
from quanyi.console.rendering import render_page
from quanyi.context import ShopContext
from quanyi.coupons import level_gifts
from quanyi.coupons.texts import summary
from quanyi.deps import ContextDep
from quanyi.errors import DomainError
from quanyi.staff.audit import record_action
from quanyi.web.i18n import pick_locale

__all__ = ["router"]

router = console_router("/console/level-gifts")
register(MenuItem("level_gifts", "/console/level-gifts", "catalog.manage", group="sales", order=61, icon="gift",
                  platform_only=True))
PlatformMarketer = Annotated[ConsoleUser, needs("catalog.manage", platform_only=True)]
LevelCode = Annotated[str, Path(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]*$")]


async def _page(request: Request, ctx: ShopContext, user: ConsoleUser, *, message: forms.Message | None = None,
                failed: str = "", status_code: int = 200) -> HTMLResponse:
    locale = pick_locale(request, ctx.settings.default_locale)
    async with ctx.db.read_session() as session:
        levels = await level_gifts.level_gifts(session=session)
        candidates = await level_gifts.gift_candidates(session=session)
    shown = {c.id: c for c in candidates} | {c.id: c for _, given in levels for c in given}
    return render_page(request, "console/level_gifts.html", {
        "levels": levels, "candidates": sorted(shown.values(), key=lambda c: -c.id),
        "summaries": {c.id: summary(c, locale) for c in shown.values()}, "failed": failed,
        "message": message or forms.flash(request, "levelgift", ("saved",), values=("level",)),
    }, user=user, active="level_gifts", status_code=status_code)


@router.get("", response_class=HTMLResponse)
async def level_gifts_page(request: Request, ctx: ContextDep, user: PlatformMarketer) -> HTMLResponse:
    return await _page(request, ctx, user)


@router.post("/{level_code}", response_class=HTMLResponse)
async def set_level_gifts(level_code: LevelCode, request: Request, ctx: ContextDep,
                          user: PlatformMarketer) -> Response:
    form = await request.form()
    try:
        raw = [str(v) for v in form.getlist("coupon_ids")]
        if any(not v.isdigit() or len(v) > 10 for v in raw):
            raise forms.FormError("coupon_ids must be coupon ids", field="coupon_ids")
        async with ctx.db.transaction() as session:
            level, coupons = await level_gifts.set_level_gifts(session=session, level_code=level_code,
                                                               coupon_ids=[int(v) for v in raw], actor=user.name)
            await record_action(session=session, actor=user.actor, action="level_gifts_set", object_type="level",
                                object_id=level.code, summary=f"{level.name}: " + (", ".join(
                                    f"#{c.id} {c.name}" for c in coupons) or "no gift"))
            code = level.code
    except DomainError as exc:
        return await _page(request, ctx, user, message=forms.error(exc), failed=level_code.upper(),
                           status_code=forms.status_for(exc))
    return forms.back("/console/level-gifts", "saved", level=code)
