"""Refund figures for the operator: money that went back to buyers in a period, per currency."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from quanyi.orders.models import Order
from quanyi.refunds.models import Refund
from quanyi.refunds.state import RefundStatus
from quanyi.scope import PLATFORM, Scope

__all__ = ["RefundTotals", "refund_totals", "open_refunds", "refunds_needing_staff"]


@dataclass(frozen=True, slots=True)
class RefundTotals:
    currency: str
    refunds: int
    cents: int


def _scoped(stmt, scope: Scope):  # type: ignore[no-untyped-def]
    """Refunds of the scope's orders (a merchant's staff: their merchant's)."""
    if scope.is_platform:
        return stmt
    return stmt.join(Order, Order.id == Refund.order_id).where(scope.where(Order.merchant_id))


async def refund_totals(*, session: AsyncSession, start: dt.datetime, end: dt.datetime,
                        scope: Scope = PLATFORM) -> list[RefundTotals]:
    """Refunds paid out (succeeded) in [start, end), per currency."""
    rows = await session.execute(_scoped(
        select(Refund.currency, func.count(), func.coalesce(func.sum(Refund.amount_cents), 0))
        .where(Refund.status == RefundStatus.SUCCEEDED.value, Refund.completed_at >= start, Refund.completed_at < end)
        .group_by(Refund.currency), scope))
    return [RefundTotals(currency, int(count), int(cents)) for currency, count, cents in rows.all()]


async def open_refunds(*, session: AsyncSession, scope: Scope = PLATFORM) -> dict[str, int]:
    """Refunds not finished yet, by status (requested, processing, failed): what still needs watching."""
    rows = await session.execute(_scoped(
        select(Refund.status, func.count())
        .where(Refund.status.in_([RefundStatus.REQUESTED.value, RefundStatus.PROCESSING.value,
                                  RefundStatus.FAILED.value]))
        .group_by(Refund.status), scope))
    return {status: int(count) for status, count in rows.all()}


async def refunds_needing_staff(*, session: AsyncSession, scope: Scope = PLATFORM,
                                limit: int = 200) -> list[tuple[Refund, str]]:
    """Refunds that wait for a person (退款待处理), the oldest first, with their order numbers: refused by the
    gateway (retry or withdraw), or stalled after the worker's unanswered sends (retry)."""
    rows = await session.execute(
        select(Refund, Order.order_no).join(Order, Order.id == Refund.order_id)
        .where(scope.where(Order.merchant_id),
               or_(Refund.status == RefundStatus.FAILED.value,
                   and_(Refund.status == RefundStatus.REQUESTED.value, Refund.next_attempt_at.is_(None))))
        .order_by(Refund.updated_at, Refund.id).limit(limit))
    return [(refund, order_no) for refund, order_no in rows.all()]
