"""Risk screening of a checkout request, shared by the order API and the storefront form.

Device of a checkout (risk.device): the shop-issued `qy_did` cookie when its signature verifies, else the
`X-Device-Id` header (apps, a fingerprinting script). Both are counted per device; only the cookie makes a
checkout one "with a device" (the cookieless-surge dimensions), because a client can invent a new header
value for every request but cannot mint a signed cookie. Product pages and a placed API order hand out a
signed cookie to clients without a valid one. Neither is trusted for anything but counting.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from quanyi.catalog import service as catalog_service
from quanyi.context import ShopContext
from quanyi.money import line_total
from quanyi.orders.contact import normalize_contact
from quanyi.risk import engine as risk_engine
from quanyi.risk.challenges import Verification
from quanyi.risk.device import (
    DEVICE_COOKIE,
    DEVICE_COOKIE_MAX_AGE,
    CheckoutDevice,
    checkout_device,
    new_device_cookie,
    verified_device_id,
)
from quanyi.risk.rules import Signals

__all__ = ["request_device", "ensure_device_cookie", "screen_order"]


def request_device(ctx: ShopContext, request: Request) -> CheckoutDevice:
    """The device a request comes from: its verified device cookie, else its X-Device-Id header, else none."""
    return checkout_device(ctx.risk.device_key, header=request.headers.get("x-device-id"),
                           cookie=request.cookies.get(DEVICE_COOKIE))


def ensure_device_cookie(ctx: ShopContext, request: Request, response: Response) -> None:
    """Give a client without a valid device cookie (none, forged, tampered, old unsigned) a signed one."""
    if verified_device_id(ctx.risk.device_key, request.cookies.get(DEVICE_COOKIE)):
        return
    # The scope's scheme, which `request.url.scheme` reads too (without building the whole URL, on every checkout).
    response.set_cookie(DEVICE_COOKIE, new_device_cookie(ctx.risk.device_key), max_age=DEVICE_COOKIE_MAX_AGE,
                        httponly=True, samesite="lax", secure=request.scope.get("scheme") == "https")


async def screen_order(ctx: ShopContext, *, ip: str, device: CheckoutDevice, sku_id: int, quantity: int,
                       contact: str, locale: str,
                       verification: Verification | None) -> tuple[Signals | None, risk_engine.Screening]:
    """Run order-stage risk control. Returns (None, allow) when the request is invalid anyway (unknown SKU,
    bad contact): checkout itself then refuses it with its usual error."""
    try:
        contact_kind, contact_value = normalize_contact(contact)
    except ValueError:
        return None, risk_engine.Screening()
    # One unit of work for the SKU, the rules and the flood limit's hits (a write only when a limit is on).
    unit = ctx.db.transaction() if risk_engine.flood_limited(ctx.risk) else ctx.db.read_session()
    flood: risk_engine.FloodHits | None = None
    async with unit as session:
        try:
            sku = await catalog_service.get_sku(session=session, sku_id=sku_id)
        except catalog_service.SkuNotFound:
            return None, risk_engine.Screening()
        price, currency, merchant_id = sku.price_cents, sku.currency, sku.merchant_id
        rules = await risk_engine.order_rules(session)
        signals = risk_engine.checkout_signals(ctx.risk, ip=ip, device=device.id, device_verified=device.verified,
                                               contact_kind=contact_kind, contact=contact_value, sku_id=sku_id,
                                               quantity=quantity, amount_cents=line_total(price, quantity),
                                               merchant_id=merchant_id)
        flood = await risk_engine.hit_flood_limits(ctx.risk, signals, session=session)
    flood.check()  # after the commit: a refused checkout still counts
    screening = await risk_engine.screen_checkout(db=ctx.db, runtime=ctx.risk, signals=signals, locale=locale,
                                                  currency=currency, verification=verification, rules=rules,
                                                  flood_checked=True)
    screening.sku = sku
    return signals, screening
