"""Order API: checkout, status, cancel, reveal card keys, lookup without an account."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from sqlalchemy.ext.asyncio import AsyncSession

from quanyi.catalog import service as catalog_service
from quanyi.catalog.guide import render_guide
from quanyi.context import ShopContext
from quanyi.deps import NO_STORE, ContextDep, ReadSessionDep, SessionDep, client_ip, user_agent
from quanyi.inventory.service import OutOfStock
from quanyi.members.dependencies import OptionalMemberTokenDep
from quanyi.orders import service as orders_service
from quanyi.orders.access import order_access_token
from quanyi.orders.dependencies import OrderNoDep
from quanyi.orders.models import Order
from quanyi.orders.placing import CheckoutInput, place_order
from quanyi.orders.reveal import reveal_by_order_no
from quanyi.orders.schemas import (
    LookupRequest,
    LookupResult,
    OrderCreate,
    OrderCreated,
    OrderRead,
    RevealResponse,
)
from quanyi.promoters.referral import REFERRAL_COOKIE
from quanyi.risk.challenges import Verification
from quanyi.risk.checkout import ensure_device_cookie, request_device

router = APIRouter(prefix="/api/orders", tags=["orders"])


def _limits(ctx: ContextDep) -> orders_service.LookupLimits:
    return orders_service.LookupLimits.from_settings(ctx.settings)


@router.post("", response_model=OrderCreated, status_code=201, summary="Place an order (reserves stock)",
             dependencies=[NO_STORE],
             responses={409: {"description": "Sold out, not on sale, or (自选卡密) card_key_taken: the picked "
                                             "key went to another buyer"},
                        403: {"description": "Refused by risk control, verification_required (see challenge_id), or "
                                             "verification_unavailable (no code can reach this contact)"},
                        429: {"description": "Too many checkouts from this IP or device, or too much stock "
                                             "already held in unpaid / under-review orders (too_much_stock_held); "
                                             "Retry-After"},
                        503: {"description": "The shop has no payment method enabled"}})
async def create_order(data: OrderCreate, request: Request, response: Response, ctx: ContextDep,
                       member_token: OptionalMemberTokenDep) -> OrderCreated:
    ctx.gateways.require_any()
    if ctx.sold_out.is_sold_out(data.sku_id):  # found sold out a moment ago: no screening, no transaction
        raise OutOfStock("sold out", available=0, requested=data.quantity)
    ip = client_ip(request)
    verification = (Verification(data.challenge_id, data.verification_code, data.captcha_token)
                    if data.challenge_id or data.captcha_token else None)
    described: list[OrderRead] = []

    async def describe(session: AsyncSession, order: Order) -> None:
        described.append(await orders_service.describe_order(session=session, order=order))

    try:
        order = await place_order(ctx, CheckoutInput(
            sku_id=data.sku_id, quantity=data.quantity, contact=data.contact,
            locale=data.locale or ctx.settings.default_locale, ip=ip, device=request_device(ctx, request),
            verification=verification, query_password=data.query_password, recharge_account=data.recharge_account,
            card_key_id=data.card_key_id, member_token=member_token, points=data.points,
            coupon_codes=data.coupon_codes, member_coupon_ids=data.member_coupon_ids,
            distributor_code=data.distributor_code, referral_cookie=request.cookies.get(REFERRAL_COOKIE)),
            inside=describe)
    except OutOfStock as exc:
        if exc.context.get("available") == 0:
            ctx.sold_out.remember(data.sku_id)
        raise
    read = described[0]
    token = order_access_token(ctx.settings.app_secret.get_secret_value(), order.order_no)
    ensure_device_cookie(ctx, request, response)  # a client with a cookie jar keeps one device from now on
    return OrderCreated(**read.model_dump(), access_token=token)


@router.get("/{order_no}", response_model=OrderRead, summary="Order status")
async def get_order(order_no: OrderNoDep, session: ReadSessionDep) -> OrderRead:
    order = await orders_service.get_order(session=session, order_no=order_no)
    return await orders_service.describe_order(session=session, order=order)


@router.post("/{order_no}/cancel", response_model=OrderRead, summary="Cancel an unpaid order")
async def cancel_order(order_no: OrderNoDep, session: SessionDep) -> OrderRead:
    order = await orders_service.get_order(session=session, order_no=order_no)
    order = await orders_service.cancel_order(session=session, order_id=order.id, reason="cancelled by buyer")
    return await orders_service.describe_order(session=session, order=order)


@router.post("/{order_no}/reveal", response_model=RevealResponse, dependencies=[NO_STORE],
             summary="Show the delivered card keys (every call is audited)")
async def reveal(order_no: OrderNoDep, request: Request, session: SessionDep, ctx: ContextDep) -> RevealResponse:
    return await revealed_keys(session, ctx, order_no, client_ip(request), user_agent(request))


async def revealed_keys(session: AsyncSession, ctx: ShopContext, order_no: str, ip: str,
                        agent: str) -> RevealResponse:
    """What `reveal` answers for an authorized order number, in the caller's transaction (the route and the
    purchase lane)."""
    # The usual order (its own card keys): read, audited and guided in one round trip (orders/reveal.py).
    revealed = await reveal_by_order_no(session=session, cipher=ctx.cipher, order_no=order_no, channel="api", ip=ip,
                                        user_agent=agent)
    if revealed is not None:
        return RevealResponse(order_no=revealed.order_no, keys=revealed.keys,
                              redemption_guide_html=render_guide(revealed.guide))
    order = await orders_service.get_order(session=session, order_no=order_no)
    keys = await orders_service.reveal_order_keys(session=session, cipher=ctx.cipher, order=order, channel="api",
                                                  ip=ip, user_agent=agent)
    guide = await catalog_service.redemption_guide(session=session, product_id=order.product_id)
    return RevealResponse(order_no=order.order_no, keys=keys, redemption_guide_html=render_guide(guide))


@router.post("/lookup", response_model=LookupResult, summary="Find an order without an account",
             dependencies=[NO_STORE],
             responses={404: {"description": "No match"}, 429: {"description": "Too many failed attempts"}})
async def lookup(data: LookupRequest, request: Request, ctx: ContextDep) -> LookupResult:
    order = await orders_service.lookup_order(
        db=ctx.db, limiter=ctx.limiter, limits=_limits(ctx), order_no=data.order_no,
        contact=data.contact, query_password=data.query_password, ip=client_ip(request),
        device=request_device(ctx, request).id,
    )
    return LookupResult(order_no=order.order_no,
                        access_token=order_access_token(ctx.settings.app_secret.get_secret_value(), order.order_no))
