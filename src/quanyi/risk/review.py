"""The review queue (人工审核): paid orders held by risk control wait here for staff to approve (deliver)
or reject (refund to the payer). Every decision is audited with who, why and when."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from quanyi.db import utcnow
from quanyi.errors import Conflict, InvalidInput
from quanyi.orders import service as orders_service
from quanyi.orders.models import Order
from quanyi.orders.service import PaymentEffect
from quanyi.orders.state import OrderStatus
from quanyi.refunds import service as refunds_service
from quanyi.risk.models import OrderRiskSignals, ReviewAction, RiskDecisionLog
from quanyi.scope import PLATFORM, Scope

__all__ = ["OrderNotHeld", "HeldOrder", "count_held_orders", "list_held_orders", "held_order", "approve_order",
           "reject_order", "list_review_actions", "order_decisions"]


class OrderNotHeld(Conflict):
    code = "order_not_under_review"


@dataclass
class HeldOrder:
    order: Order
    signals: OrderRiskSignals | None
    decisions: list[RiskDecisionLog]


async def count_held_orders(*, session: AsyncSession, scope: Scope = PLATFORM) -> int:
    """How many paid orders wait for a review decision (the size of the review queue)."""
    return int(await session.scalar(select(func.count()).select_from(Order)
                                    .where(Order.status == OrderStatus.UNDER_REVIEW,
                                           scope.where(Order.merchant_id))) or 0)


async def list_held_orders(*, session: AsyncSession, limit: int = 100, scope: Scope = PLATFORM) -> list[HeldOrder]:
    """Orders under review, oldest first, with the decisions that held them and their signals."""
    orders = (await session.scalars(select(Order).where(Order.status == OrderStatus.UNDER_REVIEW,
                                                        scope.where(Order.merchant_id))
                                    .order_by(Order.updated_at).limit(limit))).all()
    return [await held_order(session=session, order=order) for order in orders]


async def order_decisions(*, session: AsyncSession, order_id: int) -> list[RiskDecisionLog]:
    """Every risk decision logged about one order, oldest first."""
    return list((await session.scalars(select(RiskDecisionLog).where(RiskDecisionLog.order_id == order_id)
                                       .order_by(RiskDecisionLog.id))).all())


async def held_order(*, session: AsyncSession, order: Order) -> HeldOrder:
    """An order with what risk control knew and decided about it (held or not: the review's detail page)."""
    return HeldOrder(order, await session.get(OrderRiskSignals, order.id),
                     await order_decisions(session=session, order_id=order.id))


def _reason(reason: str) -> str:
    reason = reason.strip()
    if not reason:
        raise InvalidInput("a reason is required for every review decision")
    return reason[:500]


async def approve_order(*, session: AsyncSession, order_no: str, actor: str, reason: str,
                        now: dt.datetime | None = None, scope: Scope = PLATFORM) -> tuple[Order, PaymentEffect]:
    """Release a held order to delivery. Approving an order that was already approved delivers nothing."""
    now, reason = now or utcnow(), _reason(reason)
    order = await orders_service.get_order(session=session, order_no=order_no, scope=scope)
    order = await orders_service.lock_order(session=session, order_id=order.id)  # serializes two approvals
    if order.status is not OrderStatus.UNDER_REVIEW:
        raise OrderNotHeld(f"order {order.order_no} is {order.status.value}, not under review",
                           order_status=order.status.value)
    effect = await orders_service.release_held_order(session=session, order=order, reason=reason, now=now)
    session.add(ReviewAction(order_id=order.id, action="approve", actor=actor, reason=reason, created_at=now))
    return order, effect


async def reject_order(*, session: AsyncSession, order_no: str, actor: str, reason: str,
                       now: dt.datetime | None = None, scope: Scope = PLATFORM) -> tuple[Order, str]:
    """Refuse a held order: its keys go back to stock and the whole payment is refunded to the payer (the
    refund is recorded here, in the same transaction; the caller sends it to the gateway once committed).
    Returns the order and the refund number."""
    now, reason = now or utcnow(), _reason(reason)
    order = await orders_service.get_order(session=session, order_no=order_no, scope=scope)
    order = await orders_service.lock_order(session=session, order_id=order.id)
    if order.status is not OrderStatus.UNDER_REVIEW:
        raise OrderNotHeld(f"order {order.order_no} is {order.status.value}, not under review",
                           order_status=order.status.value)
    await orders_service.refuse_held_order(session=session, order=order, reason=reason, now=now)
    session.add(ReviewAction(order_id=order.id, action="reject", actor=actor, reason=reason, created_at=now))
    refund, _ = await refunds_service.request_refund(
        session=session, order_id=order.id, reason=f"rejected by risk review: {reason}", requested_by=actor,
        request_key=f"review-reject:{order.order_no}", now=now)
    return order, refund.refund_no


async def list_review_actions(*, session: AsyncSession, order_id: int | None = None,
                              limit: int = 100, scope: Scope = PLATFORM) -> list[ReviewAction]:
    query = select(ReviewAction).order_by(ReviewAction.id.desc()).limit(limit)
    if not scope.is_platform:
        query = query.join(Order, Order.id == ReviewAction.order_id).where(scope.where(Order.merchant_id))
    if order_id is not None:
        query = query.where(ReviewAction.order_id == order_id)
    return list((await session.scalars(query)).all())
