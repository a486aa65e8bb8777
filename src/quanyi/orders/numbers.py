"""Order numbers (订单号): short, readable over the phone, and not guessable.

Format: YYMMDD (the shop's date in QUANYI_SHOP_TIMEZONE, handy for support) + 8 Crockford base32
characters from a CSPRNG (40 bits: about a trillion possibilities per day). Example: 261125K7M2Q9XD.
Lookups are rate limited on top of that, and an order number alone never grants access to an order's
card keys.
"""

from __future__ import annotations

import datetime as dt
import re
import secrets
from zoneinfo import ZoneInfo

from quanyi.shoptime import shop_day

__all__ = ["new_order_no", "normalize_order_no", "ORDER_NO_PATTERN"]

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
ORDER_NO_PATTERN = re.compile(r"^\d{6}[0-9A-HJKMNP-TV-Z]{8}$")
_CONFUSABLE = str.maketrans({"I": "1", "L": "1", "O": "0"})


def new_order_no(now: dt.datetime | None = None, *, zone: ZoneInfo) -> str:
    day = shop_day(now or dt.datetime.now(dt.UTC), zone).strftime("%y%m%d")
    return day + "".join(secrets.choice(_ALPHABET) for _ in range(8))


def normalize_order_no(text: str) -> str | None:
    """What a buyer typed -> canonical order number, or None if it cannot be one."""
    if len(text) > 64:
        return None
    cleaned = re.sub(r"[\s\-_]", "", text).upper().translate(_CONFUSABLE)
    return cleaned if ORDER_NO_PATTERN.match(cleaned) else None
