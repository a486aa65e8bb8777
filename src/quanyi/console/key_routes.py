"""Card-key pages (卡密库存): stock per SKU, import batches, void, masked keys with the audited staff reveal, and
leak tracing, through the inventory services the admin API uses."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

import quanyi.console.texts.keys  # noqa: F401 - registers the texts
from quanyi.catalog import service as catalog_service
from quanyi.catalog.models import DeliveryType
from quanyi.console.auth import ConsoleUser, console_router, needs
from quanyi.console.menu import MenuItem, register
from quanyi.console.order_routes import contact_of
from quanyi.console.rendering import render_page
from quanyi.deps import ContextDep
from quanyi.errors import DomainError
from quanyi.inventory import leaks, shared_codes, staff_access
from quanyi.inventory import service as inventory_service
from quanyi.orders import search as order_search
from quanyi.staff.audit import record_action

__all__ = ["router"]

router: APIRouter = console_router("/console/keys")
register(MenuItem("keys", "/console/keys", "card_keys.manage", group="stock", order=10, icon="key"))
register(MenuItem("leaks", "/console/keys/leaks", "leaks.trace", group="stock", order=30, icon="alert"))

Manager = Annotated[ConsoleUser, needs("card_keys.manage")]
SkuId = Annotated[int, Path(ge=1, le=2_147_483_647)]
BatchId = Annotated[int, Path(ge=1, le=2_147_483_647)]
KeyId = Annotated[int, Path(ge=1, le=2**63 - 1)]
KEYS_PAGE = 100


def _message(exc: DomainError) -> tuple[str, dict[str, Any], str]:
    return "err." + exc.code, {"detail": exc.message}, "err"


@router.get("", response_class=HTMLResponse)
async def stock(request: Request, ctx: ContextDep, user: Manager) -> HTMLResponse:
    rows = []
    async with ctx.db.read_session() as session:
        for product in await catalog_service.list_products(session=session, active_only=False,
                                                                  scope=user.scope):
            for sku in product.skus:
                if sku.delivery_type in (DeliveryType.CARD_KEY, DeliveryType.SHARED_CODE):
                    summary = await inventory_service.stock_summary(session=session, sku_id=sku.id)
                    rows.append((product, sku, summary))
    return render_page(request, "console/keys.html", {"rows": rows, "threshold": ctx.settings.low_stock_threshold},
                       user=user, active="keys")


async def _sku_page(request: Request, ctx: ContextDep, user: ConsoleUser, sku_id: int, *,
                    message: tuple[str, dict[str, Any], str] | None = None, status_code: int = 200) -> HTMLResponse:
    async with ctx.db.read_session() as session:
        sku = await catalog_service.get_sku(session=session, sku_id=sku_id, scope=user.scope)
        summary = await inventory_service.stock_summary(session=session, sku_id=sku.id)
        batches = await inventory_service.list_batches(session=session, sku_id=sku.id)
        shared = await shared_codes.shared_code_batch_ids(session=session, batch_ids=[b.id for b in batches])
    return render_page(request, "console/key_sku.html", {"sku": sku, "summary": summary, "batches": batches,
                                                         "shared_batches": shared, "message": message},
                       user=user, active="keys", status_code=status_code)


@router.get("/skus/{sku_id}", response_class=HTMLResponse)
async def sku_batches(sku_id: SkuId, request: Request, ctx: ContextDep, user: Manager) -> HTMLResponse:
    message = None
    if request.query_params.get("m") == "voided":
        message = ("m.voided", {"count": request.query_params.get("count", "0")[:12]}, "ok")
    return await _sku_page(request, ctx, user, sku_id, message=message)


@router.post("/batches/{batch_id}/void", response_class=HTMLResponse)
async def void(batch_id: BatchId, request: Request, ctx: ContextDep, user: Manager) -> Response:
    reason = str((await request.form()).get("reason", "")).strip()[:500]
    async with ctx.db.read_session() as session:
        sku_id = (await inventory_service.get_batch(session=session, batch_id=batch_id, scope=user.scope)).sku_id
    if not reason:
        return await _sku_page(request, ctx, user, sku_id, message=("err.reason_required", {}, "err"),
                               status_code=422)
    try:
        async with ctx.db.transaction() as session:
            batch = await inventory_service.void_batch(session=session, batch_id=batch_id, reason=reason,
                                                       scope=user.scope)
            await record_action(session=session, actor=user.actor, action="batch_voided", object_type="batch",
                                object_id=batch_id, summary=f"{batch.voided_count} keys: {reason}")
            count = batch.voided_count
    except inventory_service.SharedCodeBatch:  # said without its English detail: the row links to the code's page
        return await _sku_page(request, ctx, user, sku_id, message=("err.shared_code_batch", {}, "err"),
                               status_code=409)
    except DomainError as exc:
        return await _sku_page(request, ctx, user, sku_id, message=_message(exc), status_code=409)
    return RedirectResponse(f"/console/keys/skus/{sku_id}?{urlencode({'m': 'voided', 'count': count})}",
                            status_code=303)


@router.get("/batches/{batch_id}", response_class=HTMLResponse)
async def batch_keys(batch_id: BatchId, request: Request, ctx: ContextDep, user: Manager,
                     after: Annotated[int, Query(ge=0, le=2**63 - 1)] = 0) -> HTMLResponse:
    async with ctx.db.read_session() as session:
        batch = await inventory_service.get_batch(session=session, batch_id=batch_id, scope=user.scope)
        sku = await catalog_service.get_sku(session=session, sku_id=batch.sku_id)
        shared = bool(await shared_codes.shared_code_batch_ids(session=session, batch_ids=[batch_id]))
        keys = await staff_access.list_masked_keys(session=session, cipher=ctx.cipher, batch_id=batch_id,
                                                   after_id=after, limit=KEYS_PAGE + 1)
        orders = {o.id: o.order_no for o in await order_search.orders_by_ids(
            session=session, order_ids=[k.order_id for k in keys if k.order_id])}
    more = len(keys) > KEYS_PAGE
    keys = keys[:KEYS_PAGE]
    return render_page(request, "console/key_batch.html", {
        "batch": batch, "sku": sku, "keys": keys, "orders": orders, "shared": shared,
        "next_url": f"/console/keys/batches/{batch_id}?after={keys[-1].id}" if more else None,
        "min_reason": ctx.settings.staff_reveal_reason_min_length,
    }, user=user, active="keys")


@router.post("/{card_key_id}/reveal", response_class=HTMLResponse)
async def reveal(card_key_id: KeyId, request: Request, ctx: ContextDep,
                 user: Annotated[ConsoleUser, needs("card_keys.reveal")]) -> HTMLResponse:
    """The plaintext of one key, for a reason; the reveal log and the audit log are written with it."""
    reason = str((await request.form()).get("reason", ""))[:500]
    try:
        async with ctx.db.transaction() as session:
            revealed = await staff_access.staff_reveal_card_key(
                session=session, cipher=ctx.cipher, card_key_id=card_key_id, actor=user.name, reason=reason,
                ip=user.ip, user_agent=user.user_agent, min_reason_length=ctx.settings.staff_reveal_reason_min_length,
                scope=user.scope)
            await record_action(session=session, actor=user.actor, action="card_key_revealed", object_type="card_key",
                                object_id=card_key_id, summary=reason.strip())
    except DomainError as exc:
        return render_page(request, "console/key_revealed.html", {"revealed": None, "message": _message(exc)},
                           user=user, active="keys", status_code=422)
    return render_page(request, "console/key_revealed.html", {"revealed": revealed, "message": None}, user=user,
                       active="keys")


@router.get("/leaks", response_class=HTMLResponse)
async def leak_form(request: Request, user: Annotated[ConsoleUser, needs("leaks.trace")]) -> HTMLResponse:
    return render_page(request, "console/leaks.html", {"report": None, "text": ""}, user=user, active="leaks")


@router.post("/leaks", response_class=HTMLResponse)
async def trace(request: Request, ctx: ContextDep, user: Annotated[ConsoleUser, needs("leaks.trace")]) -> HTMLResponse:
    form = await request.form()
    text = str(form.get("codes", ""))[:2_000_000]
    mark, void_batches = form.get("mark") == "on", form.get("void_batches") == "on"
    async with ctx.db.transaction() as session:
        report = await leaks.trace_leaked_codes(session=session, cipher=ctx.cipher, text=text, actor=user.name,
                                                mark_leaked=mark, void_batches=void_batches, scope=user.scope)
        stopped = len(report.stopped_shared_codes)
        await record_action(session=session, actor=user.actor, action="leaks_traced", object_type="leak_report",
                            object_id=report.report_id or "",
                            summary=f"{report.submitted} submitted, {report.found} found, {report.withdrawn} withdrawn"
                                    + (f", {stopped} shared codes stopped" if stopped else "")
                                    + (", batches voided" if void_batches else ""))
    return render_page(request, "console/leaks.html", {
        "report": report, "text": "", "contact": lambda order: contact_of(user, order.contact_kind, order.contact),
    }, user=user, active="leaks")
