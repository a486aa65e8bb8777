"""Register a supplier from the console (新增供应商): its code, name, wire dialect and endpoint, the credentials that
dialect's adapter needs (write-only: sealed at once, never shown again, never drawn back into a refused form), and
its terms; later change its endpoint, terms or credentials (all of them typed again, or none: kept). Through the
same supplier service as the admin API (`POST|PATCH /api/admin/suppliers`) and `quanyi suppliers
add|set-credentials`, and like them it needs the admin permission (a merchant's owner holds it: they add and change
their own merchant's suppliers only; platform staff may name a merchant). Audited without any credential value."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Request
from fastapi.responses import HTMLResponse, Response

import quanyi.console.texts.suppliers  # noqa: F401 - registers the texts
from quanyi.console import forms
from quanyi.console.auth import ConsoleUser, console_router, needs
from quanyi.console.rendering import render_page
from quanyi.console.supplier_routes import SupplierCode, supplier_page
from quanyi.deps import ContextDep
from quanyi.errors import DomainError
from quanyi.merchants import service as merchants_service
from quanyi.money import CURRENCIES
from quanyi.staff.audit import record_action
from quanyi.staff.permissions import ADMIN
from quanyi.suppliers import records as records_service
from quanyi.suppliers.adapter import CredentialField, SupplierDialect, credential_fields, known_dialects
from quanyi.suppliers.models import SettlementCycle, SupplierStatus
from quanyi.suppliers.schemas import SupplierCreate, SupplierUpdate

__all__ = ["router"]

# Mounted before the supplier pages: /console/suppliers/new is this form, not a supplier (codes are upper case).
router = console_router("/console/suppliers")
# Who may register a supplier or change its endpoint, credit and credentials: what the admin API asks (admin; a
# merchant's owner holds it for their merchant), more than running one (suppliers.manage: sync, pause, mappings).
Registrar = Annotated[ConsoleUser, needs(ADMIN)]
CREDENTIAL_PREFIX = "cred_"  # form field of credential `name`: cred_<name>
DEFAULTS = {"code": "", "name": "", "base_url": "", "currency": "CNY", "credit_limit": "0", "timeout_ms": "5000",
            "settlement_cycle": SettlementCycle.DAILY.value, "status": SupplierStatus.ACTIVE.value,
            "merchant_code": ""}


def _dialect(raw: str) -> SupplierDialect:
    known = known_dialects()
    return next((d for d in known if d.value == raw), known[0] if SupplierDialect.QUANYI not in known
                else SupplierDialect.QUANYI)


async def _form(request: Request, ctx: ContextDep, user: ConsoleUser, dialect: SupplierDialect,
                typed: dict[str, Any], *, message: forms.Message | None = None,
                status_code: int = 200) -> HTMLResponse:
    merchants = []
    if user.scope.is_platform:
        async with ctx.db.read_session() as session:
            merchants = [m for m in await merchants_service.list_merchants(session=session) if not m.self_operated]
    return render_page(request, "console/supplier_new.html", {
        "dialect": dialect, "dialects": sorted(known_dialects(), key=lambda d: d is not SupplierDialect.QUANYI),
        "fields": credential_fields(dialect), "typed": typed,
        "merchants": merchants, "cycles": list(SettlementCycle), "statuses": list(SupplierStatus),
        "currencies": sorted(CURRENCIES), "message": message, "prefix": CREDENTIAL_PREFIX,
    }, user=user, active="suppliers", status_code=status_code)


@router.get("/new", response_class=HTMLResponse)
async def new_supplier(request: Request, ctx: ContextDep, user: Registrar) -> HTMLResponse:
    return await _form(request, ctx, user, _dialect(request.query_params.get("dialect", "")), dict(DEFAULTS))


def _credentials(form: Any, fields: tuple[CredentialField, ...]) -> dict[str, str]:
    """The credentials typed for the dialect's fields; every field is needed (the adapter refuses a missing one)."""
    found = {}
    for field in fields:
        value = str(form.get(CREDENTIAL_PREFIX + field.name, "") or "").strip()
        if not value:
            raise forms.FormError(f"credential {field.name} is required", field=CREDENTIAL_PREFIX + field.name)
        found[field.name] = value
    return found


def _typed(form: Any, fields: tuple[CredentialField, ...]) -> dict[str, Any]:
    """The form as typed, to draw again after a refusal: secret credentials are never sent back to the browser."""
    typed = {name: str(form.get(name, "") or "")[:500] for name in DEFAULTS}
    for field in fields:
        if not field.secret:
            typed[CREDENTIAL_PREFIX + field.name] = str(form.get(CREDENTIAL_PREFIX + field.name, "") or "")[:500]
    return typed


@router.post("", response_class=HTMLResponse)
async def create_supplier(request: Request, ctx: ContextDep, user: Registrar) -> Response:
    form = await request.form()
    dialect = _dialect(str(form.get("dialect", "")))
    fields = credential_fields(dialect)
    try:
        if str(form.get("dialect", "")) != dialect.value:
            raise forms.FormError("dialect: choose one of " + ", ".join(d.value for d in known_dialects()),
                                  field="dialect")
        currency = forms.text(form, "currency", max_length=3, required=True).upper()
        if currency not in CURRENCIES:
            raise forms.FormError(f"currency must be one of {', '.join(sorted(CURRENCIES))}", field="currency")
        # A merchant's staff always add their own merchant's supplier, whatever the form says.
        merchant_code = forms.text(form, "merchant_code", max_length=32) if user.scope.is_platform else ""
        data = forms.validated(SupplierCreate, {
            "code": forms.text(form, "code", max_length=64), "name": forms.text(form, "name", max_length=200),
            "dialect": dialect.value, "base_url": forms.text(form, "base_url", max_length=500),
            "credentials": _credentials(form, fields),
            "settlement_cycle": forms.text(form, "settlement_cycle", max_length=16),
            "status": forms.text(form, "status", max_length=16), "currency": currency,
            "credit_limit_cents": forms.amount(form, "credit_limit", currency, allow_zero=True),
            "timeout_ms": forms.integer(form, "timeout_ms", minimum=100, maximum=120_000, default=5000),
            **({"merchant_code": merchant_code} if merchant_code else {})})
        async with ctx.db.transaction() as session:
            owner = await merchants_service.resolve_owner(session=session, scope=user.scope,
                                                          merchant_code=data.merchant_code)
            supplier = await records_service.create_supplier(session=session, cipher=ctx.cipher, http=ctx.http,
                                                             data=data, merchant_id=owner)
            # The audit names the credential fields set, never a value.
            await record_action(session=session, actor=user.actor, action="supplier_created", object_type="supplier",
                                object_id=supplier.code, summary=(
                                    f"{supplier.name}: {dialect.value} {supplier.base_url}, merchant #{owner}"
                                    f"{' ' + data.merchant_code if data.merchant_code else ''}, "
                                    f"credentials {', '.join(sorted(data.credentials))} (sealed), "
                                    f"{supplier.settlement_cycle.value}, credit {supplier.credit_limit_cents} "
                                    f"{supplier.currency}, status {supplier.status.value}"))
            code = supplier.code
    except DomainError as exc:
        return await _form(request, ctx, user, dialect, _typed(form, fields), message=forms.error(exc),
                           status_code=forms.status_for(exc))
    return forms.back(f"/console/suppliers/{code}", "created")


def _replacement(form: Any, fields: tuple[CredentialField, ...]) -> dict[str, str] | None:
    """New credentials: every field typed (they replace the stored ones whole), or none (kept as they are)."""
    typed = {f.name: str(form.get(CREDENTIAL_PREFIX + f.name, "") or "").strip() for f in fields}
    if not any(typed.values()):
        return None
    missing = [name for name, value in typed.items() if not value]
    if missing:
        raise forms.FormError("to replace the credentials type all of them (missing: " + ", ".join(missing)
                              + "); leave all blank to keep the stored ones", field=CREDENTIAL_PREFIX + missing[0])
    return typed


@router.post("/{supplier_code}/settings", response_class=HTMLResponse)
async def change_settings(supplier_code: SupplierCode, request: Request, ctx: ContextDep, user: Registrar) -> Response:
    form = await request.form()
    try:
        async with ctx.db.transaction() as session:
            supplier = await records_service.get_supplier_by_code(session=session, code=supplier_code,
                                                                  scope=user.scope)
            before = {"name": supplier.name, "base_url": supplier.base_url, "timeout_ms": supplier.timeout_ms,
                      "credit_limit_cents": supplier.credit_limit_cents,
                      "settlement_cycle": supplier.settlement_cycle.value}
            credentials = _replacement(form, credential_fields(supplier.dialect))
            data = forms.validated(SupplierUpdate, {
                "name": forms.text(form, "name", max_length=200), "base_url": forms.text(form, "base_url",
                                                                                         max_length=500),
                "timeout_ms": forms.integer(form, "timeout_ms", minimum=100, maximum=120_000),
                "credit_limit_cents": forms.amount(form, "credit_limit", supplier.currency, allow_zero=True),
                "settlement_cycle": forms.text(form, "settlement_cycle", max_length=16),
                **({"credentials": credentials} if credentials else {})})
            supplier = await records_service.update_supplier(session=session, cipher=ctx.cipher, http=ctx.http,
                                                             code=supplier.code, data=data, scope=user.scope)
            after = {"name": supplier.name, "base_url": supplier.base_url, "timeout_ms": supplier.timeout_ms,
                     "credit_limit_cents": supplier.credit_limit_cents,
                     "settlement_cycle": supplier.settlement_cycle.value}
            changed = [f"{name}: {before[name]} -> {after[name]}" for name in before if before[name] != after[name]]
            if credentials:  # the audit says they were replaced, never what they are
                changed.append(f"credentials {', '.join(sorted(credentials))} replaced (sealed)")
            await record_action(session=session, actor=user.actor, action="supplier_updated", object_type="supplier",
                                object_id=supplier.code, summary="; ".join(changed) or "nothing changed")
            code = supplier.code
    except DomainError as exc:
        return await supplier_page(request, ctx, user, supplier_code, message=forms.error(exc),
                                   status_code=forms.status_for(exc))
    return forms.back(f"/console/suppliers/{code}", "settings_saved")
