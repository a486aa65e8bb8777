"""The staff audit log page (操作日志): newest first, filtered by staff member, action, object and days."""

from __future__ import annotations

import datetime as dt
from typing import Annotated
from urllib.parse import urlencode

from fastapi import Query, Request
from fastapi.responses import HTMLResponse

import quanyi.console.texts.audit  # noqa: F401 - registers the texts
from quanyi.console.auth import ConsoleUser, console_router, needs
from quanyi.console.menu import MenuItem, register
from quanyi.console.rendering import render_page
from quanyi.deps import ContextDep
from quanyi.shoptime import shop_midnight, shop_zone
from quanyi.staff.audit import list_actions

__all__ = ["router"]

router = console_router("/console/audit")
register(MenuItem("audit", "/console/audit", "audit.read", group="system", order=90, icon="log"))
PAGE = 100


def _day(text: str) -> dt.date | None:
    try:
        return dt.date.fromisoformat(text) if text else None
    except ValueError:
        return None


@router.get("", response_class=HTMLResponse)
async def audit_log(request: Request, ctx: ContextDep, user: Annotated[ConsoleUser, needs("audit.read")],
                    before: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None) -> HTMLResponse:
    form = {key: request.query_params.get(key, "")[:64].strip() for key in ("actor", "action", "object", "from", "to")}
    zone = shop_zone(ctx.settings.shop_timezone)
    since, until = _day(form["from"]), _day(form["to"])
    async with ctx.db.read_session() as session:
        entries = await list_actions(
            session=session, actor=form["actor"] or None, action=form["action"] or None,
            object_id=form["object"] or None, since=shop_midnight(since, zone) if since else None,
            until=shop_midnight(until + dt.timedelta(days=1), zone) if until else None, before_id=before,
            limit=PAGE + 1)
    more = len(entries) > PAGE
    entries = entries[:PAGE]
    query = {k: v for k, v in form.items() if v}
    next_url = f"/console/audit?{urlencode({**query, 'before': entries[-1].id})}" if more else None
    return render_page(request, "console/audit.html", {"entries": entries, "form": form, "next_url": next_url},
                       user=user, active="audit")
