"""Who may see an order: holders of its access token.

The token is an HMAC of the order number under the app secret, handed out at checkout and after a
successful lookup (order number + contact or query password). Pages keep tokens in an HttpOnly,
SameSite=Lax cookie; the API takes them in the X-Order-Token header. Knowing an order number alone
grants nothing.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

__all__ = ["order_access_token", "verify_order_access", "COOKIE_NAME", "cookie_with_token", "tokens_from_cookie"]

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
