"""The refunds waiting for a person (退款待处理): refused by the gateway, or stalled after the worker's unanswered
sends, the oldest first; each opens its order's page, where staff retry it or withdraw it (order_routes.py)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

import quanyi.console.texts.orders  # noqa: F401 - registers the texts
from quanyi.console.auth import ConsoleUser, console_router, needs
from quanyi.console.menu import MenuItem, register
from quanyi.console.rendering import render_page
from quanyi.deps import ContextDep
from quanyi.refunds import reports as refund_reports

__all__ = ["router"]

router: APIRouter = console_router("/console/refunds")
register(MenuItem("refunds", "/console/refunds", "orders.refund", group="sales", order=26, icon="alert"))
QUEUE_LIMIT = 200


@router.get("", response_class=HTMLResponse)
async def queue(request: Request, ctx: ContextDep,
                user: Annotated[ConsoleUser, needs("orders.refund")]) -> HTMLResponse:
    async with ctx.db.read_session() as session:
        refunds = await refund_reports.refunds_needing_staff(session=session, scope=user.scope,
                                                             limit=QUEUE_LIMIT + 1)
    return render_page(request, "console/refunds.html", {
        "refunds": refunds[:QUEUE_LIMIT], "more": len(refunds) > QUEUE_LIMIT}, user=user, active="refunds")
