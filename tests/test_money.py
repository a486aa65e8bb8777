"""Money is integer minor units; formatting and parsing are exact (property tests)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from quanyi.money import MAX_AMOUNT_CENTS, InvalidAmount, format_money, line_total, parse_amount

cents = st.integers(min_value=0, max_value=MAX_AMOUNT_CENTS)


@given(cents, st.sampled_from(["CNY", "USD", "EUR", "HKD", "JPY"]))
def test_format_then_parse_is_the_identity(amount, currency):
    text = format_money(amount, currency)
    numeric = text.lstrip("¥$€HKJP")
    assert parse_amount(numeric, currency) == amount


@given(st.integers(min_value=0, max_value=10**7), st.integers(min_value=1, max_value=1000))
def test_line_total_is_exact_multiplication(price, quantity):
    if price * quantity > MAX_AMOUNT_CENTS:
        with pytest.raises(InvalidAmount):
            line_total(price, quantity)
    else:
        assert line_total(price, quantity) == price * quantity


@given(st.decimals(min_value=0, max_value=10**6, places=3, allow_nan=False, allow_infinity=False))
def test_parse_refuses_fractions_of_a_cent(value):
    text = f"{value:.3f}"
    if text.endswith("0"):
        assert parse_amount(text, "CNY") == int(value * 100)
    else:
        with pytest.raises(InvalidAmount):
            parse_amount(text, "CNY")


def test_formatting_examples():
    assert format_money(1980, "CNY") == "¥19.80"
    assert format_money(123456789, "CNY") == "¥1,234,567.89"
    assert format_money(-5, "USD") == "-$0.05"
    assert format_money(500, "JPY") == "JP¥500"


@pytest.mark.parametrize("text", ["", "abc", "-1", "+1", "1e3", "1.2.3", "NaN", "١٢"])
def test_parse_rejects_non_amounts(text):
    with pytest.raises(InvalidAmount):
        parse_amount(text, "CNY")


def test_unknown_currency_is_refused():
    with pytest.raises(InvalidAmount):
        format_money(1, "XYZ")
