"""Who may see an order: holders of its access token.

The token is an HMAC of the order number under the app secret, handed out at checkout and after a
successful lookup (order number + contact or query password). Pages keep tokens in an HttpOnly,
SameSite=Lax cookie; the API takes them in the X-Order-Token header. Knowing an order number alone
grants nothing.

Links in e-mails and SMS carry an **order link token** instead: `<expiry>.<mac>`, an HMAC of the order number
and an expiry time (QUANYI_ORDER_LINK_TTL_DAYS after sending), under its own label. It only opens the order
page (exchanged for the access cookie by a POST), stops working when it expires, and is never the access token.
"""

from __future__ import annotations

import base64
import datetime as dt
import enum
import hashlib
import hmac
import re

__all__ = ["order_access_token", "verify_order_access", "COOKIE_NAME", "cookie_with_token", "tokens_from_cookie",
           "order_link_token", "check_order_link", "LinkCheck"]

COOKIE_NAME = "qy_orders"
_MAX_ORDERS_IN_COOKIE = 20


def order_access_token(secret: str, order_no: str) -> str:
    mac = hmac.new(secret.encode(), b"order-access:" + order_no.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac[:24]).decode().rstrip("=")


def verify_order_access(secret: str, order_no: str, token: str | None) -> bool:
    if not token or len(token) > 64:
        return False
    return hmac.compare_digest(order_access_token(secret, order_no), token)


def tokens_from_cookie(value: str | None) -> dict[str, str]:
    """Cookie 'ORDERNO.TOKEN|ORDERNO.TOKEN' -> {order_no: token}. Junk is ignored."""
    result: dict[str, str] = {}
    for item in (value or "").split("|")[:_MAX_ORDERS_IN_COOKIE]:
        order_no, _, token = item.partition(".")
        if order_no and token:
            result[order_no] = token
    return result


def cookie_with_token(value: str | None, order_no: str, token: str) -> str:
    """Add an order to the cookie, newest first, keeping the last 20 orders."""
    tokens = tokens_from_cookie(value)
    tokens.pop(order_no, None)
    items = [(order_no, token), *tokens.items()][:_MAX_ORDERS_IN_COOKIE]
    return "|".join(f"{o}.{t}" for o, t in items)


class LinkCheck(enum.Enum):
    VALID = "valid"
    EXPIRED = "expired"
    INVALID = "invalid"


_LINK_TOKEN = re.compile(r"([0-9a-z]{1,12})\.([A-Za-z0-9_-]{24})")


def _link_mac(secret: str, order_no: str, expiry: str) -> str:
    mac = hmac.new(secret.encode(), f"order-link:{order_no}:{expiry}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac[:18]).decode()


def order_link_token(secret: str, order_no: str, expires_at: dt.datetime) -> str:
    """The token of an e-mailed / texted order link, valid until `expires_at`."""
    expiry = _base36(int(expires_at.timestamp()))
    return f"{expiry}.{_link_mac(secret, order_no, expiry)}"


def check_order_link(secret: str, order_no: str, token: str | None, *, now: dt.datetime) -> LinkCheck:
    """VALID, EXPIRED (genuine but past its expiry), or INVALID (forged, another order's, garbled)."""
    found = _LINK_TOKEN.fullmatch(token or "")
    if found is None:
        return LinkCheck.INVALID
    expiry, mac = found.groups()
    if not hmac.compare_digest(_link_mac(secret, order_no, expiry), mac):
        return LinkCheck.INVALID
    return LinkCheck.VALID if now.timestamp() < int(expiry, 36) else LinkCheck.EXPIRED


def _base36(number: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        number, rest = divmod(number, 36)
        out = digits[rest] + out
        if number == 0:
            return out
