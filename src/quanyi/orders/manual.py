"""Manual delivery (手动发货): a paid order of a SKU the operator fulfils by hand waits in `paid` until a staff
member delivers it, with the codes they type (stored encrypted like imported card keys, in a batch named
after the order, and shown to the buyer like any card key) and/or a note for the buyer's order page."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from quanyi.catalog.models import DeliveryType
from quanyi.db import utcnow
from quanyi.errors import Conflict, InvalidInput
from quanyi.inventory import service as inventory_service
from quanyi.inventory.crypto import CardKeyCipher
from quanyi.orders import service as orders_service
from quanyi.orders.models import Order
from quanyi.orders.state import OrderStatus
from quanyi.refunds import service as refunds_service
from quanyi.scope import PLATFORM, Scope

__all__ = ["NotManuallyDeliverable", "ManualDeliveryInvalid", "deliver_manually", "can_deliver_manually",
           "awaiting_manual_delivery"]


class NotManuallyDeliverable(Conflict):
    code = "not_manually_deliverable"


class ManualDeliveryInvalid(InvalidInput):
    code = "manual_delivery_invalid"


def can_deliver_manually(order: Order) -> bool:
    return order.delivery_type == DeliveryType.MANUAL.value and order.status is OrderStatus.PAID


async def deliver_manually(*, session: AsyncSession, cipher: CardKeyCipher, order_no: str, codes: list[str],
                           note: str, actor: str, now: dt.datetime | None = None, scope: Scope = PLATFORM) -> Order:
    """Deliver a paid manual order: store `codes` (one per entry) for it, move it to delivered and tell the
    buyer, in one transaction. A code the shop already holds is refused (nothing is delivered twice)."""
    now = now or utcnow()
    codes = [code.strip() for code in codes if code.strip()]
    note = note.strip()
    if not codes and not note:
        raise ManualDeliveryInvalid("give the codes to deliver, or a note saying what was done")
    order = await orders_service.get_order(session=session, order_no=order_no, scope=scope)
    order = await orders_service.lock_order(session=session, order_id=order.id)  # one delivery, however many clicks
    if not can_deliver_manually(order):
        raise NotManuallyDeliverable(
            f"order {order.order_no} is a {order.delivery_type} order in status {order.status.value}; only paid "
            "manual-delivery orders are delivered by hand", order_status=order.status.value)
    if await refunds_service.full_refund_pending(session=session, order=order):
        # Its refund covers all it paid (on its way back, or refused and not withdrawn): delivering would give
        # the buyer the goods and the money. Withdrawing the refund first puts the order back in the queue.
        raise NotManuallyDeliverable(f"order {order.order_no} is being refunded in full; withdraw its refund "
                                     "before delivering it", order_status=order.status.value)
    if len(codes) > order.quantity:
        raise ManualDeliveryInvalid(f"the order is for {order.quantity}: give at most that many codes "
                                    "(one line per unit; a card number and password go on one line)")
    # A manual order holds no stock of its own; anything it holds goes back on sale, and the buyer gets exactly
    # the codes typed here.
    await inventory_service.release_card_keys(session=session, order_id=order.id)
    if codes:
        _, stored, duplicates = await inventory_service.receive_supplier_codes(
            session=session, cipher=cipher, sku_id=order.sku_id, merchant_id=order.merchant_id, order_id=order.id,
            codes=[(code, None) for code in codes], source_name=f"manual:{order.order_no}", imported_by=actor,
            now=now)
        if duplicates:
            raise ManualDeliveryInvalid(f"{duplicates} of these codes are already in the shop (or given twice); "
                                        "nothing was delivered", duplicates=duplicates)
        await inventory_service.deliver_card_keys(session=session, sku_id=order.sku_id, order_id=order.id,
                                                  quantity=stored, now=now)
    if note:
        order.status_reason = f"delivered by hand: {note}"[:500]
    await orders_service.mark_fulfilled(session=session, order=order, now=now)
    return order


async def awaiting_manual_delivery(*, session: AsyncSession, scope: Scope = PLATFORM, limit: int = 200) -> list[Order]:
    """The manual-delivery queue (待发货): paid manual orders in the scope, the longest waiting first."""
    return list((await session.scalars(
        select(Order).where(Order.status == OrderStatus.PAID, Order.delivery_type == DeliveryType.MANUAL.value,
                            scope.where(Order.merchant_id))
        .order_by(Order.paid_at, Order.id).limit(limit))).all())
