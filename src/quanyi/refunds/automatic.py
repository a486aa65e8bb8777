"""Refunds that need no human (自动退款): an order paid from a customer's prepaid balance (a reseller's or an
enterprise's) that cannot be delivered is refunded to that balance at once.

A buyer's card payment waits in refund_pending for the merchant's decision; a balance payment does not need one:
the money goes back to the account it came from, and the reseller was promised by the protocol that a `failed`
order costs it nothing. The refund is an ordinary refund (refund row, audit, ledger postings, the balance
gateway's idempotent refund), requested with a fixed key per order so that any number of loops requesting it
concurrently make one.
"""

from __future__ import annotations

import logging

from sqlalchemy import select

from quanyi.db import Database
from quanyi.errors import DomainError
from quanyi.orders.models import Order
from quanyi.orders.state import OrderStatus
from quanyi.payments.balance import BALANCE_GATEWAY
from quanyi.payments.gateway import GatewayRegistry
from quanyi.payments.models import Payment, PaymentStatus
from quanyi.refunds import service as refunds_service
from quanyi.refunds.models import Refund

__all__ = ["refund_undeliverable_balance_orders"]

logger = logging.getLogger(__name__)


async def refund_undeliverable_balance_orders(*, db: Database, gateways: GatewayRegistry, limit: int = 50) -> int:
    """Request and execute the refund of every balance-paid order waiting in refund_pending with no refund yet.
    Returns how many were refunded."""
    async with db.read_session() as session:
        due = (await session.scalars(
            select(Order.id).join(Payment, Payment.order_id == Order.id)
            .where(Order.status == OrderStatus.REFUND_PENDING, Order.customer_account_id.is_not(None),
                   Payment.gateway == BALANCE_GATEWAY, Payment.status == PaymentStatus.SUCCEEDED,
                   ~select(Refund.id).where(Refund.order_id == Order.id).exists())
            .order_by(Order.id).limit(limit))).all()
    done = 0
    for order_id in due:
        try:
            async with db.transaction() as session:
                refund, created = await refunds_service.request_refund(
                    session=session, order_id=order_id, reason="could not be delivered: back to the prepaid balance",
                    requested_by="system", request_key=f"auto-balance-{order_id}")
                refund_id = refund.id
        except DomainError as exc:  # settled meanwhile (an operator refunded it by hand)
            logger.info("order %s: automatic balance refund not requested: %s", order_id, exc.message)
            continue
        await refunds_service.execute_refund(db=db, gateways=gateways, refund_id=refund_id)
        done += created
    return done
