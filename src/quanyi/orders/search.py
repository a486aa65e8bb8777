"""Finding orders for staff (订单查询): by number, contact, status, shop days and SKU; one page at a time for
the console, or chunk by chunk for exports. Read only."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from sqlalchemy import false, func, or_, select, union_all
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.selectable import Select

from quanyi.db import Database, like_anywhere
from quanyi.orders.contact import contact_fragment, normalize_contact
from quanyi.orders.models import Order, OrderEvent
from quanyi.orders.numbers import ORDER_NO_PART, normalize_order_no
from quanyi.orders.state import OrderStatus
from quanyi.payments.models import Payment
from quanyi.scope import PLATFORM, Scope
from quanyi.shoptime import shop_midnight

__all__ = ["OrderFilters", "paid_by_number", "search_orders", "iter_orders", "order_events", "orders_by_ids"]


def paid_by_number(number: str) -> Select[tuple[int | None]]:
    """The orders our payment number or a gateway's trade number paid. The trade number is asked under every
    gateway that has payments (one no longer configured too), each on the (gateway, gateway_trade_no) unique index,
    whose leading column is the gateway: the gateways are read off that index one at a time (the next name after
    the last one: one probe each), and each look-up is a subquery of its own, so no plan reads every payment."""
    first = select(Payment.gateway).order_by(Payment.gateway).limit(1).scalar_subquery()
    gateways = select(first.label("gateway")).cte("gateways_in_use", recursive=True)
    later = aliased(Payment)
    following = (select(later.gateway).where(later.gateway > gateways.c.gateway).order_by(later.gateway).limit(1)
                 .scalar_subquery())
    gateways = gateways.union_all(select(following).where(gateways.c.gateway.is_not(None)))
    paid = aliased(Payment)
    by_trade_no = select(select(paid.order_id).where(paid.gateway == gateways.c.gateway,
                                                     paid.gateway_trade_no == number).scalar_subquery())
    return union_all(select(Payment.order_id).where(Payment.payment_no == number.upper()),
                     by_trade_no.where(gateways.c.gateway.is_not(None)))


@dataclass(frozen=True, slots=True)
class OrderFilters:
    """What staff search for; empty fields do not filter. Days are the shop's calendar days, inclusive."""

    number: str = ""  # an order number (or part of one), a payment number or the gateway's transaction number
    contact: str = ""  # a whole e-mail / phone number, or part of one
    status: OrderStatus | None = None
    day_from: dt.date | None = None
    day_to: dt.date | None = None
    sku: str = ""  # a SKU code

    @property
    def searched_number(self) -> str:
        return self.number.strip()[:64]

    def conditions(self, zone: ZoneInfo, *, paid_order_ids: Sequence[int] = ()) -> list[ColumnElement[bool]]:
        """`paid_order_ids`: the orders `paid_by_number` found for the number (read first, in a statement of its
        own: as a subquery here it planned a walk of every order on some tables)."""
        where: list[ColumnElement[bool]] = []
        number = self.searched_number
        if number:
            canonical = normalize_order_no(number)
            # The order number (part of one reads every order, so only text that can be part of one) or the ids:
            # each on its own index.
            by_number = [Order.order_no == canonical] if canonical else [
                Order.order_no.like(like_anywhere(number.upper()), escape="\\")] if ORDER_NO_PART.match(
                number.upper()) else []
            paid = [Order.id.in_(sorted(set(paid_order_ids)))] if paid_order_ids else []
            where.append(or_(*by_number, *paid) if by_number or paid else false())
        contact = self.contact.strip()[:254]
        if contact:
            try:
                where.append(Order.contact == normalize_contact(contact)[1])
            except ValueError:  # part of one: read whole (docs/PERFORMANCE.md section 30)
                where.append(Order.contact.like(like_anywhere(contact_fragment(contact)), escape="\\"))
        if self.status is not None:
            where.append(Order.status == self.status)
        if self.day_from is not None:
            where.append(Order.created_at >= shop_midnight(self.day_from, zone))
        if self.day_to is not None:
            where.append(Order.created_at < shop_midnight(self.day_to + dt.timedelta(days=1), zone))
        if self.sku.strip():
            where.append(func.upper(Order.sku_code) == self.sku.strip().upper()[:64])
        return where


async def search_orders(*, session: AsyncSession, filters: OrderFilters, zone: ZoneInfo, before_id: int | None = None,
                        limit: int = 50, scope: Scope = PLATFORM) -> list[Order]:
    """Newest first; `before_id` (the last id of the previous page) pages back. Only orders of the scope."""
    paid_order_ids: list[int] = []
    if filters.searched_number:
        paid_order_ids = [i for i in (await session.scalars(paid_by_number(filters.searched_number))).all()
                          if i is not None]
    query = (select(Order).where(scope.where(Order.merchant_id),
                                 *filters.conditions(zone, paid_order_ids=paid_order_ids))
             .order_by(Order.id.desc()).limit(limit))
    if before_id is not None:
        query = query.where(Order.id < before_id)
    return list((await session.scalars(query)).all())


async def iter_orders(*, db: Database, filters: OrderFilters, zone: ZoneInfo, chunk: int = 500,
                      limit: int | None = None, scope: Scope = PLATFORM) -> AsyncIterator[list[Order]]:
    """Every matching order, newest first, `chunk` at a time, each chunk read in its own short read
    transaction (an export of a year of orders holds no transaction open while the client downloads)."""
    before_id: int | None = None
    sent = 0
    while limit is None or sent < limit:
        size = chunk if limit is None else min(chunk, limit - sent)
        async with db.read_session() as session:
            rows = await search_orders(session=session, filters=filters, zone=zone, before_id=before_id, limit=size,
                                       scope=scope)
        if not rows:
            return
        yield rows
        sent += len(rows)
        before_id = rows[-1].id


async def order_events(*, session: AsyncSession, order_id: int) -> list[OrderEvent]:
    """An order's status history, oldest first."""
    return list((await session.scalars(select(OrderEvent).where(OrderEvent.order_id == order_id)
                                       .order_by(OrderEvent.id))).all())


async def orders_by_ids(*, session: AsyncSession, order_ids: list[int]) -> list[Order]:
    if not order_ids:
        return []
    return list((await session.scalars(select(Order).where(Order.id.in_(set(order_ids))))).all())
