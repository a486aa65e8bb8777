"""Payment HTTP: start a payment for an order; receive gateway notifications."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import Response
from sqlalchemy.exc import IntegrityError

from quanyi.context import ShopContext
from quanyi.deps import ContextDep, PlatformAdminDep, client_ip
from quanyi.errors import DomainError
from quanyi.orders.dependencies import OrderNoDep
from quanyi.orders.schemas import PaymentStart, PaymentStartRequest
from quanyi.payments import configuration as gateway_configuration
from quanyi.payments import reconciliation
from quanyi.payments import service as payments_service
from quanyi.payments.gateway import GatewayReply, NotificationRejected, PaymentGateway
from quanyi.payments.schemas import GatewayConfigRead, GatewayConfigUpdate, ReconciliationReport
from quanyi.urls import shop_base_url

router = APIRouter(tags=["payments"])
admin_router = APIRouter(prefix="/api/admin/payment-gateways", tags=["admin: payments"])
reconciliation_router = APIRouter(prefix="/api/admin", tags=["admin: reconciliation"])
logger = logging.getLogger("quanyi.payments.notify")
admin_logger = logging.getLogger("quanyi.payments.admin")

_MAX_NOTIFY_BYTES = 64 * 1024


@router.post("/api/orders/{order_no}/payments", response_model=PaymentStart, status_code=201,
             summary="Start paying an order: returns the gateway's cashier URL or a QR code to scan",
             responses={503: {"description": "The gateway could not be reached; try again"}})
async def start_payment(
    order_no: OrderNoDep, request: Request, ctx: ContextDep, data: PaymentStartRequest | None = None,
) -> PaymentStart:
    return await payment_started(ctx, order_no, data or PaymentStartRequest(), client_ip(request))


async def payment_started(ctx: ShopContext, order_no: str, data: PaymentStartRequest, ip: str) -> PaymentStart:
    """What `start_payment` answers for an authorized order number (the route and the purchase lane)."""
    gateway = ctx.gateways.get(data.gateway)
    root = shop_base_url(ctx.settings)  # configuration only, never this request's Host header
    notify_url, return_url = payments_service.callback_urls(root, gateway.name, order_no)
    started = await payments_service.start_payment(
        db=ctx.db, order_no=order_no, gateway=gateway, notify_url=notify_url, return_url=return_url,
        mode=data.mode, buyer_ip=ip,
    )
    cashier_url = started.checkout.cashier_url
    if cashier_url and cashier_url.startswith("/"):
        cashier_url = root + cashier_url
    return PaymentStart(payment_no=started.payment_no, gateway=started.gateway, cashier_url=cashier_url,
                        qr_code=started.checkout.qr_code, amount_cents=started.amount_cents,
                        currency=started.currency)


@router.post(
    "/payments/{gateway_name}/notify",
    summary="Gateway server-to-server payment notification",
    description="Called by the payment gateway, not by buyers. Answers in the gateway's own protocol, "
    "and answers success only after the payment has been committed.",
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}}, 400: {"content": {"text/plain": {}}}},
)
async def notify(
    gateway_name: Annotated[str, Path(max_length=32, pattern=r"^[a-z0-9_]+$")], request: Request, ctx: ContextDep
) -> Response:
    gateway = ctx.gateways.get(gateway_name)
    reply = await notification_reply(ctx, gateway, request.headers, await request.body(), client_ip(request))
    return Response(reply.body, status_code=reply.status_code, media_type=reply.media_type)


async def notification_reply(ctx: ShopContext, gateway: PaymentGateway, headers: Mapping[str, str], body: bytes,
                             ip: str) -> GatewayReply:
    """Apply a gateway's notification and say so in its protocol (the route and the purchase lane)."""
    try:
        if len(body) > _MAX_NOTIFY_BYTES:
            raise NotificationRejected("notification body too large")
        effect = await payments_service.receive_notification(db=ctx.db, gateway=gateway, headers=headers, body=body)
    except DomainError as exc:
        logger.warning("payment notification rejected: gateway=%s code=%s reason=%s ip=%s",
                       gateway.name, exc.code, exc.message, ip)
        return gateway.refuse(exc.message)
    except IntegrityError:
        # A concurrent copy of the same notification committed first (unique event id / trade no); this
        # copy rolled back whole. Answer in the gateway's protocol so it retries, and the retry is a no-op.
        logger.info("payment notification raced a concurrent copy: gateway=%s; asked to retry", gateway.name)
        return gateway.refuse("processed concurrently; retry")
    # Only here, after the commit above, do we tell the gateway to stop re-sending.
    logger.info("payment notification accepted: gateway=%s effect=%s", gateway.name, effect)
    return gateway.acknowledge()


# ---------------------------------------------------------------- admin: which gateways, with what account

async def _describe(ctx: ContextDep) -> list[GatewayConfigRead]:
    async with ctx.db.read_session() as session:
        described = await gateway_configuration.describe_gateway_configs(
            session=session, cipher=ctx.cipher, registry=ctx.gateways)
    return [GatewayConfigRead.model_validate(item) for item in described]


@admin_router.get("", response_model=list[GatewayConfigRead],
                  summary="Gateways quanyi can take payments with, their stored settings (secrets masked)")
async def list_gateway_configs(_: PlatformAdminDep, ctx: ContextDep) -> list[GatewayConfigRead]:
    return await _describe(ctx)


@admin_router.put("/{gateway_name}", response_model=GatewayConfigRead,
                  summary="Configure, enable or disable a gateway (takes effect in every server within a minute)")
async def put_gateway_config(
    gateway_name: Annotated[str, Path(max_length=32, pattern=r"^[a-z0-9_]+$")], data: GatewayConfigUpdate,
    admin: PlatformAdminDep, ctx: ContextDep,
) -> GatewayConfigRead:
    async with ctx.db.transaction() as session:
        await gateway_configuration.save_gateway_config(
            session=session, cipher=ctx.cipher, name=gateway_name, config=data.config, enabled=data.enabled,
            updated_by=admin, public_base_url=ctx.settings.public_base_url)
    async with ctx.db.read_session() as session:
        await gateway_configuration.refresh_registry(session=session, cipher=ctx.cipher, http=ctx.http,
                                                     registry=ctx.gateways,
                                                     public_base_url=ctx.settings.public_base_url)
    admin_logger.info("gateway %s configuration saved by %s (enabled=%s)", gateway_name, admin, data.enabled)
    return next(item for item in await _describe(ctx) if item.name == gateway_name)


@reconciliation_router.get("/reconciliation", response_model=ReconciliationReport,
                  summary="Daily reconciliation (对账) with the gateways",
                  description="Lists every difference; a payment the gateway has and we missed is confirmed now.")
async def reconcile(
    ctx: ContextDep, _: PlatformAdminDep,
    date: Annotated[dt.date, Query(description="Shop-local day, YYYY-MM-DD")],
    gateway: Annotated[str | None, Query(max_length=32, pattern=r"^[a-z0-9_]+$")] = None,
) -> ReconciliationReport:
    return await reconciliation.reconcile_day(db=ctx.db, gateways=ctx.gateways, day=date,
                                              timezone=ctx.settings.shop_timezone, gateway_name=gateway)
