"""Orders: the status machine in motion, delivery on payment, expiry, lookup without an account.

Checkout lives in `orders/checkout.py` and is re-exported here.
Lookup without an account lives in `orders/lookup.py` and is re-exported here.

Where does a paid order get its card keys? `apply_payment` below, in the same transaction that marks
it paid (the usual flash-sale order takes the express lane of the same rules, payments/express.py); the
buyer's delivery message and the merchant's alert follow from the payment's deferred row (ledger.deferred).
Every function that changes an order takes its row lock first (FOR UPDATE on PostgreSQL, the writer lock on
SQLite), so a payment, a cancellation and the expiry sweeper never interleave.
"""

from __future__ import annotations

import datetime as dt
import enum
import logging

from sqlalchemy import ScalarSelect, select
from sqlalchemy.ext.asyncio import AsyncSession

from quanyi.catalog.models import DeliveryType
from quanyi.coupons import abuse as coupon_abuse
from quanyi.db import utcnow
from quanyi.errors import Conflict, DomainError, NotFound
from quanyi.inventory import picking, shared_codes
from quanyi.inventory import service as inventory_service
from quanyi.inventory.crypto import CardKeyCipher
from quanyi.inventory.schemas import RevealedKey
from quanyi.ledger import service as ledger_service
from quanyi.money import format_money
from quanyi.notifications import service as notifications_service
from quanyi.orders.checkout import PickNotOffered, RechargeAccountInvalid, create_order
from quanyi.orders.contact import mask_contact
from quanyi.orders.lookup import LookupFailed, LookupLimits, LookupRateLimited, hash_query_password, lookup_order
from quanyi.orders.member_orders import attach_guest_orders, count_member_orders, get_member_order, member_orders
from quanyi.orders.models import Order, OrderEvent
from quanyi.orders.numbers import normalize_order_no
from quanyi.orders.recharge_account import mask_recharge_account
from quanyi.orders.schemas import FulfilmentProgress, OrderRead
from quanyi.orders.state import OrderStatus, check_transition
from quanyi.pricing import service as pricing_service
from quanyi.risk import payment_stage as risk_payment
from quanyi.scope import PLATFORM, Scope
from quanyi.suppliers import service as suppliers_service

__all__ = [
    "OrderNotFound", "OrderNotPayable", "RechargeAccountInvalid", "OrderNotDelivered", "PickNotOffered",
    "LookupFailed", "LookupRateLimited", "PaymentEffect",
    "LookupLimits", "hash_query_password", "create_order", "get_order", "get_order_by_id", "lock_order",
    "lock_order_by_no", "share_order_lock",
    "cancel_order", "expire_due_orders", "apply_payment", "apply_refund", "lookup_order", "describe_order",
    "reveal_order_keys", "mark_fulfilled", "mark_unfulfillable", "deliver_paid_order", "release_held_order",
    "refuse_held_order", "attach_guest_orders", "member_orders", "count_member_orders", "get_member_order",
]

logger = logging.getLogger(__name__)


class OrderNotFound(NotFound):
    code = "order_not_found"


class OrderNotPayable(DomainError):
    code = "order_not_payable"


class OrderNotDelivered(Conflict):
    code = "order_not_delivered"


class PaymentEffect(enum.StrEnum):
    DELIVERED = "delivered"
    REFUND_PENDING = "refund_pending"
    ALREADY_PAID = "already_paid"
    AWAITING_FULFILMENT = "awaiting_fulfilment"
    AWAITING_MANUAL_DELIVERY = "awaiting_manual_delivery"  # 手动发货: stays paid until staff deliver it
    UNDER_REVIEW = "under_review"


# ---------------------------------------------------------------- transitions

def _move(
    session: AsyncSession, order: Order, target: OrderStatus, now: dt.datetime, reason: str | None = None
) -> None:
    allowed_because = check_transition(order.status, target)
    session.add(
        OrderEvent(order_id=order.id, from_status=order.status.value, to_status=target.value,
                   reason=(reason or allowed_because)[:500], created_at=now)
    )
    order.status = target
    order.updated_at = now
    if reason:
        order.status_reason = reason[:500]


async def get_order(*, session: AsyncSession, order_no: str, scope: Scope = PLATFORM) -> Order:
    """An order by number; admin routes pass the caller's scope (another merchant's order is not found)."""
    canonical = normalize_order_no(order_no)
    order = None
    if canonical is not None:
        order = await session.scalar(select(Order).where(Order.order_no == canonical))
    if order is None or not scope.sees(order.merchant_id):
        raise OrderNotFound("order not found")
    return order


async def get_order_by_id(*, session: AsyncSession, order_id: int) -> Order:
    order = await session.get(Order, order_id)
    if order is None:
        raise OrderNotFound("order not found")
    return order


async def lock_order(*, session: AsyncSession, order_id: int | ScalarSelect[int]) -> Order:
    """Load an order holding its row lock, with fresh values (another transaction may just have committed).
    `order_id` may be a scalar subquery (the order a payment is for): found and locked in one statement."""
    order = await session.scalar(
        select(Order).where(Order.id == order_id).with_for_update().execution_options(populate_existing=True)
    )
    if order is None:
        raise OrderNotFound("order not found")
    return order


async def share_order_lock(*, session: AsyncSession, order_id: int | ScalarSelect[int]) -> OrderStatus | None:
    """Hold an order row FOR KEY SHARE until the transaction ends, before recording a reveal of its keys (the audit
    row's foreign key takes the same lock, but only after the keys were read, and after locking the key first: a
    deadlock with a refund holding the order). Waits for a writer holding the order (FOR UPDATE), never for another
    reader. The order's status as committed; None when there is no such order (a key sold to none)."""
    return await session.scalar(select(Order.status).where(Order.id == order_id)
                                .with_for_update(read=True, key_share=True))


async def lock_order_by_no(*, session: AsyncSession, order_no: str) -> Order:
    """`lock_order` for an order number: found and locked in one statement."""
    canonical = normalize_order_no(order_no)
    if canonical is None:
        raise OrderNotFound("order not found")
    return await lock_order(session=session, order_id=select(Order.id).where(Order.order_no == canonical)
                            .scalar_subquery())


async def describe_order(*, session: AsyncSession, order: Order) -> OrderRead:
    # Only delivered orders hold keys; skip the query on the checkout path.
    delivered = (await inventory_service.count_order_keys(session=session, order_id=order.id)
                 if order.status is OrderStatus.DELIVERED else 0)
    return OrderRead(
        order_no=order.order_no, status=order.status, product_id=order.product_id,
        product_name=order.product_name, sku_name=order.sku_name, quantity=order.quantity,
        unit_price_cents=order.unit_price_cents, total_cents=order.total_cents, currency=order.currency,
        list_total_cents=order.unit_price_cents * order.quantity, member_discount_cents=order.member_discount_cents,
        coupon_discount_cents=order.coupon_discount_cents, points_used=order.points_used,
        points_discount_cents=order.points_discount_cents,
        total_display=format_money(order.total_cents, order.currency),
        contact_masked=mask_contact(order.contact_kind, order.contact), created_at=order.created_at,
        expires_at=order.expires_at, paid_at=order.paid_at, delivered_at=order.delivered_at,
        delivered_keys=delivered, status_reason=order.status_reason, refunded_cents=order.refunded_cents,
        refunded_display=format_money(order.refunded_cents, order.currency),
        delivery_type=order.delivery_type,
        recharge_account_masked=mask_recharge_account(order.recharge_account) if order.recharge_account else None,
        picked_card_key_label=(await picking.label_of(session=session, card_key_id=order.picked_card_key_id)
                               if order.picked_card_key_id is not None else None),
        fulfilment=await _fulfilment_progress(session, order),
    )


async def _fulfilment_progress(session: AsyncSession, order: Order) -> FulfilmentProgress | None:
    if order.status in (OrderStatus.PENDING_PAYMENT, OrderStatus.CANCELLED):
        return None  # nothing bought before payment; skip the query on the checkout path
    progress = await suppliers_service.fulfilment_progress(session=session, order_id=order.id)
    return FulfilmentProgress(**progress) if progress is not None else None


# ---------------------------------------------------------------- cancellation and expiry

async def _cancel_locked(session: AsyncSession, order: Order, reason: str, now: dt.datetime) -> None:
    _move(session, order, OrderStatus.CANCELLED, now, reason)
    order.cancelled_at = now
    await inventory_service.release_card_keys(session=session, order_id=order.id)
    await pricing_service.release_order_pricing(session=session, order=order, reason=reason, now=now)


async def cancel_order(*, session: AsyncSession, order_id: int, reason: str, now: dt.datetime | None = None) -> Order:
    """Cancel an unpaid order and put its reserved stock back on sale."""
    now = now or utcnow()
    order = await lock_order(session=session, order_id=order_id)
    await _cancel_locked(session, order, reason, now)
    return order


async def expire_due_orders(*, session: AsyncSession, now: dt.datetime | None = None, limit: int = 200) -> int:
    """The sweeper: cancel unpaid orders whose reservation ran out and release their stock."""
    now = now or utcnow()
    # SKIP LOCKED: several sweepers (one per process) share the work; an order being paid right now is
    # locked by its payment and is simply left alone this round.
    due = (
        await session.scalars(
            select(Order)
            .where(Order.status == OrderStatus.PENDING_PAYMENT, Order.expires_at <= now)
            .order_by(Order.expires_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
            .execution_options(populate_existing=True)
        )
    ).all()
    for order in due:
        await _cancel_locked(session, order, "reservation expired", now)
    return len(due)


# ---------------------------------------------------------------- payment and delivery

async def apply_payment(*, session: AsyncSession, order: Order, now: dt.datetime | None = None,
                        payer_account: str | None = None, defer_ledger: bool = False) -> PaymentEffect:
    """Money for this order is confirmed: mark it paid and deliver in the same transaction.
    `payer_account`: who paid as the gateway names it, when known (risk control's per-payer rules).
    `defer_ledger`: the caller records the payment with `ledger.defer_payment_postings`, which also posts
    what the order's new status means: delivery here then posts nothing itself, and the delivery messages are
    enqueued by the ledger worker from that same row (ledger.deferred).

    The caller holds the order row lock (`lock_order`). A payment for an order that is already paid
    changes nothing. A payment after expiry still delivers when stock remains; otherwise the order
    waits for a refund: money is never silently dropped.
    """
    now = now or utcnow()
    if order.status not in (OrderStatus.PENDING_PAYMENT, OrderStatus.CANCELLED):
        return PaymentEffect.ALREADY_PAID
    late = order.status is OrderStatus.CANCELLED
    _move(session, order, OrderStatus.PAID, now, "payment arrived after the order was cancelled" if late else None)
    order.paid_at = now
    if not await pricing_service.confirm_order_pricing(session=session, order=order, late=late, now=now):
        # Paid late at a coupon's price, and the coupon is gone meanwhile: refund rather than exceed its count.
        return await _refund_instead(session, order, "coupon no longer available", now, defer_ledger=defer_ledger)
    # ---- risk control (风控): a held order keeps its reserved keys and waits for staff (release_held_order).
    # PostgreSQL: the payer's (buyer's, SKU's) other payments count one after the other from here (advisory locks).
    await risk_payment.lock_counted(session=session, order=order, payer_account=payer_account)
    farming = await coupon_abuse.hold_reason_at_payment(session=session, order=order, payer_account=payer_account)
    held_because = await risk_payment.hold_at_payment(session=session, order=order, now=now,
                                                      payer_account=payer_account) or farming
    if held_because and (refused := await risk_payment.payer_stock_exceeded(session=session, order=order, now=now)):
        # Holding it would lock more stock for a payer that has too much under review already: not held, not
        # delivered; its keys go back on sale and it waits for its refund (money is never silently dropped).
        await inventory_service.release_card_keys(session=session, order_id=order.id)
        _move(session, order, OrderStatus.REFUND_PENDING, now, f"refused by risk control: {refused}")
        if not defer_ledger:
            await ledger_service.record_order_status(session=session, order=order, now=now)
        await notifications_service.on_order_refund_pending(session=session, order=order, reason=refused, now=now)
        return PaymentEffect.REFUND_PENDING
    if held_because:
        _move(session, order, OrderStatus.UNDER_REVIEW, now, f"held by risk control: {held_because}")
        await notifications_service.on_risk_hold(session=session, order=order, reason=held_because, now=now)
        return PaymentEffect.UNDER_REVIEW
    # ---- end risk control
    return await deliver_paid_order(session=session, order=order, now=now, defer_ledger=defer_ledger)


async def deliver_paid_order(*, session: AsyncSession, order: Order, now: dt.datetime | None = None,
                             defer_ledger: bool = False) -> PaymentEffect:
    """Hand over the goods of a PAID order (caller holds the order lock); out of stock -> refund pending.
    `defer_ledger`: see `apply_payment`."""
    now = now or utcnow()
    if order.delivery_type == DeliveryType.MANUAL.value:  # staff deliver it by hand (orders/manual.py)
        await notifications_service.on_awaiting_manual_delivery(session=session, order=order, now=now)
        return PaymentEffect.AWAITING_MANUAL_DELIVERY
    if order.delivery_type not in (DeliveryType.CARD_KEY.value, DeliveryType.SHARED_CODE.value):
        # Direct recharge: a supplier credits the account; the fulfilment worker takes it from here (it
        # moves the order to refund_pending itself if no supplier can do it).
        await suppliers_service.enqueue_fulfilment(session=session, order=order, now=now)
        return PaymentEffect.AWAITING_FULFILMENT
    try:
        if order.delivery_type == DeliveryType.SHARED_CODE.value:  # 循环卡密: its units of the shared code
            await shared_codes.deliver_use(session=session, order_id=order.id, sku_id=order.sku_id,
                                           quantity=order.quantity, now=now)
        elif order.picked_card_key_id is not None:  # 自选卡密: exactly the key paid for, never a substitute
            await picking.deliver_picked_key(session=session, order_id=order.id, sku_id=order.sku_id,
                                             card_key_id=order.picked_card_key_id, now=now)
        else:
            await inventory_service.deliver_card_keys(
                session=session, sku_id=order.sku_id, order_id=order.id, quantity=order.quantity, now=now
            )
    except inventory_service.OutOfStock:
        if order.picked_card_key_id is None and order.delivery_type == DeliveryType.CARD_KEY.value \
                and await suppliers_service.can_fulfil(session=session, sku_id=order.sku_id):
            # Suppliers fill it in real time: the order stays paid (keeping any keys it holds) and the job
            # is written in this same transaction, so a committed payment always has its job.
            await suppliers_service.enqueue_fulfilment(session=session, order=order, now=now)
            return PaymentEffect.AWAITING_FULFILMENT
        return await _refund_instead(session, order, "out of stock", now, defer_ledger=defer_ledger)
    _move(session, order, OrderStatus.DELIVERED, now)
    order.delivered_at = now
    if not defer_ledger:
        await ledger_service.record_order_status(session=session, order=order, now=now)
        await notifications_service.on_order_delivered(session=session, order=order, now=now)
    # else: the ledger worker enqueues the buyer's and the merchant's messages from the payment's deferred row.
    return PaymentEffect.DELIVERED


async def _refund_instead(session: AsyncSession, order: Order, why: str, now: dt.datetime, *,
                          defer_ledger: bool) -> PaymentEffect:
    """A PAID order that cannot be delivered: its keys go back on sale and it waits for a refund."""
    await inventory_service.release_card_keys(session=session, order_id=order.id)
    _move(session, order, OrderStatus.REFUND_PENDING, now, f"paid but {why}: refund required")
    if not defer_ledger:
        await ledger_service.record_order_status(session=session, order=order, now=now)
    await notifications_service.on_order_refund_pending(session=session, order=order, reason=why, now=now)
    logger.warning("order %s paid but could not be delivered (%s): refund required", order.order_no, why)
    return PaymentEffect.REFUND_PENDING


async def mark_fulfilled(*, session: AsyncSession, order: Order, now: dt.datetime | None = None) -> None:
    """A paid order waiting for suppliers got its goods (keys handed over or account credited): delivered,
    and the buyer is told. The caller holds the order row lock."""
    now = now or utcnow()
    _move(session, order, OrderStatus.DELIVERED, now)
    order.delivered_at = now
    await ledger_service.record_order_status(session=session, order=order, now=now)
    await notifications_service.on_order_delivered(session=session, order=order, now=now)


async def mark_unfulfillable(*, session: AsyncSession, order: Order, reason: str,
                             now: dt.datetime | None = None) -> None:
    """No supplier could fill a paid order: it waits for a refund. The caller holds the order row lock and has put
    keys bought for it back on sale, at their cost (suppliers/fulfilment.py)."""
    now = now or utcnow()
    _move(session, order, OrderStatus.REFUND_PENDING, now, f"paid but not delivered: {reason}")
    await ledger_service.record_order_status(session=session, order=order, now=now)
    await notifications_service.on_order_refund_pending(session=session, order=order, reason=reason, now=now)
    logger.warning("order %s paid but no supplier could fill it (%s): refund required", order.order_no, reason)


async def apply_refund(
    *, session: AsyncSession, order: Order, amount_cents: int, reason: str, now: dt.datetime | None = None
) -> None:
    """Money of this order's payment went back to the buyer: raise refunded_cents, and once all of it
    has gone back, the order is refunded. The caller holds the order row lock; the CHECK constraint
    refunded_cents <= total_cents is the last line of defence against refunding more than was paid."""
    now = now or utcnow()
    if amount_cents <= 0 or order.refunded_cents + amount_cents > order.total_cents:
        raise Conflict(f"refunding {amount_cents} would exceed order {order.order_no}'s total "
                       f"({order.refunded_cents} of {order.total_cents} already refunded)")
    order.refunded_cents += amount_cents
    order.updated_at = now
    if order.refunded_cents == order.total_cents and order.status is not OrderStatus.REFUNDED:
        _move(session, order, OrderStatus.REFUNDED, now, reason)
        if order.delivered_at is None:  # all money back before delivery: coupons and points go back too
            await pricing_service.release_order_pricing(session=session, order=order, reason="refunded before delivery",
                                                        now=now, refunded=True)
    await notifications_service.on_order_refunded(session=session, order=order, amount_cents=amount_cents, now=now)


async def reveal_order_keys(
    *, session: AsyncSession, cipher: CardKeyCipher, order: Order, channel: str, ip: str, user_agent: str
) -> list[RevealedKey]:
    """Show a delivered order's card keys to its buyer; each reveal is audited by inventory."""
    # The order before its keys are read (as orders/reveal.py does): a refund holding it makes us wait and then read
    # its keys as it left them; a refund after us waits for our audit rows.
    status = await share_order_lock(session=session, order_id=order.id)
    if status is not OrderStatus.DELIVERED:
        raise OrderNotDelivered("this order has not been delivered", order_status=(status or order.status).value)
    return await inventory_service.reveal_card_keys(
        session=session, cipher=cipher, order_id=order.id, channel=channel, ip=ip, user_agent=user_agent
    )


# ---------------------------------------------------------------- risk review (风控审核)

async def release_held_order(*, session: AsyncSession, order: Order, reason: str,
                             now: dt.datetime | None = None) -> PaymentEffect:
    """Staff approved a held order (caller holds its lock): back to PAID and delivered the usual way.
    An order no longer under review is left alone, so a second approval delivers nothing."""
    now = now or utcnow()
    if order.status is not OrderStatus.UNDER_REVIEW:
        return PaymentEffect.ALREADY_PAID
    _move(session, order, OrderStatus.PAID, now, f"approved by risk review: {reason}")
    return await deliver_paid_order(session=session, order=order, now=now)


async def refuse_held_order(
    *, session: AsyncSession, order: Order, reason: str, now: dt.datetime | None = None
) -> None:
    """Staff rejected a held order (caller holds its lock): release its keys; it waits for its refund."""
    now = now or utcnow()
    _move(session, order, OrderStatus.REFUND_PENDING, now, f"rejected by risk review: {reason}")
    await inventory_service.release_card_keys(session=session, order_id=order.id)
    await ledger_service.record_order_status(session=session, order=order, now=now)
    await notifications_service.on_order_refund_pending(session=session, order=order, reason="rejected by risk review",
                                                        now=now)
