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


@given(cents, st.sampled_from(["CNY", "USD", "JPY"]))
def test_grouped_and_plain_forms_of_an_amount_parse_the_same(amount, currency):
    grouped = format_money(amount, currency).lstrip("¥$€HKJP")
    plain = grouped.replace(",", "")
    assert parse_amount(grouped, currency) == parse_amount(plain, currency) == amount


@given(st.integers(min_value=1, max_value=999), st.lists(st.integers(min_value=0, max_value=99999), min_size=1,
                                                          max_size=3),
       st.sampled_from(["", ".5", ".50", "."]))
def test_commas_are_refused_unless_they_separate_groups_of_three_digits(head, groups, tail):
    texts = [str(head)] + [str(group) for group in groups]
    text = ",".join(texts) + tail
    proper = all(len(part) == 3 for part in texts[1:])
    if proper and int(text.replace(",", "").split(".")[0]) * 100 > MAX_AMOUNT_CENTS:
        with pytest.raises(InvalidAmount, match="larger than the maximum"):
            parse_amount(text, "CNY")
    elif proper:
        assert parse_amount(text, "CNY") == parse_amount(text.replace(",", ""), "CNY")
    else:
        with pytest.raises(InvalidAmount, match="commas may only separate thousands"):
            parse_amount(text, "CNY")


@pytest.mark.parametrize("text", ["1,50", "1,5", "12,34", "1,5000", "1,500,00", ",500", "1,", "1,,500", "0,500",
                                  "1.500,00", "1,500.5,0", "1 ,500"])
def test_a_decimal_comma_or_a_malformed_group_is_refused(text):
    with pytest.raises(InvalidAmount):
        parse_amount(text, "CNY")


@pytest.mark.parametrize(("text", "cents"), [("1,500", 150_000), ("12,345.60", 1_234_560),
                                            ("1,234,567.89", 123_456_789), (" 1,500 ", 150_000),
                                            ("100,000,000", MAX_AMOUNT_CENTS)])
def test_proper_thousands_separators_are_accepted(text, cents):
    assert parse_amount(text, "CNY") == cents
