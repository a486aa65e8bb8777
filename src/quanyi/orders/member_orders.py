"""Orders of a buyer account (会员订单): a member's orders, and guest orders attached to the member who proves their
contact. Re-exported by `orders.service`, which other features call."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from quanyi.orders.models import Order
from quanyi.orders.numbers import normalize_order_no

__all__ = ["attach_guest_orders", "member_orders", "count_member_orders", "get_member_order"]


async def attach_guest_orders(*, session: AsyncSession, member_id: int, contact_kind: str, contact: str) -> int:
    """Attach every guest order placed with this (normalized) contact to the member, who has just proved it with a
    one-time code; how many were attached. Orders of another member and orders placed for an account customer
    (a reseller's or enterprise's, paid from its balance) stay as they are."""
    result = await session.execute(
        update(Order)
        .where(Order.contact_kind == contact_kind, Order.contact == contact, Order.member_id.is_(None),
               Order.customer_account_id.is_(None))
        .values(member_id=member_id))
    return int(result.rowcount)  # type: ignore[attr-defined]


async def member_orders(*, session: AsyncSession, member_id: int, limit: int = 20,
                        before_id: int | None = None) -> Sequence[Order]:
    """A member's orders, newest first; `before_id` pages on (the id of the last order of the previous page)."""
    stmt = select(Order).where(Order.member_id == member_id).order_by(Order.id.desc()).limit(limit)
    if before_id is not None:
        stmt = stmt.where(Order.id < before_id)
    return (await session.scalars(stmt)).all()


async def count_member_orders(*, session: AsyncSession, member_id: int) -> int:
    return int(await session.scalar(select(func.count()).select_from(Order).where(Order.member_id == member_id))
               or 0)


async def get_member_order(*, session: AsyncSession, member_id: int, order_no: str) -> Order:
    """One of the member's orders; another buyer's order (or none) is "not found" alike."""
    from quanyi.orders.service import OrderNotFound

    canonical = normalize_order_no(order_no)
    order = None
    if canonical is not None:
        order = await session.scalar(select(Order).where(Order.order_no == canonical, Order.member_id == member_id))
    if order is None:
        raise OrderNotFound("order not found")
    return order
