"""The referral cookie (推广来源): which promoter's link a browser came through, and when.

Signed with the shop's secret and dated, so the attribution window is the server's rule (a cookie kept past its
window, or edited, attributes nothing) whatever the browser does with its max-age.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac

from sqlalchemy.ext.asyncio import AsyncSession

from quanyi.db import utcnow
from quanyi.orders.models import Order
from quanyi.promoters import attribution as promoters_attribution
from quanyi.promoters import service as promoters_service
from quanyi.promoters.models import AttributionSource, OrderAttribution
from quanyi.promoters.service import InvalidPromoter, normalize_code

__all__ = ["REFERRAL_COOKIE", "referral_cookie", "code_from_cookie", "attribute_checkout"]

REFERRAL_COOKIE = "qy_ref"


def _mac(secret: str, payload: str) -> str:
    return hmac.new(secret.encode(), f"ref:{payload}".encode(), hashlib.sha256).hexdigest()[:32]


def referral_cookie(secret: str, code: str, now: dt.datetime) -> str:
    payload = f"{code}.{int(now.timestamp())}"
    return f"{payload}.{_mac(secret, payload)}"


def code_from_cookie(secret: str, value: str | None, now: dt.datetime, window_days: int) -> str | None:
    """The promoter code of a valid cookie still inside the window, else None."""
    if not value or len(value) > 120:
        return None
    payload, _, mac = value.rpartition(".")
    code, _, issued = payload.rpartition(".")
    if not code or not issued.isdigit() or not hmac.compare_digest(mac, _mac(secret, payload)):
        return None
    age = now.timestamp() - int(issued)
    if not -300 <= age <= window_days * 86400:
        return None
    try:
        return normalize_code(code)
    except InvalidPromoter:
        return None


async def attribute_checkout(*, session: AsyncSession, order: Order, secret: str, named_code: str | None = None,
                             cookie: str | None = None, member_id: int | None = None,
                             now: dt.datetime | None = None) -> OrderAttribution | None:
    """At checkout, in its transaction: attribute the new order to the promoter the buyer came with (the code the
    API caller named, strictly checked; else the member's binding; else the referral cookie, if still valid)."""
    if named_code is None and cookie is None and member_id is None:
        return None  # the plain checkout reads nothing more
    now = now or utcnow()
    if named_code is not None:
        return await promoters_attribution.attribute_order(session=session, order=order, code=named_code,
                                                       source=AttributionSource.CODE, member_id=member_id, now=now)
    code = None
    if cookie is not None:
        program = await promoters_service.get_program(session)
        code = code_from_cookie(secret, cookie, now, program.attribution_days)
    attribution = await promoters_attribution.attribute_order(session=session, order=order, code=code,
                                                          source=AttributionSource.LINK, member_id=member_id, now=now)
    if attribution is not None and attribution.source == AttributionSource.LINK and member_id is not None:
        # A member who came through the link is bound to its promoter (锁粉) for the window.
        await promoters_attribution.bind_member(session=session, member_id=member_id, code=order.distributor_code or "",
                                            now=now)
    return attribution
