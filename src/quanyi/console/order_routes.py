"""Order pages: search and filter, export, the order file with its timeline, and what staff do to an order
(补单, resend the delivery notice, manual delivery, refunds and what to do with one the gateway refused) through
the same services as the API."""

from __future__ import annotations

import secrets
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

import quanyi.console.texts.orders  # noqa: F401 - registers the texts
from quanyi.console import forms
from quanyi.console.auth import ConsoleUser, console_router, needs
from quanyi.console.menu import MenuItem, register
from quanyi.console.order_export import export_orders
from quanyi.console.rendering import render_page
from quanyi.console.timeline import order_file
from quanyi.deps import ContextDep
from quanyi.errors import DomainError
from quanyi.money import InvalidAmount, format_money, parse_amount
from quanyi.notifications import service as notifications_service
from quanyi.orders import manual as manual_delivery
from quanyi.orders import search as order_search
from quanyi.orders import service as orders_service
from quanyi.orders.contact import mask_contact
from quanyi.orders.state import OrderStatus
from quanyi.payments import reconciliation
from quanyi.refunds import recovery
from quanyi.refunds import service as refunds_service
from quanyi.refunds.policy import InvalidRefund
from quanyi.shoptime import parse_day, shop_zone
from quanyi.staff.audit import record_action

__all__ = ["router", "filters_from_query"]

router = console_router("/console/orders")
register(MenuItem("orders", "/console/orders", "orders.read", group="sales", order=20, icon="orders"))

OrderNo = Annotated[str, Path(min_length=1, max_length=64)]
PAGE = 50
FILTER_KEYS = ("number", "contact", "status", "from", "to", "sku")


def filters_from_query(request: Request) -> tuple[order_search.OrderFilters, dict[str, str]]:
    """The search form's fields (kept for redrawing it) and the filters they mean; bad values filter nothing."""
    form = {key: request.query_params.get(key, "")[:254].strip() for key in FILTER_KEYS}
    status = form["status"] if form["status"] in OrderStatus.__members__.values() else ""
    form["status"] = status
    return order_search.OrderFilters(
        number=form["number"], contact=form["contact"], status=OrderStatus(status) if status else None,
        day_from=parse_day(form["from"]), day_to=parse_day(form["to"]), sku=form["sku"]), form


def contact_of(user: ConsoleUser, kind: str, value: str) -> str:
    """A buyer's contact as this staff member may see it: whole with orders.contact, masked otherwise."""
    return value if user.can("orders.contact") else mask_contact(kind, value)


@router.get("", response_class=HTMLResponse)
async def order_list(request: Request, ctx: ContextDep, user: Annotated[ConsoleUser, needs("orders.read")],
                     before: Annotated[int | None, Query(ge=1, le=2_147_483_647)] = None) -> HTMLResponse:
    filters, form = filters_from_query(request)
    zone = shop_zone(ctx.settings.shop_timezone)
    async with ctx.db.read_session() as session:
        orders = await order_search.search_orders(session=session, filters=filters, zone=zone, before_id=before,
                                                  limit=PAGE + 1, scope=user.scope)
    more = len(orders) > PAGE
    orders = orders[:PAGE]
    query = {k: v for k, v in form.items() if v}
    next_url = f"/console/orders?{urlencode({**query, 'before': orders[-1].id})}" if more else None
    return render_page(request, "console/orders.html", {
        "orders": orders, "form": form, "statuses": list(OrderStatus), "next_url": next_url,
        "export_query": urlencode(query), "contact": lambda o: contact_of(user, o.contact_kind, o.contact),
    }, user=user, active="orders")


@router.get("/export")
async def export(request: Request, ctx: ContextDep, user: Annotated[ConsoleUser, needs("orders.export")],
                 format: Annotated[str, Query(pattern="^(csv|xlsx)$")] = "csv") -> Response:  # noqa: A002
    filters, form = filters_from_query(request)
    async with ctx.db.transaction() as session:
        await record_action(session=session, actor=user.actor, action="orders_exported", object_type="orders",
                            summary=f"{format} " + urlencode({k: v for k, v in form.items() if v}))
    return export_orders(ctx=ctx, user=user, filters=filters, fmt=format)  # type: ignore[arg-type]


async def _detail(request: Request, ctx: ContextDep, user: ConsoleUser, order_no: str, *,
                  message: tuple[str, dict[str, Any], str] | None = None, status_code: int = 200) -> HTMLResponse:
    async with ctx.db.read_session() as session:
        order = await orders_service.get_order(session=session, order_no=order_no, scope=user.scope)
        file = await order_file(session=session, order=order)
        # A manual order whose refund covers all it paid is not delivered by hand until that refund is withdrawn.
        can_manual = manual_delivery.can_deliver_manually(order) and not await refunds_service.full_refund_pending(
            session=session, order=order)
    refundable = order.total_cents - order.refunded_cents
    return render_page(request, "console/order.html", {
        "file": file, "order": order, "contact": contact_of(user, order.contact_kind, order.contact),
        "can_recheck": order.status in (OrderStatus.PENDING_PAYMENT, OrderStatus.CANCELLED)
        and any(p.status == "created" for p in file.payments),
        "can_resend": order.status is OrderStatus.DELIVERED,
        "can_manual": can_manual,
        "can_refund": refundable > 0 and any(p.status in ("succeeded", "duplicate") for p in file.payments),
        "refundable": format_money(refundable, order.currency), "request_key": secrets.token_urlsafe(12),
        "refund_actions": {r.refund_no: refunds_service.operator_actions(r) for r in file.refunds},
        "message": message, "money": format_money,
    }, user=user, active="orders", status_code=status_code)


def _flash(request: Request) -> tuple[str, dict[str, Any], str] | None:
    code = request.query_params.get("m", "")
    if code not in ("recheck_confirmed", "recheck_not_paid", "recheck_unreachable", "recheck_refused", "recheck_none",
                    "resent", "resend_unavailable", "delivered", "refunded", "refund_retried", "refund_withdrawn"):
        return None
    values = {k: request.query_params.get(k, "")[:300]
              for k in ("detail", "refund_no", "status", "effect", "keys", "resumed")}
    kind = "warn" if code in ("recheck_not_paid", "recheck_unreachable", "recheck_refused", "resend_unavailable") \
        else "ok"
    return "m." + code, values, kind


@router.get("/{order_no}", response_class=HTMLResponse)
async def order_detail(order_no: OrderNo, request: Request, ctx: ContextDep,
                       user: Annotated[ConsoleUser, needs("orders.read")]) -> HTMLResponse:
    return await _detail(request, ctx, user, order_no, message=_flash(request))


def _back(order_no: str, code: str, **values: str) -> RedirectResponse:
    return RedirectResponse(f"/console/orders/{order_no}?{urlencode({'m': code, **values})}", status_code=303)


def _error(exc: DomainError) -> tuple[str, dict[str, Any], str]:
    return forms.error(exc)  # a code without its own text (order_not_delivered) gets the general headline


@router.post("/{order_no}/recheck-payment")
async def recheck_payment(order_no: OrderNo, ctx: ContextDep,
                          user: Annotated[ConsoleUser, needs("orders.fulfil")]) -> Response:
    """补单 of a lost payment notification: the gateway is asked, a paid answer goes through confirm_payment."""
    async with ctx.db.read_session() as session:
        order = await orders_service.get_order(session=session, order_no=order_no, scope=user.scope)
    checks = await reconciliation.recheck_order_payments(db=ctx.db, gateways=ctx.gateways, order_id=order.id)
    summary = "; ".join(f"{c.payment_no} {c.outcome} {c.detail}" for c in checks) or "no unconfirmed payment"
    async with ctx.db.transaction() as session:
        await record_action(session=session, actor=user.actor, action="payment_rechecked", object_type="order",
                            object_id=order.order_no, summary=summary)
    confirmed = [c for c in checks if c.outcome == "confirmed"]
    if confirmed:
        return _back(order.order_no, "recheck_confirmed", detail=confirmed[0].payment_no, effect=confirmed[0].detail)
    for outcome in ("refused", "unreachable", "not_paid"):
        found = [c for c in checks if c.outcome == outcome]
        if found:
            return _back(order.order_no, f"recheck_{outcome}", detail=", ".join(f"{c.payment_no}: {c.detail}"
                                                                                for c in found))
    return _back(order.order_no, "recheck_none")


@router.post("/{order_no}/resend-notice")
async def resend_notice(order_no: OrderNo, request: Request, ctx: ContextDep,
                        user: Annotated[ConsoleUser, needs("orders.fulfil")]) -> Response:
    try:
        key = forms.text(await request.form(), "request_key", max_length=64) or secrets.token_urlsafe(12)
    except forms.FormError as exc:
        return await _detail(request, ctx, user, order_no, message=_error(exc), status_code=422)
    try:
        async with ctx.db.transaction() as session:
            order = await orders_service.get_order(session=session, order_no=order_no, scope=user.scope)
            if order.status is not OrderStatus.DELIVERED:
                raise orders_service.OrderNotDelivered("only a delivered order's notice can be sent again")
            queued = await notifications_service.resend_order_delivered(session=session, order=order,
                                                                        request_key=key)
            await record_action(session=session, actor=user.actor, action="delivery_notice_resent",
                                object_type="order", object_id=order.order_no,
                                summary="queued" if queued else "channel not configured")
    except orders_service.OrderNotDelivered as exc:
        return await _detail(request, ctx, user, order_no, message=_error(exc),
                             status_code=forms.status_for(exc))
    return _back(order.order_no, "resent" if queued else "resend_unavailable")


@router.post("/{order_no}/deliver", response_class=HTMLResponse)
async def deliver(order_no: OrderNo, request: Request, ctx: ContextDep,
                  user: Annotated[ConsoleUser, needs("orders.fulfil")]) -> Response:
    form = await request.form()
    codes = str(form.get("codes", ""))[:200_000].splitlines()
    note = str(form.get("note", ""))[:400]
    try:
        async with ctx.db.transaction() as session:
            order = await manual_delivery.deliver_manually(session=session, cipher=ctx.cipher, order_no=order_no,
                                                           codes=codes, note=note, actor=user.name,
                                                           scope=user.scope)
            await record_action(session=session, actor=user.actor, action="delivered_by_hand", object_type="order",
                                object_id=order.order_no,
                                summary=f"{len([c for c in codes if c.strip()])} codes; {note}".strip())
    except DomainError as exc:
        return await _detail(request, ctx, user, order_no, message=_error(exc), status_code=422)
    return _back(order.order_no, "delivered")


@router.post("/{order_no}/refund", response_class=HTMLResponse)
async def refund(order_no: OrderNo, request: Request, ctx: ContextDep,
                 user: Annotated[ConsoleUser, needs("orders.refund")]) -> Response:
    form = await request.form()
    try:
        reason = forms.text(form, "reason", max_length=500)
        # Kept as the refund's idempotency key: a NUL in it would be a 500 on PostgreSQL, like one in the reason.
        key = "console-" + (forms.text(form, "request_key", max_length=1000)[:40] or secrets.token_urlsafe(12))
    except forms.FormError as exc:
        return await _detail(request, ctx, user, order_no, message=_error(exc), status_code=422)
    amount_text, quantity_text = str(form.get("amount", "")).strip()[:32], str(form.get("quantity", "")).strip()[:8]
    payment_no = str(form.get("payment_no", "")).strip().upper()[:32] or None
    if not reason:
        return await _detail(request, ctx, user, order_no, message=("err.reason_required", {}, "err"),
                             status_code=422)
    try:
        async with ctx.db.transaction() as session:
            order = await orders_service.get_order(session=session, order_no=order_no, scope=user.scope)
            amount = parse_amount(amount_text, order.currency) if amount_text else None
            quantity = int(quantity_text) if quantity_text.isdigit() else None
            if quantity_text and quantity is None:
                raise InvalidRefund("the quantity must be a whole number")
            created_refund, created = await refunds_service.request_refund(
                session=session, order_id=order.id, reason=reason, requested_by=user.name, amount_cents=amount,
                quantity=quantity, payment_no=payment_no, request_key=key,
                refund_revealed_keys=ctx.settings.refund_revealed_keys)
            refund_id, refund_no = created_refund.id, created_refund.refund_no
            if created:
                await record_action(session=session, actor=user.actor, action="refund_requested", object_type="order",
                                    object_id=order.order_no, summary=f"{refund_no} "
                                    f"{format_money(created_refund.amount_cents, created_refund.currency)} "
                                    f"x{created_refund.quantity}: {reason}")
    except InvalidAmount as exc:  # the parser's reason shown too (said in the page's language: "1,50" and why)
        return await _detail(request, ctx, user, order_no, message=("err.invalid_amount", {"detail": str(exc)}, "err"),
                             status_code=422)
    except DomainError as exc:
        return await _detail(request, ctx, user, order_no, message=_error(exc),
                             status_code=forms.status_for(exc))
    # Committed: the refund exists whatever happens next. Now the gateway, outside any transaction (a gateway
    # that is down is retried in the background like any refund).
    if created:
        await refunds_service.execute_refund(db=ctx.db, gateways=ctx.gateways, refund_id=refund_id)
    async with ctx.db.read_session() as session:
        status = (await refunds_service.get_refund(session=session, refund_no=refund_no)).status
    return _back(order.order_no, "refunded", refund_no=refund_no, status=status)


RefundNo = Annotated[str, Path(pattern=r"^RF[0-9A-Z]{18}$")]


@router.post("/{order_no}/refunds/{refund_no}/retry", response_class=HTMLResponse)
async def retry_refund(order_no: OrderNo, refund_no: RefundNo, request: Request, ctx: ContextDep,
                       user: Annotated[ConsoleUser, needs("orders.refund")]) -> Response:
    """Send a refused or stalled refund again (the same refund number: the gateway pays it once)."""

    async def retry(session: Any, order: Any, refund: Any) -> dict[str, str]:
        await recovery.retry_refund(session=session, refund_no=refund.refund_no, actor=user.name,
                                    reason="retried by an operator", scope=user.scope)
        await record_action(session=session, actor=user.actor, action="refund_retried", object_type="refund",
                            object_id=refund.refund_no, summary=f"order {order.order_no}")
        return {}

    refund_id, refused = await _act_on_refund(request, ctx, user, order_no, refund_no, retry)
    if refund_id is None:
        return refused  # type: ignore[no-any-return]
    await refunds_service.execute_refund(db=ctx.db, gateways=ctx.gateways, refund_id=refund_id)
    async with ctx.db.read_session() as session:
        status = (await refunds_service.get_refund_by_id(session=session, refund_id=refund_id)).status
    return _back(order_no, "refund_retried", refund_no=refund_no, status=status)


@router.post("/{order_no}/refunds/{refund_no}/withdraw", response_class=HTMLResponse)
async def withdraw_refund(order_no: OrderNo, refund_no: RefundNo, request: Request, ctx: ContextDep,
                          user: Annotated[ConsoleUser, needs("orders.refund")]) -> Response:
    """Give up a refused refund: the buyer keeps (or gets) the goods; a paid order's delivery resumes."""
    try:
        reason = forms.text(await request.form(), "reason", max_length=500)
    except forms.FormError as exc:
        return await _detail(request, ctx, user, order_no, message=_error(exc), status_code=422)
    if not reason:
        return await _detail(request, ctx, user, order_no, message=("err.reason_required", {}, "err"),
                             status_code=422)

    async def withdraw(session: Any, order: Any, refund: Any) -> dict[str, str]:
        done = await recovery.withdraw_refund(session=session, refund_no=refund.refund_no, actor=user.name,
                                              reason=reason, scope=user.scope)
        await record_action(session=session, actor=user.actor, action="refund_withdrawn", object_type="refund",
                            object_id=refund.refund_no, summary=recovery.withdrawal_summary(done, reason))
        return {"keys": str(done.keys_returned), "resumed": "1" if done.delivery_resumed else ""}

    refund_id, answer = await _act_on_refund(request, ctx, user, order_no, refund_no, withdraw)
    if refund_id is None:
        return answer  # type: ignore[no-any-return]
    return _back(order_no, "refund_withdrawn", refund_no=refund_no, **answer)


async def _act_on_refund(request: Request, ctx: ContextDep, user: ConsoleUser, order_no: str, refund_no: str,
                         act: Any) -> tuple[int | None, Any]:
    """Run `act(session, order, refund)` on this order's refund in one transaction: (refund id, what it returned),
    or (None, the order page saying why it was refused)."""
    try:
        async with ctx.db.transaction() as session:
            order = await orders_service.get_order(session=session, order_no=order_no, scope=user.scope)
            refund = await _refund_of(session, order, refund_no, user)
            return refund.id, await act(session, order, refund)
    except DomainError as exc:
        return None, await _detail(request, ctx, user, order_no, message=_error(exc),
                                   status_code=forms.status_for(exc))  # a refund not found is a 404


async def _refund_of(session: Any, order: Any, refund_no: str, user: ConsoleUser) -> Any:
    """The refund, if it is this order's (a refund number under another order's page is not found)."""
    refund = await refunds_service.get_refund(session=session, refund_no=refund_no, scope=user.scope)
    if refund.order_id != order.id:
        raise refunds_service.RefundNotFound(f"refund {refund_no!r} not found")
    return refund
