"""Refund admin API: request a refund of an order (executed at once), list refunds, retry a refused or stalled
one, withdraw a refused one."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Path, Query, Request, Response

from quanyi.deps import AdminDep, ContextDep, PrincipalDep, ReadSessionDep, ScopeDep, client_ip, user_agent
from quanyi.orders import service as orders_service
from quanyi.refunds import recovery
from quanyi.refunds import service as refunds_service
from quanyi.refunds.schemas import RefundCreate, RefundRead, RefundWithdraw
from quanyi.refunds.state import RefundStatus
from quanyi.staff.audit import Actor, record_action

router = APIRouter(prefix="/api/admin", tags=["admin: refunds"])

OrderNoPath = Annotated[str, Path(min_length=1, max_length=64, description="Order number")]
RefundNoPath = Annotated[str, Path(pattern=r"^RF[0-9A-Z]{18}$")]
IdempotencyKey = Annotated[str | None, Header(alias="Idempotency-Key", min_length=8, max_length=64,
                                              pattern=r"^[A-Za-z0-9_.:-]+$")]


async def _show(ctx: ContextDep, refund_id: int) -> RefundRead:
    async with ctx.db.read_session() as session:
        refund = await refunds_service.get_refund_by_id(session=session, refund_id=refund_id)
        return (await refunds_service.describe_refunds(session=session, refunds=[refund]))[0]


@router.post("/orders/{order_no}/refunds", response_model=RefundRead, status_code=201,
             summary="Refund (part of) an order; sent to the gateway at once, answered with the resulting state",
             responses={200: {"description": "Repeated Idempotency-Key: the refund it created"},
                        409: {"description": "Not refundable, or more than is left to refund"}})
async def create_refund(order_no: OrderNoPath, data: RefundCreate, ctx: ContextDep, admin: AdminDep,
                        scope: ScopeDep, response: Response, idempotency_key: IdempotencyKey = None) -> RefundRead:
    async with ctx.db.transaction() as session:
        order = await orders_service.get_order(session=session, order_no=order_no, scope=scope)
        refund, created = await refunds_service.request_refund(
            session=session, order_id=order.id, reason=data.reason, requested_by=admin,
            amount_cents=data.amount_cents, quantity=data.quantity, payment_no=data.payment_no,
            request_key=idempotency_key, refund_revealed_keys=ctx.settings.refund_revealed_keys,
        )
        refund_id = refund.id
    # Committed: the refund exists whatever happens next. Now the gateway call, outside any transaction.
    if created:
        await refunds_service.execute_refund(db=ctx.db, gateways=ctx.gateways, refund_id=refund_id)
    else:
        response.status_code = 200
    return await _show(ctx, refund_id)


@router.get("/orders/{order_no}/refunds", response_model=list[RefundRead], summary="Refunds of one order")
async def order_refunds(order_no: OrderNoPath, session: ReadSessionDep, _: AdminDep,
                        scope: ScopeDep) -> list[RefundRead]:
    order = await orders_service.get_order(session=session, order_no=order_no, scope=scope)
    refunds = await refunds_service.list_refunds(session=session, order_id=order.id)
    return await refunds_service.describe_refunds(session=session, refunds=refunds)


@router.get("/refunds", response_model=list[RefundRead], summary="Latest refunds (200), optionally by status")
async def all_refunds(session: ReadSessionDep, _: AdminDep, scope: ScopeDep,
                      status: Annotated[RefundStatus | None, Query()] = None) -> list[RefundRead]:
    refunds = await refunds_service.list_refunds(session=session, status=status.value if status else None,
                                                 scope=scope)
    return await refunds_service.describe_refunds(session=session, refunds=refunds)


@router.post("/refunds/{refund_no}/retry", response_model=RefundRead,
             summary="Send a refused or stalled refund again (same refund number, so it can never be paid twice)",
             responses={409: {"description": "Not refused or stalled, or the payment is used up by other refunds"}})
async def retry_refund(refund_no: RefundNoPath, ctx: ContextDep, admin: AdminDep, scope: ScopeDep,
                       principal: PrincipalDep, request: Request) -> RefundRead:
    async with ctx.db.transaction() as session:
        refund = await recovery.retry_refund(session=session, refund_no=refund_no, actor=admin,
                                             reason="retried by an operator", scope=scope)
        refund_id = refund.id
        await record_action(session=session, actor=_actor(principal, request), action="refund_retried",
                            object_type="refund", object_id=refund.refund_no, summary="retried by an operator")
    await refunds_service.execute_refund(db=ctx.db, gateways=ctx.gateways, refund_id=refund_id)
    return await _show(ctx, refund_id)


@router.post("/refunds/{refund_no}/withdraw", response_model=RefundRead,
             summary="Withdraw a refund the gateway refused: the buyer keeps the goods, delivery of a paid order "
                     "resumes",
             responses={409: {"description": "Not a refused refund (only those can be withdrawn)"}})
async def withdraw_refund(refund_no: RefundNoPath, data: RefundWithdraw, ctx: ContextDep, admin: AdminDep,
                          scope: ScopeDep, principal: PrincipalDep, request: Request) -> RefundRead:
    async with ctx.db.transaction() as session:
        done = await recovery.withdraw_refund(session=session, refund_no=refund_no, actor=admin, reason=data.reason,
                                              scope=scope)
        refund_id = done.refund.id
        await record_action(session=session, actor=_actor(principal, request), action="refund_withdrawn",
                            object_type="refund", object_id=done.refund.refund_no,
                            summary=recovery.withdrawal_summary(done, data.reason))
    return await _show(ctx, refund_id)


def _actor(principal: PrincipalDep, request: Request) -> Actor:
    return Actor(name=principal.name, staff_id=principal.staff_id, ip=client_ip(request),
                 user_agent=user_agent(request))
