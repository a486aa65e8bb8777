"""The stock pages of two product types. 自选卡密 labels: the operator names each sellable key of a pick-your-key
SKU ("账号 #12 · 80级") so buyers can choose one (codes masked; buyers see only the labels; `inventory.picking`).
循环卡密 shared codes: add a code sold to many buyers with its sale limit, see its counter, change the limit or stop
selling it (`inventory.shared_codes`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

import quanyi.console.texts.catalog  # noqa: F401 - registers the texts
from quanyi.catalog import service as catalog_service
from quanyi.catalog.models import DeliveryType
from quanyi.console.auth import ConsoleUser, console_router, needs
from quanyi.console.rendering import render_page
from quanyi.deps import ContextDep
from quanyi.errors import DomainError
from quanyi.inventory import picking, shared_codes
from quanyi.staff.audit import record_action

__all__ = ["router"]

router: APIRouter = console_router("/console/catalog")
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


@router.get("/picks/{sku_id}", response_class=HTMLResponse)
async def labels_page(sku_id: SkuId, request: Request, ctx: ContextDep, user: Editor,
                      after: Annotated[int, Query(ge=0, le=2**63 - 1)] = 0) -> HTMLResponse:
    message = ("catalog.m.labelled", {"count": request.query_params.get("count", "0")[:8]}, "ok") \
        if request.query_params.get("m") == "labelled" else None
    return await _page(request, ctx, user, sku_id, after, message=message)


@router.post("/picks/{sku_id}", response_class=HTMLResponse)
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


# ---------------------------------------------------------------- 循环卡密 shared codes

async def _shared_page(request: Request, ctx: ContextDep, user: ConsoleUser, sku_id: int, *,
                       message: tuple[str, dict[str, str], str] | None = None, status_code: int = 200,
                       typed_limit: str = "") -> HTMLResponse:
    """`typed_limit`: the refused add form's limit, drawn again (its code is a secret: never echoed)."""
    async with ctx.db.read_session() as session:
        sku = await catalog_service.get_sku(session=session, sku_id=sku_id, scope=user.scope)
        codes = await shared_codes.list_shared_codes(session=session, cipher=ctx.cipher, sku_id=sku.id)
    return render_page(request, "console/catalog_shared.html", {"sku": sku, "codes": codes, "message": message,
                                                                "typed_limit": typed_limit},
                       user=user, active="catalog", status_code=status_code)


def _limit(text: str) -> int | None:
    text = text.strip()
    return int(text) if text.isascii() and text.isdigit() and len(text) <= 9 else None


@router.get("/shared/{sku_id}", response_class=HTMLResponse)
async def shared_page(sku_id: SkuId, request: Request, ctx: ContextDep, user: Editor) -> HTMLResponse:
    done = request.query_params.get("m")
    return await _shared_page(request, ctx, user, sku_id,
                              message=(f"catalog.m.{done}", {}, "ok") if done in ("created", "saved") else None)


@router.post("/shared/{sku_id}", response_class=HTMLResponse)
async def add_shared_code(sku_id: SkuId, request: Request, ctx: ContextDep, user: Editor) -> Response:
    form = await request.form()
    limit = _limit(str(form.get("sale_limit", "")))
    try:
        if limit is None:
            raise shared_codes.SharedCodeInvalid("give the sale limit as a whole number", field="sale_limit")
        async with ctx.db.transaction() as session:
            sku = await _shared_sku(session, sku_id, user)
            code = await shared_codes.add_shared_code(
                session=session, cipher=ctx.cipher, sku_id=sku.id, merchant_id=sku.merchant_id,
                text=str(form.get("code", ""))[:1000], sale_limit=limit, actor=user.name)
            await record_action(session=session, actor=user.actor, action="shared_code_added", object_type="sku",
                                object_id=sku_id, summary=f"{sku.code}: shared code #{code.id}, limit {limit}")
    except catalog_service.SkuNotFound:
        raise
    except DomainError as exc:
        return await _shared_page(request, ctx, user, sku_id, status_code=409 if exc.code.endswith("known") else 422,
                                  message=("catalog.error", {"detail": exc.message}, "err"),
                                  typed_limit=str(form.get("sale_limit", ""))[:9])
    return RedirectResponse(f"/console/catalog/shared/{sku_id}?m=created", status_code=303)


@router.post("/shared/{sku_id}/change", response_class=HTMLResponse)
async def change_shared_code(sku_id: SkuId, request: Request, ctx: ContextDep, user: Editor) -> Response:
    form = await request.form()
    code_id = _limit(str(form.get("code_id", "")))
    limit_text = str(form.get("sale_limit", "")).strip()
    try:
        if code_id is None or (limit_text and _limit(limit_text) is None):
            raise shared_codes.SharedCodeInvalid("give the sale limit as a whole number", field="sale_limit")
        active = {"on": True, "off": False}.get(str(form.get("active", "")))
        async with ctx.db.transaction() as session:
            sku = await _shared_sku(session, sku_id, user)
            code = await shared_codes.change_shared_code(
                session=session, sku_id=sku.id, shared_code_id=code_id, scope=user.scope,
                sale_limit=_limit(limit_text) if limit_text else None, active=active)
            await record_action(session=session, actor=user.actor, action="shared_code_changed", object_type="sku",
                                object_id=sku_id, summary=f"{sku.code}: shared code #{code.id}, limit "
                                                          f"{code.sale_limit}, {'on' if code.active else 'off'} sale")
    except catalog_service.SkuNotFound:
        raise
    except DomainError as exc:
        status = 404 if exc.code.endswith("not_found") else 422
        return await _shared_page(request, ctx, user, sku_id, status_code=status,
                                  message=("catalog.error", {"detail": exc.message}, "err"))
    return RedirectResponse(f"/console/catalog/shared/{sku_id}?m=saved", status_code=303)


async def _shared_sku(session, sku_id: int, user: ConsoleUser):  # type: ignore[no-untyped-def]
    sku = await catalog_service.get_sku(session=session, sku_id=sku_id, scope=user.scope)
    if sku.delivery_type is not DeliveryType.SHARED_CODE:
        raise shared_codes.SharedCodeInvalid(f"SKU {sku.code} is not a 循环卡密 SKU")
    return sku
