"""Order access for API routes: the order named in the path, if the caller holds its access token."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Path

from quanyi.deps import ContextDep, NotAuthorized
from quanyi.orders.access import verify_order_access
from quanyi.orders.numbers import normalize_order_no

__all__ = ["OrderNoDep"]


class OrderAccessDenied(NotAuthorized):
    code = "order_access_denied"


async def _authorized_order_no(  # async: no worker thread (quanyi.deps)
    ctx: ContextDep,
    order_no: Annotated[str, Path(min_length=1, max_length=64, description="Order number")],
    x_order_token: Annotated[str | None, Header(max_length=128, description="Access token of the order")] = None,
) -> str:
    canonical = normalize_order_no(order_no)
    secret = ctx.settings.app_secret.get_secret_value()
    # Same answer for "no such order" and "wrong token": order numbers cannot be probed here.
    if canonical is None or not verify_order_access(secret, canonical, x_order_token):
        raise OrderAccessDenied("order not found or access token invalid (send X-Order-Token)")
    return canonical


OrderNoDep = Annotated[str, Depends(_authorized_order_no)]
