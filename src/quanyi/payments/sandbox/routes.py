"""The sandbox gateway's cashier pages (模拟收银台). Stand-ins for a real gateway's hosted pages."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from quanyi.deps import ContextDep
from quanyi.payments.sandbox import server as sandbox_server
from quanyi.web.i18n import pick_locale, translate
from quanyi.web.templating import render

router = APIRouter(prefix="/sandbox", include_in_schema=False)


def _ticket(request: Request, ctx: ContextDep, token: str) -> sandbox_server.CashierTicket | HTMLResponse:
    try:
        return sandbox_server.read_ticket(token, secret=ctx.settings.sandbox_secret.get_secret_value())
    except sandbox_server.InvalidCashierTicket:
        locale = pick_locale(request, ctx.settings.default_locale)
        return render(request, "error.html", {"status": 400, "code": "invalid_cashier_ticket",
                                              "message": translate(locale, "cashier.invalid")}, status_code=400)


@router.get("/cashier", response_class=HTMLResponse)
async def cashier(request: Request, ctx: ContextDep) -> HTMLResponse:
    token = request.query_params.get("t", "")
    ticket = _ticket(request, ctx, token)
    if isinstance(ticket, HTMLResponse):
        return ticket
    return render(request, "cashier.html", {"ticket": ticket, "token": token})


@router.post("/cashier/pay")
async def cashier_pay(request: Request, ctx: ContextDep) -> Response:
    token = str((await request.form()).get("t", ""))
    ticket = _ticket(request, ctx, token)
    if isinstance(ticket, HTMLResponse):
        return ticket
    async with ctx.db.transaction() as session:
        trade = await sandbox_server.pay(session=session, ticket=ticket)
        trade_id = trade.id
    # Committed; now tell the merchant, as a real gateway would, before sending the buyer back.
    # If this attempt fails, the background loop retries with backoff.
    await sandbox_server.notify_trade(db=ctx.db, client=ctx.http, secret=ctx.settings.sandbox_secret.get_secret_value(),
                                      trade_id=trade_id)
    return RedirectResponse(ticket.return_url, status_code=303)
