"""Supplier pages (供应商): each supplier's prepaid balance, circuit state and sync state, the SKUs it fills
(mappings: priority, on/off), its synced catalog; pull now, pause or resume. Through the same supplier services as
the admin API; a merchant's staff see and act on their merchant's suppliers only."""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import Path, Request
from fastapi.responses import HTMLResponse, Response

import quanyi.console.texts.suppliers  # noqa: F401 - registers the texts
from quanyi.console import forms
from quanyi.console.auth import ConsoleUser, console_router, needs
from quanyi.console.menu import MenuItem, register
from quanyi.console.rendering import render_page
from quanyi.deps import ContextDep
from quanyi.errors import DomainError, NotFound
from quanyi.ledger import service as ledger_service
from quanyi.money import format_money
from quanyi.staff.audit import record_action
from quanyi.staff.permissions import ADMIN
from quanyi.suppliers import mapping as mapping_service
from quanyi.suppliers import records as records_service
from quanyi.suppliers.adapter import credential_fields
from quanyi.suppliers.models import SettlementCycle, SupplierStatus
from quanyi.suppliers.schemas import MappingUpdate, SupplierUpdate
from quanyi.suppliers.sync import pull_supplier

__all__ = ["router", "supplier_page", "SupplierCode"]

router = console_router("/console/suppliers")
register(MenuItem("suppliers", "/console/suppliers", "suppliers.manage", group="supply", order=10, icon="truck"))

Manager = Annotated[ConsoleUser, needs("suppliers.manage")]
SupplierCode = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")]
MappingId = Annotated[int, Path(ge=1, le=2_147_483_647)]
MESSAGES = ("created", "settings_saved", "synced", "sync_failed", "status_saved", "mapping_saved", "topped_up",
            "top_up_repeated")
# Money paid into a supplier's prepaid balance: the owner's (a merchant's owner: their merchant's suppliers).
Payer = Annotated[ConsoleUser, needs(ADMIN)]


@router.get("", response_class=HTMLResponse)
async def supplier_list(request: Request, ctx: ContextDep, user: Manager) -> HTMLResponse:
    async with ctx.db.read_session() as session:
        suppliers = [await records_service.describe_supplier(session=session, cipher=ctx.cipher, supplier=s)
                     for s in await records_service.list_suppliers(session=session, scope=user.scope)]
    return render_page(request, "console/suppliers.html", {"suppliers": suppliers}, user=user, active="suppliers")


async def supplier_page(request: Request, ctx: ContextDep, user: ConsoleUser, code: str, *,
                        message: forms.Message | None = None, status_code: int = 200) -> HTMLResponse:
    """A supplier's page, with what just happened (or was refused)."""
    try:
        async with ctx.db.read_session() as session:
            supplier = await records_service.get_supplier_by_code(session=session, code=code, scope=user.scope)
            described = await records_service.describe_supplier(session=session, cipher=ctx.cipher,
                                                                supplier=supplier)
            mappings = await mapping_service.list_supplier_mappings(session=session, code=code, scope=user.scope)
            products = await mapping_service.list_supplier_products(session=session, code=code, scope=user.scope)
    except NotFound:
        return forms.not_found(request, user, active="suppliers")
    return render_page(request, "console/supplier.html", {
        "s": described, "mappings": mappings, "products": products, "statuses": list(SupplierStatus),
        "credential_fields": credential_fields(supplier.dialect), "cycles": list(SettlementCycle),
        "message": message, "request_key": secrets.token_urlsafe(16),
    }, user=user, active="suppliers", status_code=status_code)


@router.get("/{supplier_code}", response_class=HTMLResponse)
async def supplier_detail(supplier_code: SupplierCode, request: Request, ctx: ContextDep,
                          user: Manager) -> HTMLResponse:
    message = forms.flash(request, "sup", MESSAGES, warn=("sync_failed", "top_up_repeated"),
                          values=("seen", "new", "updated", "vanished", "detail", "status", "amount"))
    return await supplier_page(request, ctx, user, supplier_code, message=message)


@router.post("/{supplier_code}/sync", response_class=HTMLResponse)
async def sync_now(supplier_code: SupplierCode, request: Request, ctx: ContextDep, user: Manager) -> Response:
    form = await request.form()
    full = str(form.get("mode", "catalog")) != "quotes"
    try:
        async with ctx.db.read_session() as session:
            supplier = await records_service.get_supplier_by_code(session=session, code=supplier_code,
                                                                  scope=user.scope)
        result = await pull_supplier(db=ctx.db, cipher=ctx.cipher, http=ctx.http, supplier_id=supplier.id, full=full)
    except DomainError as exc:
        return await supplier_page(request, ctx, user, supplier_code, message=forms.error(exc),
                           status_code=forms.status_for(exc))
    summary = (f"{result.mode}: ok={result.ok} seen={result.products_seen} new={result.new_products} "
               f"updated={result.updated} {result.error or ''}").strip()
    async with ctx.db.transaction() as session:
        await record_action(session=session, actor=user.actor, action="supplier_synced", object_type="supplier",
                            object_id=supplier.code, summary=summary)
    url = f"/console/suppliers/{supplier.code}"
    if not result.ok:
        return forms.back(url, "sync_failed", detail=result.error or "")
    return forms.back(url, "synced", seen=str(result.products_seen), new=str(result.new_products),
                      updated=str(result.updated), vanished=str(result.vanished))


@router.post("/{supplier_code}/status", response_class=HTMLResponse)
async def set_status(supplier_code: SupplierCode, request: Request, ctx: ContextDep, user: Manager) -> Response:
    form = await request.form()
    try:
        raw = forms.text(form, "status", max_length=16, required=True)
        if raw not in SupplierStatus.__members__.values():
            raise forms.FormError(f"status must be one of {', '.join(SupplierStatus)}", field="status")
        async with ctx.db.transaction() as session:
            supplier = await records_service.update_supplier(
                session=session, cipher=ctx.cipher, http=ctx.http, code=supplier_code,
                data=SupplierUpdate(status=SupplierStatus(raw)), scope=user.scope)
            await record_action(session=session, actor=user.actor, action="supplier_status_set",
                                object_type="supplier", object_id=supplier.code, summary=raw)
            code = supplier.code
    except DomainError as exc:
        return await supplier_page(request, ctx, user, supplier_code, message=forms.error(exc),
                           status_code=forms.status_for(exc))
    return forms.back(f"/console/suppliers/{code}", "status_saved", status=raw)


@router.post("/{supplier_code}/mappings/{mapping_id}", response_class=HTMLResponse)
async def update_mapping(supplier_code: SupplierCode, mapping_id: MappingId, request: Request, ctx: ContextDep,
                         user: Manager) -> Response:
    form = await request.form()
    try:
        priority = forms.integer(form, "priority", minimum=0, maximum=10_000)
        enabled = forms.checkbox(form, "enabled")
        async with ctx.db.transaction() as session:
            mapping = await mapping_service.update_mapping(
                session=session, mapping_id=mapping_id, data=MappingUpdate(priority=priority, enabled=enabled),
                scope=user.scope, supplier_code=supplier_code)
            await record_action(session=session, actor=user.actor, action="supplier_mapping_updated",
                                object_type="supplier_mapping", object_id=mapping.id,
                                summary=f"{supplier_code} sku {mapping.sku_id}: priority={priority} enabled={enabled}")
    except DomainError as exc:
        return await supplier_page(request, ctx, user, supplier_code, message=forms.error(exc),
                           status_code=forms.status_for(exc))
    return forms.back(f"/console/suppliers/{supplier_code}", "mapping_saved")


@router.post("/{supplier_code}/top-up", response_class=HTMLResponse)
async def top_up(supplier_code: SupplierCode, request: Request, ctx: ContextDep, user: Payer) -> Response:
    form = await request.form()
    try:
        async with ctx.db.transaction() as session:
            supplier = await ledger_service.get_supplier(session=session, code=supplier_code, scope=user.scope)
            cents = forms.amount(form, "amount", supplier.currency)
            note = forms.text(form, "note", max_length=500)
            key = forms.text(form, "request_key", max_length=64, required=True)
            before = supplier.balance_cents
            # The form's one-time key is the posting reference: pressing the button twice credits once.
            await ledger_service.top_up_supplier(session=session, supplier_id=supplier.id, amount_cents=cents,
                                                 note=note, actor=user.name, reference=f"console:{key}")
            await session.refresh(supplier)
            credited = supplier.balance_cents != before
            if credited:
                await record_action(session=session, actor=user.actor, action="supplier_topped_up",
                                    object_type="supplier", object_id=supplier.code,
                                    summary=f"{cents} cents {supplier.currency}: {note}")
            code, currency = supplier.code, supplier.currency
    except NotFound:
        return forms.not_found(request, user, active="suppliers")
    except DomainError as exc:
        return await supplier_page(request, ctx, user, supplier_code, message=forms.error(exc),
                           status_code=forms.status_for(exc))
    return forms.back(f"/console/suppliers/{code}", "topped_up" if credited else "top_up_repeated",
                      amount=format_money(cents, currency))
