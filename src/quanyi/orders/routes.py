"""Order API: checkout, status, cancel, reveal card keys, lookup without an account."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from sqlalchemy.ext.asyncio import AsyncSession

from quanyi.catalog import service as catalog_service
from quanyi.catalog.guide import render_guide
from quanyi.context import ShopContext
from quanyi.deps import NO_STORE, ContextDep, ReadSessionDep, SessionDep, client_ip, user_agent
from quanyi.members.dependencies import OptionalMemberTokenDep
from quanyi.orders import service as orders_service
from quanyi.orders.access import order_access_token
from quanyi.orders.checkout_lane import place_checkout
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
from quanyi.risk.checkout import request_device

router = APIRouter(prefix="/api/orders", tags=["orders"])


def _limits(ctx: ContextDep) -> orders_service.LookupLimits:
    return orders_service.LookupLimits.from_settings(ctx.settings)


@router.post("", response_model=OrderCreated, status_code=201,
             summary="Place an order (reserves stock); with `pay`, start its payment too", dependencies=[NO_STORE],
             responses={409: {"description": "Sold out, not on sale, or (自选卡密) card_key_taken: the picked "
                                             "key went to another buyer"},
                        403: {"description": "Refused by risk control, verification_required (see challenge_id), or "
                                             "verification_unavailable (no code can reach this contact)"},
                        429: {"description": "Too many checkouts from this IP or device, or too much stock "
                                             "already held in unpaid / under-review orders (too_much_stock_held); "
                                             "Retry-After"},
                        422: {"description": "Invalid input; unknown_gateway: `pay` names a gateway the shop does not "
                                           "take (nothing placed)"},
                        503: {"description": "The shop has no payment method enabled"}})
async def create_order(data: OrderCreate, request: Request, response: Response, ctx: ContextDep,
                       member_token: OptionalMemberTokenDep) -> OrderCreated:
    # A plain guest checkout usually never gets here: orders.checkout_lane answers it with this same function.
    return await place_checkout(ctx, data, request, response, member_token)


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
async def reveal(order_no: OrderNoDep, request: Request, ctx: ContextDep) -> RevealResponse:
    return await revealed_keys(ctx, order_no, client_ip(request), user_agent(request))


async def revealed_keys(ctx: ShopContext, order_no: str, ip: str, agent: str) -> RevealResponse:
    """What `reveal` answers for an authorized order number (the route and the purchase lane)."""
    # The usual order (its own card keys): read, audited and guided in one statement on PostgreSQL, which needs no
    # transaction around it: its audit rows are committed before any key leaves (orders/reveal.py). On the driver
    # (quanyi.db_driven): no SQLAlchemy Connection or session transaction for its one statement.
    async with ctx.db.driver_single_statements() as session:
        revealed = await reveal_by_order_no(session=session, cipher=ctx.cipher, order_no=order_no, channel="api",
                                            ip=ip, user_agent=agent)
    if revealed is not None:
        return RevealResponse(order_no=revealed.order_no, keys=revealed.keys,
                              redemption_guide_html=render_guide(revealed.guide))
    async with ctx.db.transaction() as session:
        return await _revealed_the_general_way(session, ctx, order_no, ip, agent)


async def _revealed_the_general_way(session: AsyncSession, ctx: ShopContext, order_no: str, ip: str,
                                    agent: str) -> RevealResponse:
    """An order without card keys of its own (a shared code): read, audit and guide one by one."""
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
