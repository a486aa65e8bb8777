"""The price arithmetic's rules hold for every amount (Hypothesis): steps add up, rounding is half-up per line,
no discount takes the payable below the floor, and refunds of a discounted order's keys add up to what was paid."""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from quanyi.orders.state import OrderStatus
from quanyi.pricing.arithmetic import (
    MIN_PAYABLE_CENTS,
    CouponDiscount,
    build_breakdown,
    capped_discount,
    payable_floor,
    percent_of,
)
from quanyi.refunds.policy import RefundSituation, plan_refund

cents = st.integers(min_value=0, max_value=10_000_000)
rates = st.integers(min_value=0, max_value=10_000)


@given(cents, rates)
def test_percent_of_rounds_half_up_to_the_cent(amount, bps):
    exact = Fraction(amount * bps, 10_000)
    result = percent_of(amount, bps)
    assert result - Fraction(1, 2) <= exact < result + Fraction(1, 2)
    assert 0 <= result <= amount


def test_percent_of_examples():
    assert percent_of(333, 1500) == 50  # 49.95 -> 50
    assert percent_of(330, 1500) == 50  # 49.5 -> 50 (half-up)
    assert percent_of(329, 1500) == 49  # 49.35 -> 49
    with pytest.raises(ValueError):
        percent_of(-1, 100)


@given(wanted=cents, remaining=cents, floor=st.integers(min_value=0, max_value=1))
def test_a_capped_discount_never_goes_below_the_floor(wanted, remaining, floor):
    granted = capped_discount(wanted, remaining, floor)
    assert 0 <= granted <= wanted
    assert remaining - granted >= min(floor, remaining)


@st.composite
def priced_lines(draw):
    unit = draw(st.integers(min_value=0, max_value=100_000))
    quantity = draw(st.integers(min_value=1, max_value=1000))
    member = draw(st.integers(min_value=min(unit, 1), max_value=unit))
    floor = payable_floor(unit * quantity)
    remaining = member * quantity
    coupons = []
    for i in range(draw(st.integers(min_value=0, max_value=3))):
        wanted = draw(st.one_of(cents, st.builds(percent_of, st.just(remaining), rates)))
        amount = capped_discount(wanted, remaining, floor)
        remaining -= amount
        coupons.append(CouponDiscount(coupon_id=i + 1, name=f"c{i}", kind="amount_off", amount_cents=amount))
    points_discount = capped_discount(draw(cents), remaining, floor)
    return dict(currency="CNY", quantity=quantity, price_source="list", unit_price_cents=unit,
                member_unit_price_cents=member, coupons=tuple(coupons), points_used=points_discount * 100,
                points_discount_cents=points_discount)


@given(priced_lines())
def test_the_steps_add_up_and_never_go_below_the_floor(line):
    b = build_breakdown(**line)
    assert b.list_total_cents == b.unit_price_cents * b.quantity
    assert b.list_total_cents - b.member_discount_cents == b.subtotal_cents
    assert (b.subtotal_cents - b.coupon_discount_cents - b.points_discount_cents) == b.payable_cents
    assert b.payable_cents >= min(MIN_PAYABLE_CENTS, b.list_total_cents)
    assert min(b.member_discount_cents, b.coupon_discount_cents, b.points_discount_cents) >= 0
    assert b.as_dict()["payable_cents"] == b.payable_cents


def test_a_breakdown_that_breaks_the_rules_is_refused():
    base = dict(currency="CNY", quantity=2, price_source="list", unit_price_cents=500)
    with pytest.raises(ValueError):  # member price above the unit price
        build_breakdown(**base, member_unit_price_cents=600)
    with pytest.raises(ValueError):  # free by coupon
        build_breakdown(**base, coupons=(CouponDiscount(1, "all", "amount_off", 1000),))
    with pytest.raises(ValueError):  # negative discount
        build_breakdown(**base, points_discount_cents=-1)
    assert build_breakdown(**base, coupons=(CouponDiscount(1, "most", "amount_off", 999),)).payable_cents == 1
    assert build_breakdown(**{**base, "unit_price_cents": 0}).payable_cents == 0  # free to begin with


@given(total=st.integers(min_value=1, max_value=10_000_000), quantity=st.integers(min_value=1, max_value=50),
       data=st.data())
def test_taking_back_every_key_of_a_discounted_order_refunds_exactly_what_was_paid(total, quantity, data):
    unit = -(-total // quantity) + data.draw(st.integers(min_value=0, max_value=1000))  # list price >= paid share
    held, refunded = quantity, 0
    while held:
        wanted = data.draw(st.integers(min_value=1, max_value=held))
        before = quantity - held
        if total * (before + wanted) // quantity == total * before // quantity:
            wanted = held  # those keys' share is 0 cents (refused); the last key carries the remainder
        plan = plan_refund(RefundSituation(
            order_status=OrderStatus.DELIVERED, delivery_type="card_key", unit_price_cents=unit,
            payment_amount_cents=total, committed_cents=refunded, duplicate_payment=False, held_keys=held,
            unrevealed_keys=held, order_quantity=quantity, order_total_cents=total), amount_cents=None,
            quantity=wanted)
        assert plan.amount_cents <= unit * wanted
        refunded += plan.amount_cents
        held -= wanted
    assert refunded == total
