"""Staff told when a refund starts to wait for them (退款待处理): the gateway refused it, or the worker stopped
sending it after AUTOMATIC_ATTEMPTS unanswered tries. Recorded in the outbox in the transaction that records the
refund's new state (refunds.service._record), so the message exists exactly when the state does: a process that
dies after the commit loses nothing (the notification worker sends it), and a rollback leaves no message."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from quanyi.notifications import service as notifications_service
from quanyi.orders.models import Order
from quanyi.refunds.models import Refund, RefundEvent

__all__ = ["refund_awaits_staff"]


async def refund_awaits_staff(*, session: AsyncSession, refund: Refund, order: Order,
                              state: Literal["refused", "stalled"], now: dt.datetime) -> bool:
    """E-mail the order's merchant that this refund waits for staff. Once per refund and state change: the key
    counts the refund's audit events, which only a change adds (a retry adds one, so a refund refused, retried and
    refused again is told twice; a worker pass or a replay that changes nothing is told nothing new)."""
    await session.flush()  # the sessions do not autoflush: count this change's own event too
    changes = int(await session.scalar(
        select(func.count()).select_from(RefundEvent).where(RefundEvent.refund_id == refund.id)) or 0)
    payload = {
        "state": state, "refund_no": refund.refund_no, "order_number": order.order_no,
        "product_name": order.product_name, "sku_name": order.sku_name, "total_cents": refund.amount_cents,
        "currency": refund.currency, "gateway": refund.gateway, "attempts": refund.attempts,
        "detail": (refund.last_error or "")[:300],
    }
    return await notifications_service.on_refund_awaiting_staff(
        session=session, order=order, key=f"{refund.refund_no}:{state}:{changes}", payload=payload, now=now)
