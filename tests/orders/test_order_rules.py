"""Unit rules of orders: the state machine, order numbers, contacts."""

from __future__ import annotations

import itertools

import pytest

from quanyi.orders.contact import mask_contact, normalize_contact
from quanyi.orders.numbers import ORDER_NO_PATTERN, new_order_no, normalize_order_no
from quanyi.orders.state import TRANSITIONS, IllegalTransition, OrderStatus, check_transition
from quanyi.shoptime import shop_zone

ALLOWED = {
    ("pending_payment", "paid"), ("pending_payment", "cancelled"), ("cancelled", "paid"),
    ("paid", "delivered"), ("paid", "refund_pending"),
    ("refund_pending", "refunded"), ("paid", "refunded"), ("delivered", "refunded"),
    # risk control review queue
    ("paid", "under_review"), ("under_review", "paid"), ("under_review", "refund_pending"),
}


def test_the_transition_table_is_exactly_the_documented_one():
    assert {(a.value, b.value) for a, b in TRANSITIONS} == ALLOWED


@pytest.mark.parametrize(("current", "target"), list(itertools.product(OrderStatus, OrderStatus)))
def test_every_other_transition_raises(current, target):
    if (current.value, target.value) in ALLOWED:
        assert check_transition(current, target)
    else:
        with pytest.raises(IllegalTransition):
            check_transition(current, target)


def test_delivered_and_refund_pending_only_end_refunded_and_refunded_is_final():
    for settled in (OrderStatus.DELIVERED, OrderStatus.REFUND_PENDING):
        assert [t for (f, t) in TRANSITIONS if f is settled] == [OrderStatus.REFUNDED]
    assert not [t for (f, t) in TRANSITIONS if f is OrderStatus.REFUNDED]


def test_order_numbers_are_well_formed_and_unpredictable():
    numbers = [new_order_no(zone=shop_zone()) for _ in range(20_000)]
    assert all(ORDER_NO_PATTERN.match(n) for n in numbers)
    assert len(set(numbers)) == len(numbers)
    assert len({n[6] for n in numbers}) == 32  # every position draws from the whole alphabet


@pytest.mark.parametrize(("typed", "expected"), [
    ("261125K7M2Q9XD", "261125K7M2Q9XD"),
    (" 261125-k7m2-q9xd ", "261125K7M2Q9XD"),
    ("261125K7M2Q9XO", "261125K7M2Q9X0"),  # O typed for zero
    ("26112SK7M2Q9XD", None),
    ("261125K7M2Q9X", None),
    ("261125K7M2Q9XU", None),  # U is not in the alphabet
    ("x" * 100, None),
])
def test_order_number_normalization(typed, expected):
    assert normalize_order_no(typed) == expected


@pytest.mark.parametrize(("typed", "expected"), [
    ("Buyer@Example.COM", ("email", "buyer@example.com")),
    ("１３８００１３８０００", ("phone", "13800138000")),
    ("+86 138-0013-8000", ("phone", "13800138000")),
    ("0086 13800138000", ("phone", "13800138000")),
    ("+49 151 12345678", ("phone", "+4915112345678")),
])
def test_contacts_are_normalized(typed, expected):
    assert normalize_contact(typed) == expected


@pytest.mark.parametrize("typed", ["", "   ", "abc", "12800138000", "a@b", "a@@b.com", "+1234"])
def test_bad_contacts_are_refused(typed):
    with pytest.raises(ValueError):
        normalize_contact(typed)


def test_contacts_are_masked_for_display():
    assert mask_contact("email", "buyer@example.com") == "b***@example.com"
    assert mask_contact("phone", "13800138000") == "138****8000"
