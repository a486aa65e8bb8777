"""The staff audit log page (操作日志): newest first, filtered by staff member, action, object and days; exported
as CSV / XLSX."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Sequence
from typing import Annotated
from urllib.parse import urlencode

from fastapi import Query, Request
from fastapi.responses import HTMLResponse, Response

import quanyi.console.texts.audit  # noqa: F401 - registers the texts
from quanyi.console.auth import ConsoleUser, console_router, needs
from quanyi.console.menu import MenuItem, register
from quanyi.console.rendering import render_page
from quanyi.deps import ContextDep
from quanyi.exports import Cell, Column, export_response
from quanyi.shoptime import parse_day, shop_midnight, shop_time, shop_zone
from quanyi.staff.audit import list_actions, record_action

__all__ = ["router"]

router = console_router("/console/audit")
register(MenuItem("audit", "/console/audit", "audit.read", group="system", order=90, icon="log"))
PAGE = 100


Auditor = Annotated[ConsoleUser, needs("audit.read")]


def _filters(request: Request, zone: dt.tzinfo) -> tuple[dict[str, str], dict[str, object]]:
    form = {key: request.query_params.get(key, "")[:64].strip() for key in ("actor", "action", "object", "from", "to")}
    since, until = parse_day(form["from"]), parse_day(form["to"])
    return form, {"actor": form["actor"] or None, "action": form["action"] or None,
                  "object_id": form["object"] or None,
                  "since": shop_midnight(since, zone) if since else None,  # type: ignore[arg-type]
                  "until": shop_midnight(until + dt.timedelta(days=1), zone) if until else None}  # type: ignore[arg-type]


@router.get("/export")
async def export(request: Request, ctx: ContextDep, user: Auditor,
                 format: Annotated[str, Query(pattern="^(csv|xlsx)$")] = "csv") -> Response:  # noqa: A002
    """The log as CSV / XLSX (for an auditor's own records), through quanyi.exports; the export is logged too."""
    zone = shop_zone(ctx.settings.shop_timezone)
    form, filters = _filters(request, zone)
    async with ctx.db.transaction() as session:
        await record_action(session=session, actor=user.actor, action="audit_log_exported", object_type="audit",
                            summary=f"{format} " + urlencode({k: v for k, v in form.items() if v}))

    async def rows() -> AsyncIterator[Sequence[Sequence[Cell]]]:
        before = None
        while True:
            async with ctx.db.read_session() as session:
                chunk = await list_actions(session=session, before_id=before, limit=500,  # type: ignore[arg-type]
                                           scope=user.scope, **filters)
            if not chunk:
                return
            yield [[e.id, shop_time(e.at, zone).replace(tzinfo=None), e.actor, e.action, e.object_type, e.object_id,
                    e.summary, e.ip, e.user_agent] for e in chunk]
            before = chunk[-1].id

    columns = [Column("id", 8), Column("at", 20), Column("actor", 14), Column("action", 22), Column("object_type", 12),
               Column("object_id", 18), Column("summary", 50), Column("ip", 16), Column("user_agent", 30)]
    stamp = dt.datetime.now(zone).strftime("%Y%m%d-%H%M")
    return export_response(format, filename=f"audit-log-{stamp}", columns=columns, rows=rows(),  # type: ignore[arg-type]
                           sheet_name="audit")


@router.get("", response_class=HTMLResponse)
async def audit_log(request: Request, ctx: ContextDep, user: Auditor,
                    before: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None) -> HTMLResponse:
    zone = shop_zone(ctx.settings.shop_timezone)
    form, filters = _filters(request, zone)
    async with ctx.db.read_session() as session:
        entries = await list_actions(session=session, before_id=before, limit=PAGE + 1,  # type: ignore[arg-type]
                                     scope=user.scope, **filters)
    more = len(entries) > PAGE
    entries = entries[:PAGE]
    query = {k: v for k, v in form.items() if v}
    next_url = f"/console/audit?{urlencode({**query, 'before': entries[-1].id})}" if more else None
    return render_page(request, "console/audit.html", {"entries": entries, "form": form, "next_url": next_url,
                                                       "export_query": urlencode(query)}, user=user, active="audit")
