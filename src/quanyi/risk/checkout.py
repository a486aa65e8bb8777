"""Risk screening of a checkout request, shared by the order API and the storefront form.

Device id: the `X-Device-Id` header (apps, a fingerprinting script) or else the `qy_did` cookie the
storefront sets on first visit. Neither is trusted for anything but counting.
"""

from __future__ import annotations

import re

from quanyi.catalog import service as catalog_service
from quanyi.context import ShopContext
from quanyi.money import line_total
from quanyi.orders.contact import normalize_contact
from quanyi.risk import engine as risk_engine
from quanyi.risk.challenges import Verification
from quanyi.risk.rules import Signals

__all__ = ["DEVICE_COOKIE", "device_id", "screen_order"]

DEVICE_COOKIE = "qy_did"
_DEVICE = re.compile(r"^[A-Za-z0-9_.:-]{8,128}$")


def device_id(header: str | None, cookie: str | None) -> str:
    """The device id a request claims, or "" when it has none that looks like one."""
    for candidate in (header, cookie):
        if candidate and _DEVICE.match(candidate.strip()):
            return candidate.strip()
    return ""


async def screen_order(ctx: ShopContext, *, ip: str, device: str, sku_id: int, quantity: int, contact: str,
                       locale: str, verification: Verification | None) -> tuple[Signals | None, risk_engine.Screening]:
    """Run order-stage risk control. Returns (None, allow) when the request is invalid anyway (unknown SKU,
    bad contact): checkout itself then refuses it with its usual error."""
    try:
        contact_kind, contact_value = normalize_contact(contact)
    except ValueError:
        return None, risk_engine.Screening()
    async with ctx.db.read_session() as session:
        try:
            sku = await catalog_service.get_sku(session=session, sku_id=sku_id)
        except catalog_service.SkuNotFound:
            return None, risk_engine.Screening()
        price, currency = sku.price_cents, sku.currency
        rules = await risk_engine.order_rules(session)  # in the same read: one session per checkout
    signals = risk_engine.checkout_signals(ctx.risk, ip=ip, device=device, contact_kind=contact_kind,
                                           contact=contact_value, sku_id=sku_id, quantity=quantity,
                                           amount_cents=line_total(price, quantity))
    screening = await risk_engine.screen_checkout(db=ctx.db, runtime=ctx.risk, signals=signals, locale=locale,
                                                  currency=currency, verification=verification, rules=rules)
    return signals, screening
