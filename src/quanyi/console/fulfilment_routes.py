"""The manual-delivery queue (待发货): paid orders of 手动发货 SKUs waiting for staff, the longest waiting first;
each opens the order's page, whose manual-delivery form delivers it through `orders.manual.deliver_manually`.
An order its refunds cover (refused or on their way) is shown as such: it is not delivered until they are settled."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

import quanyi.console.texts.catalog  # noqa: F401 - registers the texts
from quanyi.console.auth import ConsoleUser, console_router, needs
from quanyi.console.menu import MenuItem, register
from quanyi.console.order_routes import contact_of
from quanyi.console.rendering import render_page
from quanyi.db import utcnow
from quanyi.deps import ContextDep
from quanyi.orders import manual
from quanyi.refunds import service as refunds_service

__all__ = ["router"]

router: APIRouter = console_router("/console/fulfilment")
register(MenuItem("fulfilment", "/console/fulfilment", "orders.fulfil", group="sales", order=25, icon="orders"))
QUEUE_LIMIT = 200


@router.get("", response_class=HTMLResponse)
async def queue(request: Request, ctx: ContextDep,
                user: Annotated[ConsoleUser, needs("orders.fulfil")]) -> HTMLResponse:
    async with ctx.db.read_session() as session:
        orders = await manual.awaiting_manual_delivery(session=session, scope=user.scope, limit=QUEUE_LIMIT + 1)
        refunding = await refunds_service.orders_being_refunded(session=session, orders=orders[:QUEUE_LIMIT])
    return render_page(request, "console/fulfilment.html", {
        "orders": orders[:QUEUE_LIMIT], "more": len(orders) > QUEUE_LIMIT, "now": utcnow(), "refunding": refunding,
        "contact": lambda order: contact_of(user, order.contact_kind, order.contact)}, user=user, active="fulfilment")
