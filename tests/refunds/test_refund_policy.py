"""The refund rules (plan_refund) on their own, and the refund arithmetic as a property:
whatever sequence of refunds is asked for, money back never exceeds money paid."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from quanyi.orders import service as orders_service
from quanyi.orders.models import Order
from quanyi.orders.state import OrderStatus
from quanyi.refunds.policy import (
    InvalidRefund,
    RefundExceedsPayment,
    RefundNotAllowed,
    RefundPlan,
    RefundSituation,
    plan_refund,
)

PENDING = RefundSituation(order_status=OrderStatus.REFUND_PENDING, delivery_type="card_key", unit_price_cents=1980,
                          payment_amount_cents=3960, committed_cents=0, duplicate_payment=False)
DELIVERED = RefundSituation(order_status=OrderStatus.DELIVERED, delivery_type="card_key", unit_price_cents=1000,
                            payment_amount_cents=5000, committed_cents=0, duplicate_payment=False, held_keys=5,
                            unrevealed_keys=3)


def test_undelivered_orders_refund_by_amount_defaulting_to_all_that_is_left():
    assert plan_refund(PENDING, amount_cents=None, quantity=None) == RefundPlan(3960, 0, False)
    assert plan_refund(PENDING, amount_cents=100, quantity=None) == RefundPlan(100, 0, False)
    left = dataclasses.replace(PENDING, committed_cents=3000)
    assert plan_refund(left, amount_cents=None, quantity=None).amount_cents == 960
    paid = dataclasses.replace(PENDING, order_status=OrderStatus.PAID)
    assert plan_refund(paid, amount_cents=5, quantity=None).amount_cents == 5


@pytest.mark.parametrize(("amount", "quantity", "error"), [
    (1, 1, InvalidRefund), (0, None, InvalidRefund), (-5, None, InvalidRefund), (None, 0, InvalidRefund),
    (None, 1, InvalidRefund),  # nothing was delivered: refund an amount
    (3961, None, RefundExceedsPayment),
])
def test_malformed_or_excessive_amounts_are_refused(amount, quantity, error):
    with pytest.raises(error):
        plan_refund(PENDING, amount_cents=amount, quantity=quantity)


def test_a_fully_refunded_payment_refunds_nothing_more():
    with pytest.raises(RefundExceedsPayment):
        plan_refund(dataclasses.replace(PENDING, committed_cents=3960), amount_cents=1, quantity=None)


def test_delivered_orders_refund_unrevealed_keys_at_unit_price():
    assert plan_refund(DELIVERED, amount_cents=None, quantity=2) == RefundPlan(2000, 2, False)
    assert plan_refund(DELIVERED, amount_cents=None, quantity=3) == RefundPlan(3000, 3, False)
    with pytest.raises(RefundNotAllowed, match="only 3 of the buyer's 5"):
        plan_refund(DELIVERED, amount_cents=None, quantity=4)
    with pytest.raises(RefundNotAllowed, match="only 3"):  # default "all keys" includes revealed ones
        plan_refund(DELIVERED, amount_cents=None, quantity=None)
    with pytest.raises(InvalidRefund, match="quantity"):
        plan_refund(DELIVERED, amount_cents=2000, quantity=None)
    with pytest.raises(RefundNotAllowed, match="holds 5"):
        plan_refund(DELIVERED, amount_cents=None, quantity=6)


def test_revealed_keys_are_refundable_only_with_the_setting():
    allowed = dataclasses.replace(DELIVERED, refund_revealed_keys=True)
    assert plan_refund(allowed, amount_cents=None, quantity=None) == RefundPlan(5000, 5, True)
    gone = dataclasses.replace(DELIVERED, held_keys=0, unrevealed_keys=0, refund_revealed_keys=True)
    with pytest.raises(RefundNotAllowed, match="no card keys"):
        plan_refund(gone, amount_cents=None, quantity=None)


@pytest.mark.parametrize("status", [OrderStatus.PENDING_PAYMENT, OrderStatus.CANCELLED, OrderStatus.REFUNDED])
def test_orders_without_money_to_give_back_are_not_refundable(status):
    with pytest.raises(RefundNotAllowed):
        plan_refund(dataclasses.replace(PENDING, order_status=status), amount_cents=None, quantity=None)


def test_duplicate_payments_refund_in_full_whatever_the_order_status():
    duplicate = dataclasses.replace(DELIVERED, duplicate_payment=True, payment_amount_cents=5000)
    assert plan_refund(duplicate, amount_cents=None, quantity=None) == RefundPlan(5000, 0, False)
    with pytest.raises(InvalidRefund):
        plan_refund(duplicate, amount_cents=None, quantity=1)


class _Session:
    """Collects what apply_refund adds (order events); the arithmetic is what is under test."""

    def __init__(self) -> None:
        self.added: list[object] = []

    def add(self, obj: object) -> None:
        self.added.append(obj)


_request = st.one_of(st.tuples(st.just("amount"), st.integers(min_value=-5, max_value=6000)),
                     st.tuples(st.just("quantity"), st.integers(min_value=0, max_value=7)),
                     st.tuples(st.just("all"), st.none()))


@hsettings(max_examples=300, deadline=None)
@given(unit=st.integers(min_value=1, max_value=2000), quantity=st.integers(min_value=1, max_value=6),
       delivered=st.booleans(), unrevealed=st.integers(min_value=0, max_value=6), revealed_ok=st.booleans(),
       requests=st.lists(_request, max_size=12), fail_mask=st.lists(st.booleans(), min_size=12, max_size=12))
async def test_refunds_never_exceed_what_was_paid(unit, quantity, delivered, unrevealed, revealed_ok, requests,
                                                   fail_mask):
    """Plan refunds one after another (some fail at the gateway and free their amount again), apply the
    successful ones to the order: refunded_cents equals their sum, never exceeds the total, and the order
    is `refunded` exactly when all of it went back."""
    total = unit * quantity
    status = OrderStatus.DELIVERED if delivered else OrderStatus.REFUND_PENDING
    order = Order(order_no="Q1", status=status, unit_price_cents=unit, quantity=quantity, total_cents=total,
                  refunded_cents=0, id=1)
    held, hidden = (quantity, min(unrevealed, quantity)) if delivered else (0, 0)
    committed = succeeded = 0
    session = _Session()
    for (kind, value), fails in zip(requests, fail_mask, strict=False):
        situation = RefundSituation(order_status=order.status, delivery_type="card_key", unit_price_cents=unit,
                                    payment_amount_cents=total, committed_cents=committed, duplicate_payment=False,
                                    held_keys=held, unrevealed_keys=hidden, refund_revealed_keys=revealed_ok)
        try:
            plan = plan_refund(situation, amount_cents=value if kind == "amount" else None,
                               quantity=value if kind == "quantity" else None)
        except (InvalidRefund, RefundNotAllowed, RefundExceedsPayment):
            continue
        assert 0 < plan.amount_cents <= total - committed
        if delivered:
            assert plan.amount_cents == plan.quantity * unit and plan.quantity <= (held if revealed_ok else hidden)
            # Keys are withdrawn at request time and stay withdrawn even if the gateway refuses.
            from_hidden = min(plan.quantity, hidden)
            held, hidden = held - plan.quantity, hidden - from_hidden
        if fails:
            continue  # a failed refund commits nothing
        committed += plan.amount_cents
        succeeded += plan.amount_cents
        await orders_service.apply_refund(session=session, order=order, amount_cents=plan.amount_cents,  # type: ignore[arg-type]
                                          reason="test")
        assert order.refunded_cents == succeeded <= total
    assert order.refunded_cents == succeeded <= total
    assert (order.status is OrderStatus.REFUNDED) == (succeeded == total)
