"""Money as integer minor units (cents/fen). Never float. One formatter, one parser."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

__all__ = [
    "CURRENCIES",
    "MAX_AMOUNT_CENTS",
    "InvalidAmount",
    "format_money",
    "line_total",
    "parse_amount",
    "to_decimal",
]

# ISO 4217 code -> (minor-unit exponent, symbol)
CURRENCIES: dict[str, tuple[int, str]] = {
    "CNY": (2, "¥"),
    "USD": (2, "$"),
    "HKD": (2, "HK$"),
    "EUR": (2, "€"),
    "JPY": (0, "JP¥"),
}

# 100 million yuan per line: far above any real virtual-goods order, far below 64-bit overflow.
MAX_AMOUNT_CENTS = 10_000_000_000


class InvalidAmount(ValueError):
    """A money amount that cannot be represented exactly in the currency's minor unit."""


def _exponent(currency: str) -> int:
    try:
        return CURRENCIES[currency][0]
    except KeyError:
        raise InvalidAmount(f"unsupported currency {currency!r}") from None


def to_decimal(amount_cents: int, currency: str) -> Decimal:
    """Minor units -> Decimal major units (1234 CNY -> Decimal('12.34'))."""
    exponent = _exponent(currency)
    return Decimal(amount_cents).scaleb(-exponent)


def format_money(amount_cents: int, currency: str) -> str:
    """The one place money is turned into text: 1234, 'CNY' -> '¥12.34'."""
    exponent = _exponent(currency)
    symbol = CURRENCIES[currency][1]
    sign = "-" if amount_cents < 0 else ""
    value = to_decimal(abs(amount_cents), currency)
    return f"{sign}{symbol}{value:,.{exponent}f}"


# Commas only as thousands separators: groups of exactly three digits after a first group of 1-3 (no leading 0),
# and only before the decimal point. "1,50" (a European decimal comma) must never become 150 yuan.
_GROUPED = re.compile(r"[1-9][0-9]{0,2}(?:,[0-9]{3})+(?:\.[0-9]*)?")


def parse_amount(text: str, currency: str) -> int:
    """'12.34' -> 1234 for CNY; '12,345.60' -> 1234560. Rejects more decimals than the currency has, signs, junk,
    and commas that are not thousands separators ('1,50', '1,5000', '12.3,4')."""
    exponent = _exponent(currency)
    cleaned = text.strip()
    if "," in cleaned:
        if not _GROUPED.fullmatch(cleaned):
            raise InvalidAmount(f"{text!r}: commas may only separate thousands, like 1,500 or 12,345.60")
        cleaned = cleaned.replace(",", "")
    # ASCII only: str.isdigit() would also accept other scripts' digits (e.g. Arabic-Indic).
    if not cleaned or not all(c in "0123456789." for c in cleaned):
        raise InvalidAmount(f"not an amount: {text!r}")
    try:
        value = Decimal(cleaned)
    except InvalidOperation:
        raise InvalidAmount(f"not an amount: {text!r}") from None
    scaled = value.scaleb(exponent)
    if scaled != scaled.to_integral_value():
        raise InvalidAmount(f"{text!r} has more than {exponent} decimal places for {currency}")
    cents = int(scaled)
    if cents > MAX_AMOUNT_CENTS:
        raise InvalidAmount(f"{text!r} is larger than the maximum amount")
    return cents


def line_total(unit_price_cents: int, quantity: int) -> int:
    """Price of `quantity` units; refuses totals beyond MAX_AMOUNT_CENTS instead of overflowing."""
    if unit_price_cents < 0 or quantity < 0:
        raise InvalidAmount("price and quantity must not be negative")
    total = unit_price_cents * quantity
    if total > MAX_AMOUNT_CENTS:
        raise InvalidAmount("order total exceeds the maximum amount")
    return total
