"""The order lifecycle: one table of allowed transitions; anything else raises."""

from __future__ import annotations

import enum

from quanyi.errors import Conflict

__all__ = ["OrderStatus", "TRANSITIONS", "IllegalTransition", "check_transition"]


class OrderStatus(enum.StrEnum):
    PENDING_PAYMENT = "pending_payment"  # 待支付: stock reserved until expires_at
    PAID = "paid"  # 已支付: money confirmed, delivery in progress (same transaction for card keys)
    DELIVERED = "delivered"  # 已发货
    CANCELLED = "cancelled"  # 已取消: expired or cancelled by the buyer; reserved stock released
    REFUND_PENDING = "refund_pending"  # 待退款: paid but could not be delivered
    REFUNDED = "refunded"  # 已退款: the whole amount went back to the buyer (partial refunds keep the status)
    UNDER_REVIEW = "under_review"  # 风控审核中: paid, held by risk control until staff approve or reject


# (from, to) -> why this move exists
TRANSITIONS: dict[tuple[OrderStatus, OrderStatus], str] = {
    (OrderStatus.PENDING_PAYMENT, OrderStatus.PAID): "payment confirmed",
    (OrderStatus.PENDING_PAYMENT, OrderStatus.CANCELLED): "reservation expired or buyer cancelled",
    # Money that arrives after expiry/cancellation is never ignored: deliver if stock remains, else refund.
    (OrderStatus.CANCELLED, OrderStatus.PAID): "payment arrived after the order was cancelled",
    (OrderStatus.PAID, OrderStatus.DELIVERED): "goods handed over",
    (OrderStatus.PAID, OrderStatus.REFUND_PENDING): "paid but could not be delivered",
    # Only once refunded_cents reaches total_cents (the refunds feature decides when money went back).
    (OrderStatus.REFUND_PENDING, OrderStatus.REFUNDED): "refunded in full",
    (OrderStatus.PAID, OrderStatus.REFUNDED): "refunded in full before delivery",
    (OrderStatus.DELIVERED, OrderStatus.REFUNDED): "every card key withdrawn and refunded",
    # Risk control: a held order goes back to PAID when approved (then delivery as usual) or waits for a refund.
    (OrderStatus.PAID, OrderStatus.UNDER_REVIEW): "held by risk control for review",
    (OrderStatus.UNDER_REVIEW, OrderStatus.PAID): "approved by risk review",
    (OrderStatus.UNDER_REVIEW, OrderStatus.REFUND_PENDING): "rejected by risk review: refund required",
}


class IllegalTransition(Conflict):
    code = "illegal_transition"


def check_transition(current: OrderStatus, target: OrderStatus) -> str:
    """Return the reason the move is allowed, or raise IllegalTransition."""
    try:
        return TRANSITIONS[(current, target)]
    except KeyError:
        raise IllegalTransition(
            f"an order cannot go from {current.value} to {target.value}", current=current.value, target=target.value
        ) from None
