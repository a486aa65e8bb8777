"""Top-ups in the portal (充值): every user sees the enterprise's requests and what became of them; its admins ask
for a top-up paid by bank transfer (the amount in yuan, the transfer's reference: the shop's operator confirms it
in the console once the money arrived, or refuses it with a reason) or pay it online through one of the shop's
gateways (sent to its cashier; its notification credits the balance). The enterprises top-ups services keep every
rule; each request is audited with the admin as actor, each online credit with the gateway as actor."""

from __future__ import annotations

import logging
import secrets
from typing import Annotated

from fastapi import APIRouter, Path, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.exc import IntegrityError

from quanyi.deps import ContextDep, client_ip, user_agent
from quanyi.enterprises import service as enterprises_service
from quanyi.enterprises import top_up_payments, top_ups, users
from quanyi.enterprises.models import TopUpStatus
from quanyi.enterprises.portal import auth
from quanyi.enterprises.portal.auth import PortalUser, UserDep, needs
from quanyi.enterprises.portal.pages import audit, forms, not_found
from quanyi.enterprises.portal.rendering import render_page
from quanyi.errors import DomainError, NotFound
from quanyi.money import format_money
from quanyi.payments.gateway import GatewayUnavailable, NotificationRejected
from quanyi.payments.titles import title_of
from quanyi.urls import shop_base_url
from quanyi.web.i18n import pick_locale

__all__ = ["router", "notify_router"]

router = auth.portal_router("/portal/top-ups")
notify_router = APIRouter(include_in_schema=False)  # the gateways' server-to-server calls: no login, no form token
logger = logging.getLogger("quanyi.enterprises.top_ups")
TopUpDep = Annotated[PortalUser, needs(users.TOP_UP)]
RequestNo = Annotated[str, Path(min_length=4, max_length=24, pattern=r"^[A-Z0-9]+$")]
MESSAGES = ("top_up_requested", "top_up_repeated", "top_up_paying", "top_up_paid", "top_up_unpaid",
            "top_up_credited_before")
FIELDS = ("amount", "payment_method", "payer_reference", "note")  # not "method": it would shadow form.method
_MAX_NOTIFY_BYTES = 64 * 1024


async def _page(request: Request, ctx: ContextDep, user: PortalUser, *, message: forms.Message | None = None,
                typed: dict[str, str] | None = None, status_code: int = 200) -> HTMLResponse:
    async with ctx.db.read_session() as session:
        enterprise = await enterprises_service.get_enterprise(session=session, code=user.code)
        account = await enterprises_service.account_of(session=session, enterprise=enterprise)
        listed = await top_ups.list_top_ups(session=session, code=user.code)
    return render_page(request, "portal/top_ups.html", {
        "account": account, "requests": listed, "message": message, "typed": typed or {},
        "request_key": secrets.token_urlsafe(16), "payee": ctx.settings.enterprise_top_up_payee,
        "max_pending": top_ups.MAX_PENDING, "gateways": top_up_payments.online_gateways(ctx.gateways),
        "gateway_titles": {g.name: title_of(g, pick_locale(request, ctx.settings.default_locale))
                           for g in ctx.gateways.all()},
    }, user=user, active="top_ups", status_code=status_code)


@router.get("", response_class=HTMLResponse)
async def top_up_list(request: Request, ctx: ContextDep, user: UserDep) -> Response:
    return await _page(request, ctx, user, message=forms.flash(
        request, "portal", MESSAGES, warn=("top_up_repeated", "top_up_unpaid"), values=("no", "amount")))


async def _to_cashier(request: Request, ctx: ContextDep, user: PortalUser, made: top_ups.TopUpRequest) -> Response:
    """Off to the gateway's cashier for a pending online request (outside any transaction: a network call)."""
    gateway = ctx.gateways.get(made.gateway or "")
    root = shop_base_url(ctx.settings).rstrip("/")
    notify_url, return_url = top_up_payments.callback_urls(root, gateway.name)
    checkout = await top_up_payments.open_checkout(
        gateway=gateway, request=made, enterprise_name=user.login.enterprise_name, notify_url=notify_url,
        return_url=f"{return_url}&no={made.request_no}", buyer_ip=user.ip)
    if not checkout.cashier_url:
        raise GatewayUnavailable(f"{gateway.title} did not open a cashier page")
    url = root + checkout.cashier_url if checkout.cashier_url.startswith("/") else checkout.cashier_url
    return RedirectResponse(url, status_code=303)


@router.post("", response_class=HTMLResponse)
async def request_top_up(request: Request, ctx: ContextDep, user: TopUpDep) -> Response:
    form = await request.form()
    typed = {name: str(form.get(name, ""))[:500] for name in FIELDS}
    chosen = typed["payment_method"] or "bank_transfer"
    method, _, gateway_name = chosen.partition(":")
    try:
        if method == "online" and gateway_name not in [g.name for g in top_up_payments.online_gateways(ctx.gateways)]:
            raise top_ups.InvalidTopUp("这个在线支付渠道暂不可用，请选择其他付款方式", field="payment_method")
        async with ctx.db.transaction() as session:
            enterprise = await enterprises_service.get_enterprise(session=session, code=user.code)
            account = await enterprises_service.account_of(session=session, enterprise=enterprise)
            made, created = await top_ups.request_top_up(
                session=session, code=user.code, amount_cents=top_ups.parse_yuan(typed["amount"], account.currency),
                method=method, gateway=gateway_name or None, payer_reference=typed["payer_reference"],
                note=typed["note"], actor=user.actor_name, request_key=str(form.get("request_key", ""))[:100])
            if created:
                paid_by = f"online at {gateway_name}" if method == "online" else f"bank transfer {made.payer_reference}"
                await audit(session, user, "portal_top_up_requested",
                            f"{made.request_no}: {made.amount_cents} cents {made.currency} by {paid_by}")
        if method == "online" and made.status == top_ups.TopUpStatus.PENDING.value:
            return await _to_cashier(request, ctx, user, made)
    except DomainError as exc:
        return await _page(request, ctx, user, message=forms.error(exc), typed=typed,
                           status_code=forms.status_for(exc))
    return forms.back("/portal/top-ups", "top_up_requested" if created else "top_up_repeated", no=made.request_no,
                      amount=format_money(made.amount_cents, made.currency))


@router.post("/{request_no}/{action}", response_class=HTMLResponse)
async def online_action(request_no: RequestNo, action: Annotated[str, Path(pattern=r"^(pay|check)$")],
                        request: Request, ctx: ContextDep, user: TopUpDep) -> Response:
    """An unpaid online request: back to the cashier (pay), or ask the gateway whether it was paid (check)."""
    try:
        async with ctx.db.read_session() as session:
            found = await top_ups.get_top_up(session=session, code=user.code, request_no=request_no)
        if found.method != "online":
            raise top_ups.TopUpDecided(f"充值申请 {request_no} 是对公转账，由商城核对到账后入账")
        if action == "pay":  # paying starts a payment: not while suspended; asking about one already made is fine
            enterprises_service.check_not_suspended(user.login.enterprise_status)
            return await _to_cashier(request, ctx, user, found)
        if found.status == TopUpStatus.CREDITED.value:  # already credited: say so, without asking the gateway
            return forms.back("/portal/top-ups", "top_up_credited_before", no=request_no)
        gateway = ctx.gateways.get(found.gateway or "")
        status = await top_up_payments.check_payment(db=ctx.db, gateway=gateway, counters=ctx.risk.counters,
                                                     code=user.code, request_no=request_no)
    except NotFound:
        return not_found(request, user)
    except DomainError as exc:
        return await _page(request, ctx, user, message=forms.error(exc), status_code=forms.status_for(exc))
    return forms.back("/portal/top-ups", "top_up_paid" if status == TopUpStatus.CREDITED.value else "top_up_unpaid",
                      no=request_no)


@notify_router.post("/enterprise-top-ups/{gateway_name}/notify", response_class=Response)
async def notify(gateway_name: Annotated[str, Path(max_length=32, pattern=r"^[a-z0-9_]+$")], request: Request,
                 ctx: ContextDep) -> Response:
    """A gateway's notification about an online top-up, answered in its own protocol (success only after the
    commit)."""
    gateway = ctx.gateways.get(gateway_name)
    body = await request.body()
    try:
        if len(body) > _MAX_NOTIFY_BYTES or gateway.name not in top_up_payments.ONLINE_GATEWAYS:
            raise NotificationRejected("not a top-up notification this shop takes")
        async with ctx.db.transaction() as session:
            applied = await top_up_payments.handle_notification(session=session, gateway=gateway,
                                                                headers=request.headers, body=body)
            if applied.credited:
                await top_up_payments.record_credit(session, gateway, applied, ip=client_ip(request),
                                                    user_agent=user_agent(request))
    except DomainError as exc:
        logger.warning("top-up notification refused: gateway=%s code=%s reason=%s ip=%s", gateway.name, exc.code,
                       exc.message, client_ip(request))
        reply = gateway.refuse(exc.message)
        return Response(reply.body, status_code=reply.status_code, media_type=reply.media_type)
    except IntegrityError:  # a concurrent copy committed first: this one rolled back whole; the retry is a no-op
        reply = gateway.refuse("processed concurrently; retry")
        return Response(reply.body, status_code=reply.status_code, media_type=reply.media_type)
    reply = gateway.acknowledge()
    return Response(reply.body, status_code=reply.status_code, media_type=reply.media_type)
