"""Notifications and dead letters (通知 / 死信): the outbox by status, and what staff do with a message the worker
gave up on: retry it (fresh attempts) or discard it with a reason. Through the notification service the admin API
uses; a merchant's staff see their merchant's messages only. Recipients are masked without `orders.contact`."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlsplit

from fastapi import Path, Request
from fastapi.responses import HTMLResponse, Response

import quanyi.console.texts.notifications  # noqa: F401 - registers the texts
from quanyi.console import forms
from quanyi.console.auth import ConsoleUser, console_router, needs
from quanyi.console.menu import MenuItem, register
from quanyi.console.order_routes import contact_of
from quanyi.console.rendering import render_page
from quanyi.deps import ContextDep
from quanyi.errors import DomainError, NotFound
from quanyi.notifications import service as notifications_service
from quanyi.notifications.models import MessageStatus
from quanyi.orders import search as order_search
from quanyi.staff.audit import record_action

__all__ = ["router"]

router = console_router("/console/notifications")
register(MenuItem("notifications", "/console/notifications", "notifications.manage", group="system", order=30,
                  icon="bell"))

Manager = Annotated[ConsoleUser, needs("notifications.manage")]
MessageId = Annotated[int, Path(ge=1, le=2**63 - 1)]
LIMIT = 200


def _recipient(user: ConsoleUser, channel: str, recipient: str) -> str:
    """Who a message goes to, as staff may see it: a buyer's contact masked without orders.contact; a robot or
    webhook address only by its host (its path and query carry the access token)."""
    if channel == "email":
        return contact_of(user, "email", recipient)
    if channel == "sms":
        return contact_of(user, "phone", recipient)
    host = urlsplit(recipient).hostname
    return f"{host}/…" if host else "…"


def _status(request: Request) -> MessageStatus | None:
    raw = request.query_params.get("status", MessageStatus.DEAD.value)
    return MessageStatus(raw) if raw in MessageStatus.__members__.values() else None


async def _page(request: Request, ctx: ContextDep, user: ConsoleUser, status: MessageStatus | None, *,
                message: forms.Message | None = None, status_code: int = 200) -> HTMLResponse:
    async with ctx.db.read_session() as session:
        messages = await notifications_service.list_messages(session=session, status=status, limit=LIMIT,
                                                             scope=user.scope)
        counts = {s.value: await notifications_service.count_messages(session=session, status=s, scope=user.scope)
                  for s in MessageStatus}
        numbers = {o.id: o.order_no for o in await order_search.orders_by_ids(
            session=session, order_ids=[m.order_id for m in messages if m.order_id])}
    return render_page(request, "console/notifications.html", {
        "messages": messages, "counts": counts, "status": status.value if status else "", "numbers": numbers,
        "statuses": list(MessageStatus), "limit": LIMIT, "message": message,
        "recipient": lambda m: _recipient(user, m.channel, m.recipient),
    }, user=user, active="notifications", status_code=status_code)


@router.get("", response_class=HTMLResponse)
async def notification_list(request: Request, ctx: ContextDep, user: Manager) -> HTMLResponse:
    message = forms.flash(request, "nt", ("retried", "discarded"), values=("id",))
    return await _page(request, ctx, user, _status(request), message=message)


@router.post("/{message_id}/retry", response_class=HTMLResponse)
async def retry(message_id: MessageId, request: Request, ctx: ContextDep, user: Manager) -> Response:
    try:
        async with ctx.db.transaction() as session:
            message = await notifications_service.retry_message(session=session, message_id=message_id,
                                                                scope=user.scope)
            await record_action(session=session, actor=user.actor, action="notification_retried",
                                object_type="notification", object_id=message.id,
                                summary=f"{message.kind} via {message.channel}")
    except NotFound:
        return forms.not_found(request, user, active="notifications")
    except DomainError as exc:
        return await _page(request, ctx, user, MessageStatus.DEAD, message=forms.error(exc),
                           status_code=forms.status_for(exc))
    return forms.back("/console/notifications", "retried", id=str(message_id))


@router.post("/{message_id}/discard", response_class=HTMLResponse)
async def discard(message_id: MessageId, request: Request, ctx: ContextDep, user: Manager) -> Response:
    form = await request.form()
    try:
        reason = forms.text(form, "reason", max_length=200, required=True)
        async with ctx.db.transaction() as session:
            message = await notifications_service.discard_message(session=session, message_id=message_id,
                                                                  reason=reason, scope=user.scope)
            await record_action(session=session, actor=user.actor, action="notification_discarded",
                                object_type="notification", object_id=message.id,
                                summary=f"{message.kind} via {message.channel}: {reason}")
    except NotFound:
        return forms.not_found(request, user, active="notifications")
    except DomainError as exc:
        return await _page(request, ctx, user, MessageStatus.DEAD, message=forms.error(exc),
                           status_code=forms.status_for(exc))
    return forms.back("/console/notifications", "discarded", id=str(message_id))
