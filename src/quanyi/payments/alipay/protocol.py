"""Alipay's value formats: yuan amounts ("19.80") and Beijing-time timestamps ("2024-05-01 12:00:00").

Both are untrusted text when they come back from the network: the parsers accept exactly the documented
shape and raise ValueError with a reason for anything else.
"""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal

from quanyi.money import MAX_AMOUNT_CENTS, to_decimal

__all__ = ["BEIJING", "format_time", "parse_time", "format_yuan", "parse_yuan", "clean_subject"]

BEIJING = dt.timezone(dt.timedelta(hours=8), "Asia/Shanghai")  # China has no DST: a fixed +08:00
_TIME = "%Y-%m-%d %H:%M:%S"
_TIME_SHAPE = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$")
# Alipay amounts: yuan with at most two decimals, no sign, no exponent, no grouping.
_YUAN_SHAPE = re.compile(r"^(0|[1-9][0-9]{0,10})(\.[0-9]{1,2})?$")
# Alipay refuses these in `subject` (and they would break naive form parsers on the way back).
_SUBJECT_JUNK = re.compile(r"[/=&?\\\x00-\x1f\x7f]")
MAX_SUBJECT = 256


def format_time(moment: dt.datetime) -> str:
    if moment.tzinfo is None:
        raise ValueError("a timestamp for Alipay must carry a timezone")
    return moment.astimezone(BEIJING).strftime(_TIME)


def parse_time(text: str) -> dt.datetime:
    """'2024-05-01 12:00:00' (Beijing time) -> an aware UTC datetime."""
    if not _TIME_SHAPE.match(text):
        raise ValueError(f"not an Alipay timestamp (yyyy-MM-dd HH:mm:ss): {text[:40]!r}")
    return dt.datetime.strptime(text, _TIME).replace(tzinfo=BEIJING).astimezone(dt.UTC)


def format_yuan(amount_cents: int) -> str:
    """1980 -> '19.80'. Alipay takes CNY only, in [0.01, 100000000]."""
    if amount_cents <= 0 or amount_cents > MAX_AMOUNT_CENTS:
        raise ValueError(f"amount {amount_cents} fen is outside what Alipay accepts")
    return f"{to_decimal(amount_cents, 'CNY'):.2f}"


def parse_yuan(text: str) -> int:
    """'19.80' -> 1980. Refuses signs, exponents, grouping, spaces and more than two decimals."""
    if not _YUAN_SHAPE.match(text):
        raise ValueError(f"not a yuan amount: {text[:40]!r}")
    cents = int(Decimal(text).scaleb(2))
    if cents > MAX_AMOUNT_CENTS:
        raise ValueError(f"amount {text!r} is larger than the maximum amount")
    return cents


def clean_subject(subject: str) -> str:
    cleaned = " ".join(_SUBJECT_JUNK.sub(" ", subject).split())
    return cleaned[:MAX_SUBJECT] or "order"
