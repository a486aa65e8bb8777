"""The review queue (风控审核): paid orders held by risk control, their signals and decisions, and approve /
reject with a reason, through the same review service as the admin API (audited twice: in the review log
and in the staff audit log)."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import Path, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

import quanyi.console.texts.reviews  # noqa: F401 - registers the texts
from quanyi.console import forms
from quanyi.console.auth import ConsoleUser, console_router, needs
from quanyi.console.menu import MenuItem, register
from quanyi.console.order_routes import contact_of
from quanyi.console.rendering import render_page
from quanyi.deps import ContextDep
from quanyi.errors import DomainError, InvalidInput
from quanyi.orders import search as order_search
from quanyi.orders import service as orders_service
from quanyi.orders.service import PaymentEffect
from quanyi.refunds import service as refunds_service
from quanyi.risk import review as review_service
from quanyi.staff.audit import record_action

__all__ = ["router"]

router = console_router("/console/reviews")
register(MenuItem("reviews", "/console/reviews", "risk.review", group="risk", order=10, icon="shield"))

Reviewer = Annotated[ConsoleUser, needs("risk.review")]
OrderNo = Annotated[str, Path(min_length=1, max_length=64)]


@router.get("", response_class=HTMLResponse)
async def queue(request: Request, ctx: ContextDep, user: Reviewer) -> HTMLResponse:
    async with ctx.db.read_session() as session:
        held = await review_service.list_held_orders(session=session, scope=user.scope)
        recent = await review_service.list_review_actions(session=session, limit=20, scope=user.scope)
        numbers = {o.id: o.order_no for o in await order_search.orders_by_ids(
            session=session, order_ids=[a.order_id for a in recent])}
    return render_page(request, "console/reviews.html", {
        "held": held, "recent": recent, "order_numbers": numbers,
        "contact": lambda o: contact_of(user, o.contact_kind, o.contact),
    }, user=user, active="reviews")


async def _page(request: Request, ctx: ContextDep, user: ConsoleUser, order_no: str, *,
                message: tuple[str, dict[str, Any], str] | None = None, status_code: int = 200) -> HTMLResponse:
    async with ctx.db.read_session() as session:
        order = await orders_service.get_order(session=session, order_no=order_no, scope=user.scope)
        held = await review_service.held_order(session=session, order=order)
        actions = await review_service.list_review_actions(session=session, order_id=order.id)
    return render_page(request, "console/review.html", {
        "held": held, "order": order, "actions": actions, "message": message,
        "contact": contact_of(user, order.contact_kind, order.contact),
    }, user=user, active="reviews", status_code=status_code)


@router.get("/{order_no}", response_class=HTMLResponse)
async def detail(order_no: OrderNo, request: Request, ctx: ContextDep, user: Reviewer) -> HTMLResponse:
    code = request.query_params.get("m", "")
    message = None
    if code in ("approved", "approved_other", "rejected"):
        message = ("m." + code, {k: request.query_params.get(k, "")[:64] for k in ("refund_no", "status")}, "ok")
    return await _page(request, ctx, user, order_no, message=message)


def _refusal(exc: DomainError) -> tuple[str, dict[str, Any], str]:
    """A refused decision's message: a missing reason says so in its headline alone (the general
    err.invalid_input does not); any other refusal names its detail."""
    if exc.code == "invalid_input":
        return "review.err.invalid_input", {}, "err"
    return forms.error(exc)


def _reason(form: Any) -> str:
    reason = forms.text(form, "reason", max_length=500)  # a longer one is refused, not cut
    if not reason:
        raise InvalidInput("a reason is required for every review decision")
    return reason


@router.post("/{order_no}/approve", response_class=HTMLResponse)
async def approve(order_no: OrderNo, request: Request, ctx: ContextDep, user: Reviewer) -> Response:
    try:
        reason = _reason(await request.form())
        async with ctx.db.transaction() as session:
            order, effect = await review_service.approve_order(session=session, order_no=order_no, actor=user.name,
                                                               reason=reason, scope=user.scope)
            await record_action(session=session, actor=user.actor, action="review_approved", object_type="order",
                                object_id=order.order_no, summary=f"{effect.value}: {reason}")
            number, status = order.order_no, order.status.value
    except DomainError as exc:
        return await _page(request, ctx, user, order_no, message=_refusal(exc),
                           status_code=forms.status_for(exc))
    code = "approved" if effect is PaymentEffect.DELIVERED else "approved_other"
    return RedirectResponse(f"/console/reviews/{number}?{urlencode({'m': code, 'status': status})}", status_code=303)


@router.post("/{order_no}/reject", response_class=HTMLResponse)
async def reject(order_no: OrderNo, request: Request, ctx: ContextDep, user: Reviewer) -> Response:
    try:
        reason = _reason(await request.form())
        async with ctx.db.transaction() as session:
            order, refund_no = await review_service.reject_order(session=session, order_no=order_no, actor=user.name,
                                                                 reason=reason, scope=user.scope)
            refund_id = (await refunds_service.get_refund(session=session, refund_no=refund_no)).id
            await record_action(session=session, actor=user.actor, action="review_rejected", object_type="order",
                                object_id=order.order_no, summary=f"refund {refund_no}: {reason}")
            number = order.order_no
    except DomainError as exc:
        return await _page(request, ctx, user, order_no, message=_refusal(exc),
                           status_code=forms.status_for(exc))
    # Committed: the refund exists whatever happens next; the gateway call runs outside any transaction and
    # is retried in the background if the gateway is down.
    await refunds_service.execute_refund(db=ctx.db, gateways=ctx.gateways, refund_id=refund_id)
    async with ctx.db.read_session() as session:
        status = (await orders_service.get_order(session=session, order_no=number)).status.value
    query = urlencode({"m": "rejected", "refund_no": refund_no, "status": status})
    return RedirectResponse(f"/console/reviews/{number}?{query}", status_code=303)
