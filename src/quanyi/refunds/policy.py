"""What may be refunded (退款规则): the one function that says yes (and how much) or no, and why.

Pure: it reads a snapshot of the order, the payment and its keys, taken under the order row lock by
the service, and touches nothing, so every rule is unit-tested on its own.
"""

from __future__ import annotations

from dataclasses import dataclass

from quanyi.errors import Conflict, InvalidInput
from quanyi.orders.state import OrderStatus

__all__ = ["RefundSituation", "RefundPlan", "RefundNotAllowed", "RefundExceedsPayment", "InvalidRefund",
           "plan_refund", "REFUNDABLE_UNDELIVERED"]

# Orders holding the buyer's money with nothing (yet) delivered: refundable in whole or in part, by amount.
# HOOK(direct recharge, 直充): direct recharges do not exist yet. When suppliers/ adds them, the order
# status of a definitively failed recharge joins this set (the buyer got nothing, so all of it is refundable).
REFUNDABLE_UNDELIVERED = frozenset({OrderStatus.PAID, OrderStatus.REFUND_PENDING})


class RefundNotAllowed(Conflict):
    code = "refund_not_allowed"


class RefundExceedsPayment(Conflict):
    code = "refund_exceeds_payment"


class InvalidRefund(InvalidInput):
    code = "invalid_refund"


@dataclass(frozen=True, slots=True)
class RefundSituation:
    order_status: OrderStatus
    delivery_type: str  # catalog DeliveryType value
    unit_price_cents: int
    payment_amount_cents: int
    # Sum of this payment's refunds that are not failed (requested, processing, succeeded): money that
    # has gone back or is on its way. A new refund may only use what is left.
    committed_cents: int
    duplicate_payment: bool  # money that arrived twice for one order: refundable in full on its own
    held_keys: int = 0  # sold keys the buyer still holds (delivered card-key orders)
    unrevealed_keys: int = 0  # of those, never shown to the buyer
    refund_revealed_keys: bool = False  # setting: revealed keys may be taken back and refunded too
    # The order's quantity and payable: a discounted order (coupon, points, member price) refunds each key at its
    # share of what was paid, not at its unit price (see `_keys_value`). 0 = value keys at unit_price_cents.
    order_quantity: int = 0
    order_total_cents: int = 0


@dataclass(frozen=True, slots=True)
class RefundPlan:
    amount_cents: int
    quantity: int  # card keys to withdraw
    include_revealed: bool


def plan_refund(situation: RefundSituation, *, amount_cents: int | None, quantity: int | None) -> RefundPlan:
    """Decide a refund: amount for undelivered orders and duplicate payments (default: all that is left),
    quantity of card keys for delivered ones (k keys for k x unit price; default: every key that may go).
    Raises InvalidRefund (malformed), RefundNotAllowed (rule says no), RefundExceedsPayment (too much)."""
    s = situation
    if amount_cents is not None and quantity is not None:
        raise InvalidRefund("give either amount_cents or quantity, not both")
    if amount_cents is not None and amount_cents <= 0:
        raise InvalidRefund("amount_cents must be a positive number of cents")
    if quantity is not None and quantity <= 0:
        raise InvalidRefund("quantity must be at least 1")
    left = s.payment_amount_cents - s.committed_cents
    if left <= 0:
        raise RefundExceedsPayment("this payment has already been refunded in full", refundable_cents=0)

    if s.duplicate_payment:
        if quantity is not None:
            raise InvalidRefund("a duplicate payment delivered nothing; refund an amount")
        return _by_amount(amount_cents if amount_cents is not None else left, left)

    if s.order_status in REFUNDABLE_UNDELIVERED:
        if quantity is not None:
            raise InvalidRefund("nothing was delivered for this order; refund an amount")
        return _by_amount(amount_cents if amount_cents is not None else left, left)

    if s.order_status is OrderStatus.DELIVERED and s.delivery_type == "card_key":
        if amount_cents is not None:
            raise InvalidRefund("a delivered card-key order is refunded by the quantity of keys taken back")
        withdrawable = s.held_keys if s.refund_revealed_keys else s.unrevealed_keys
        wanted = quantity if quantity is not None else s.held_keys
        if wanted > s.held_keys:
            raise RefundNotAllowed(f"the buyer holds {s.held_keys} card keys of this order, not {wanted}",
                                   held_keys=s.held_keys)
        if wanted > withdrawable:
            raise RefundNotAllowed(
                f"only {withdrawable} of the buyer's {s.held_keys} card keys were never revealed; revealed keys "
                "are not refundable (setting refund_revealed_keys)", withdrawable_keys=withdrawable)
        if wanted == 0:
            raise RefundNotAllowed("the buyer holds no card keys of this order any more")
        amount = _keys_value(s, wanted)
        if amount == 0:
            raise RefundNotAllowed(f"{wanted} keys of this discounted order were paid nothing; take back more keys",
                                   held_keys=s.held_keys)
        if amount > left:
            raise RefundExceedsPayment(f"{wanted} keys are worth {amount} cents but only {left} are left to refund",
                                       refundable_cents=left)
        return RefundPlan(amount_cents=amount, quantity=wanted, include_revealed=s.refund_revealed_keys)

    raise RefundNotAllowed(f"an order that is {s.order_status.value} cannot be refunded",
                           order_status=s.order_status.value)


def _by_amount(amount: int, left: int) -> RefundPlan:
    if amount > left:
        raise RefundExceedsPayment(f"refund of {amount} cents exceeds the {left} cents left to refund",
                                   refundable_cents=left)
    return RefundPlan(amount_cents=amount, quantity=0, include_revealed=False)


def _keys_value(s: RefundSituation, wanted: int) -> int:
    """What `wanted` more keys of a delivered order are worth: their share of the order's payable, so that taking
    back every key (in any number of refunds) refunds exactly what was paid. The keys already taken back are
    the ones the buyer no longer holds; shares are floored and the last key gets the remainder."""
    if s.order_quantity <= 0 or s.order_total_cents <= 0:
        return wanted * s.unit_price_cents
    before = s.order_quantity - s.held_keys
    total, qty = s.order_total_cents, s.order_quantity
    return total * (before + wanted) // qty - total * before // qty
