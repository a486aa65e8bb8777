"""HTTP for supplier fulfilment: the recharge callback suppliers call, and the admin's attempt list."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request
from fastapi.responses import Response

from quanyi.deps import AdminDep, ContextDep, ReadSessionDep, ScopeDep
from quanyi.orders import service as orders_service
from quanyi.suppliers import recharge
from quanyi.suppliers.fulfilment_schemas import AttemptRead, OrderFulfilmentRead

router = APIRouter(prefix="/api/suppliers", tags=["suppliers"])
admin_router = APIRouter(prefix="/api/admin/orders", tags=["admin: suppliers"])

SupplierCodePath = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.\-]+$")]
OrderNoPath = Annotated[str, Path(max_length=64)]
_MAX_CALLBACK_BYTES = 256 * 1024


@router.post("/{code}/recharge-callback", summary="A supplier reports a direct recharge's progress",
             responses={400: {"description": "Not authentic or not understood"},
                        404: {"description": "No such supplier"}})
async def recharge_callback(code: SupplierCodePath, request: Request, ctx: ContextDep) -> Response:
    body = await request.body()
    if len(body) > _MAX_CALLBACK_BYTES:
        raise recharge.RechargeCallbackRejected("callback body too large")
    ack = await recharge.handle_recharge_callback(db=ctx.db, cipher=ctx.cipher, http=ctx.http, supplier_code=code,
                                                  headers=dict(request.headers), body=body)
    return Response(content=ack.body, status_code=ack.status_code, media_type=ack.media_type)


@admin_router.get("/{order_no}/supplier-attempts", response_model=OrderFulfilmentRead,
                  summary="A paid order's purchases and recharges at suppliers (supplier, key, state, cost, error)")
async def order_supplier_attempts(order_no: OrderNoPath, session: ReadSessionDep, _: AdminDep,
                                  scope: ScopeDep) -> OrderFulfilmentRead:
    order = await orders_service.get_order(session=session, order_no=order_no, scope=scope)
    job, attempts = await recharge.order_attempts(session=session, order_id=order.id)
    return OrderFulfilmentRead(
        order_no=order.order_no, order_status=order.status.value,
        job_status=job.status.value if job else None, job_outcome=job.outcome if job else None,
        job_next_attempt_at=job.next_attempt_at if job else None, job_last_error=job.last_error if job else None,
        attempts=[AttemptRead(
            id=a.id, supplier_code=code, product_code=a.product_code, kind=a.kind.value,
            idempotency_key=a.idempotency_key, state=a.state.value, quantity=a.quantity,
            max_unit_cost_cents=a.max_unit_cost_cents, unit_cost_cents=a.unit_cost_cents,
            charged_cents=a.charged_cents, supplier_order_no=a.supplier_order_no, codes_received=a.codes_received,
            codes_duplicate=a.codes_duplicate, batch_id=a.batch_id, error=a.error, checks=a.checks,
            created_at=a.created_at, updated_at=a.updated_at, finished_at=a.finished_at) for a, code in attempts])
