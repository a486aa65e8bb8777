"""Payment HTTP: start a payment for an order; receive gateway notifications."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import Response

from quanyi.deps import AdminDep, ContextDep, SessionDep, base_url, client_ip
from quanyi.errors import DomainError
from quanyi.orders import service as orders_service
from quanyi.orders.dependencies import OrderNoDep
from quanyi.orders.schemas import PaymentStart, PaymentStartRequest
from quanyi.payments import reconciliation
from quanyi.payments import service as payments_service
from quanyi.payments.gateway import NotificationRejected
from quanyi.payments.schemas import ReconciliationReport

router = APIRouter(tags=["payments"])
admin_router = APIRouter(prefix="/api/admin", tags=["admin: payments"])
logger = logging.getLogger("quanyi.payments.notify")

_MAX_NOTIFY_BYTES = 64 * 1024


@router.post("/api/orders/{order_no}/payments", response_model=PaymentStart, status_code=201,
             summary="Start paying an order: returns the gateway's cashier URL")
async def start_payment(
    order_no: OrderNoDep, request: Request, session: SessionDep, ctx: ContextDep,
    data: PaymentStartRequest | None = None,
) -> PaymentStart:
    gateway = ctx.gateways.get((data or PaymentStartRequest()).gateway)
    order = await orders_service.get_order(session=session, order_no=order_no)
    root = base_url(request, ctx)
    notify_url, return_url = payments_service.callback_urls(root, gateway.name, order.order_no)
    payment, cashier_url = await payments_service.start_payment(
        session=session, order_id=order.id, gateway=gateway, notify_url=notify_url, return_url=return_url,
    )
    if cashier_url.startswith("/"):
        cashier_url = root + cashier_url
    return PaymentStart(payment_no=payment.payment_no, gateway=gateway.name, cashier_url=cashier_url,
                        amount_cents=payment.amount_cents, currency=payment.currency)


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
    body = await request.body()
    try:
        if len(body) > _MAX_NOTIFY_BYTES:
            raise NotificationRejected("notification body too large")
        async with ctx.db.transaction() as session:
            effect = await payments_service.handle_notification(
                session=session, gateway=gateway, headers=request.headers, body=body
            )
    except DomainError as exc:
        logger.warning("payment notification rejected: gateway=%s code=%s reason=%s ip=%s",
                       gateway.name, exc.code, exc.message, client_ip(request))
        reply = gateway.refuse(exc.message)
        return Response(reply.body, status_code=reply.status_code, media_type=reply.media_type)
    # Only here, after the commit above, do we tell the gateway to stop re-sending.
    logger.info("payment notification accepted: gateway=%s effect=%s", gateway.name, effect)
    reply = gateway.acknowledge()
    return Response(reply.body, status_code=reply.status_code, media_type=reply.media_type)


@admin_router.get("/reconciliation", response_model=ReconciliationReport,
                  summary="Daily reconciliation (对账) with the gateways",
                  description="Lists every difference; a payment the gateway has and we missed is confirmed now.")
async def reconcile(
    ctx: ContextDep, _: AdminDep,
    date: Annotated[dt.date, Query(description="Shop-local day, YYYY-MM-DD")],
    gateway: Annotated[str | None, Query(max_length=32, pattern=r"^[a-z0-9_]+$")] = None,
) -> ReconciliationReport:
    return await reconciliation.reconcile_day(db=ctx.db, gateways=ctx.gateways, day=date,
                                              timezone=ctx.settings.shop_timezone, gateway_name=gateway)
