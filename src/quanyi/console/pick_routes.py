"""自选卡密 labels: the operator names each sellable key of a pick-your-key SKU ("账号 #12 · 80级") so buyers can
choose one; the page shows codes masked, buyers see only the labels. Through `inventory.picking`."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

import quanyi.console.texts.catalog  # noqa: F401 - registers the texts
from quanyi.catalog import service as catalog_service
from quanyi.console.auth import ConsoleUser, console_router, needs
from quanyi.console.rendering import render_page
from quanyi.deps import ContextDep
from quanyi.errors import DomainError
from quanyi.inventory import picking
from quanyi.staff.audit import record_action

__all__ = ["router"]

router: APIRouter = console_router("/console/catalog/picks")
Editor = Annotated[ConsoleUser, needs("catalog.manage")]
SkuId = Annotated[int, Path(ge=1, le=2_147_483_647)]
PAGE = 100
MAX_LABELS = 500  # fields one form may carry


async def _page(request: Request, ctx: ContextDep, user: ConsoleUser, sku_id: int, after: int, *,
                message: tuple[str, dict[str, str], str] | None = None, status_code: int = 200) -> HTMLResponse:
    async with ctx.db.read_session() as session:
        sku = await catalog_service.get_sku(session=session, sku_id=sku_id, scope=user.scope)
        keys = await picking.labelled_stock(session=session, cipher=ctx.cipher, sku_id=sku.id, after_id=after,
                                            limit=PAGE + 1)
    more = len(keys) > PAGE
    keys = keys[:PAGE]
    return render_page(request, "console/catalog_picks.html", {
        "sku": sku, "keys": keys, "after": after, "message": message,
        "next_url": f"/console/catalog/picks/{sku_id}?after={keys[-1].id}" if more else None,
    }, user=user, active="catalog", status_code=status_code)


@router.get("/{sku_id}", response_class=HTMLResponse)
async def labels_page(sku_id: SkuId, request: Request, ctx: ContextDep, user: Editor,
                      after: Annotated[int, Query(ge=0, le=2**63 - 1)] = 0) -> HTMLResponse:
    message = ("catalog.m.labelled", {"count": request.query_params.get("count", "0")[:8]}, "ok") \
        if request.query_params.get("m") == "labelled" else None
    return await _page(request, ctx, user, sku_id, after, message=message)


@router.post("/{sku_id}", response_class=HTMLResponse)
async def save_labels(sku_id: SkuId, request: Request, ctx: ContextDep, user: Editor) -> Response:
    form = await request.form()
    labels: dict[int, str] = {}
    for name, value in form.multi_items():
        if name.startswith("label-") and name[6:].isascii() and name[6:].isdigit() and len(name) < 26:
            labels[int(name[6:])] = str(value)[:1000]
    after = str(form.get("after", "0"))
    after_id = int(after) if after.isascii() and after.isdigit() and len(after) < 19 else 0
    if len(labels) > MAX_LABELS:
        return await _page(request, ctx, user, sku_id, after_id, status_code=422,
                           message=("catalog.error", {"detail": f"at most {MAX_LABELS} keys at a time"}, "err"))
    try:
        async with ctx.db.transaction() as session:
            sku = await catalog_service.get_sku(session=session, sku_id=sku_id, scope=user.scope)
            changed = await picking.label_card_keys(session=session, sku_id=sku.id, labels=labels, scope=user.scope)
            await record_action(session=session, actor=user.actor, action="card_keys_labelled", object_type="sku",
                                object_id=sku_id, summary=f"{sku.code}: {changed} labels changed")
    except catalog_service.SkuNotFound:
        raise
    except DomainError as exc:
        status = 404 if exc.code.endswith("not_found") else 422
        return await _page(request, ctx, user, sku_id, after_id, status_code=status,
                           message=("catalog.error", {"detail": exc.message}, "err"))
    return RedirectResponse(f"/console/catalog/picks/{sku_id}?after={after_id}&m=labelled&count={changed}",
                            status_code=303)
