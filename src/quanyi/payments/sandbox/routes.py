"""The sandbox gateway's cashier pages (模拟收银台) and its merchant API (query, refund).

Stand-ins for a real gateway's hosted pages and open API. API calls are signed forms (the same HMAC
canonical string as notifications, with timestamp and nonce); answers are JSON signed the same way.
"""

from __future__ import annotations

import time
from urllib.parse import parse_qsl

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from quanyi.deps import ContextDep
from quanyi.payments.sandbox import server as sandbox_server
from quanyi.payments.sandbox.signing import sign_params, signature_matches
from quanyi.web.csrf import CSRF_PROTECTED
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


@router.post("/cashier/pay", dependencies=[CSRF_PROTECTED])
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


def _api_answer(payload: dict[str, str], secret: str, status_code: int = 200) -> JSONResponse:
    payload = {**payload, "timestamp": str(int(time.time()))}
    return JSONResponse({**payload, "sign": sign_params(payload, secret)}, status_code=status_code)


async def _api_params(request: Request, secret: str, tolerance: int, required: tuple[str, ...]) -> dict[str, str]:
    body = await request.body()
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=True, max_num_fields=32)
    except (UnicodeDecodeError, ValueError):
        raise sandbox_server.RefundRefused("malformed request", reason="INVALID_PARAMETER") from None
    params = dict(pairs)
    missing = [name for name in (*required, "timestamp", "nonce", "sign") if not params.get(name)]
    if missing:
        raise sandbox_server.RefundRefused(f"missing {', '.join(missing)}", reason="INVALID_PARAMETER")
    if not signature_matches(params, secret):
        raise sandbox_server.RefundRefused("bad signature", reason="INVALID_SIGNATURE")
    if not params["timestamp"].isdigit() or abs(time.time() - int(params["timestamp"])) > tolerance:
        raise sandbox_server.RefundRefused("stale request", reason="INVALID_TIMESTAMP")
    return params


async def _api(request: Request, ctx: ContextDep, required: tuple[str, ...], call) -> JSONResponse:  # type: ignore[no-untyped-def]
    secret = ctx.settings.sandbox_secret.get_secret_value()
    try:
        params = await _api_params(request, secret, ctx.settings.notify_tolerance_seconds, required)
        async with ctx.db.transaction() as session:
            answer = await call(session, params)
    except sandbox_server.RefundRefused as exc:
        return _api_answer({"code": str(exc.context.get("reason", "FAILED")), "msg": exc.message}, secret, 400)
    return _api_answer({"code": "SUCCESS", **answer}, secret)


@router.post("/api/trade/query")
async def api_trade_query(request: Request, ctx: ContextDep) -> JSONResponse:
    return await _api(request, ctx, ("out_trade_no",), lambda session, p: sandbox_server.query_trade(
        session=session, payment_no=p["out_trade_no"]))


@router.post("/api/trade/refund")
async def api_trade_refund(request: Request, ctx: ContextDep) -> JSONResponse:
    async def call(session, p):  # type: ignore[no-untyped-def]
        if not p["refund_amount_cents"].isdigit():
            raise sandbox_server.RefundRefused("refund_amount_cents must be an integer", reason="INVALID_AMOUNT")
        return await sandbox_server.refund_trade(
            session=session, payment_no=p["out_trade_no"], refund_no=p["out_request_no"],
            amount_cents=int(p["refund_amount_cents"]), reason=p.get("refund_reason", ""))
    return await _api(request, ctx, ("out_trade_no", "out_request_no", "refund_amount_cents"), call)


@router.post("/api/refund/query")
async def api_refund_query(request: Request, ctx: ContextDep) -> JSONResponse:
    return await _api(request, ctx, ("out_request_no",), lambda session, p: sandbox_server.query_refund(
        session=session, refund_no=p["out_request_no"]))
