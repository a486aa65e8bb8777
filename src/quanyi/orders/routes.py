"""Order API: checkout, status, cancel, reveal card keys, lookup without an account."""

from __future__ import annotations

import datetime as dt

from fastapi import APIRouter, Request, Response

from quanyi.catalog import service as catalog_service
from quanyi.catalog.guide import render_guide
from quanyi.coupons import abuse as coupon_abuse
from quanyi.deps import NO_STORE, ContextDep, ReadSessionDep, SessionDep, client_ip, user_agent
from quanyi.inventory.service import OutOfStock
from quanyi.members.dependencies import OptionalMemberTokenDep
from quanyi.orders import service as orders_service
from quanyi.orders.access import order_access_token
from quanyi.orders.dependencies import OrderNoDep
from quanyi.orders.reveal import reveal_by_order_no
from quanyi.orders.schemas import (
    LookupRequest,
    LookupResult,
    OrderCreate,
    OrderCreated,
    OrderRead,
    RevealResponse,
)
from quanyi.promoters.referral import REFERRAL_COOKIE, attribute_checkout
from quanyi.risk import engine as risk_engine
from quanyi.risk.challenges import Verification
from quanyi.risk.checkout import ensure_device_cookie, request_device, screen_order

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
    # Hash before the transaction: on SQLite it holds the writer lock, and argon2 is slow by design.
    locale = data.locale or ctx.settings.default_locale
    verification = (Verification(data.challenge_id, data.verification_code, data.captcha_token)
                    if data.challenge_id or data.captcha_token else None)
    signals, screening = await screen_order(  # risk control: may raise 429 / refuse / ask for a code
        ctx, ip=client_ip(request), device=request_device(ctx, request),
        sku_id=data.sku_id, quantity=data.quantity, contact=data.contact, locale=locale, verification=verification)
    password_hash = await orders_service.hash_query_password(data.query_password) if data.query_password else None
    try:
        async with ctx.db.transaction() as session:
            member = await member_token.login(session)  # the signed-in buyer (会员), else a guest order
            order = await orders_service.create_order(
                session=session, sku_id=data.sku_id, quantity=data.quantity, contact=data.contact,
                query_password_hash=password_hash, locale=locale,
                ip=client_ip(request), reservation_ttl=dt.timedelta(seconds=ctx.settings.reservation_ttl_seconds),
                recharge_account=data.recharge_account, sku=screening.sku, picked_card_key_id=data.card_key_id,
                member_id=member.member_id if member else None, points=data.points if member else 0,
                coupon_codes=data.coupon_codes, member_coupon_ids=data.member_coupon_ids,
            )
            await coupon_abuse.check_use(ctx, session=session, order=order, ip=client_ip(request),
                                         device=request_device(ctx, request).id)  # 薅羊毛: new-member coupons
            # Distribution (分销): the promoter named here, else the one whose link the browser came through.
            await attribute_checkout(session=session, order=order, secret=ctx.settings.app_secret.get_secret_value(),
                                     named_code=data.distributor_code, cookie=request.cookies.get(REFERRAL_COOKIE),
                                     member_id=member.member_id if member else None)
            if signals is not None:
                await risk_engine.remember_order(session=session, order=order, signals=signals,
                                                 screening=screening)
            read = await orders_service.describe_order(session=session, order=order)
    except OutOfStock as exc:
        if exc.context.get("available") == 0:
            ctx.sold_out.remember(data.sku_id)
        raise
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
    ip, agent = client_ip(request), user_agent(request)
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
