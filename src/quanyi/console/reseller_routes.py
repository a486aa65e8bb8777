"""Resellers (分销商 / open API customers): register one (its app id and first API secret shown on that answer only,
as the admin API and `quanyi resellers add` show it once), their prepaid balances, record a top-up (a form sent
twice credits once), rotate the API secret (the new one is shown on that page only; the old one keeps working for
the overlap), and the price list (a reseller's own price per SKU, or the list price). Through the reseller service
the admin API and `quanyi resellers` use; platform staff only."""

from __future__ import annotations

import datetime as dt
import secrets
from typing import Annotated, Any

from fastapi import Path, Request
from fastapi.responses import HTMLResponse, Response

import quanyi.console.texts.resellers  # noqa: F401 - registers the texts
from quanyi.console import forms
from quanyi.console.auth import ConsoleUser, console_router, needs
from quanyi.console.menu import MenuItem, register
from quanyi.console.rendering import render_page
from quanyi.deps import ContextDep
from quanyi.errors import DomainError, NotFound
from quanyi.money import format_money
from quanyi.resellers import service as resellers_service
from quanyi.resellers.schemas import ResellerCreate, SecretRotate
from quanyi.staff.audit import record_action
from quanyi.staff.permissions import ADMIN

__all__ = ["router"]

router = console_router("/console/resellers")
register(MenuItem("resellers", "/console/resellers", ADMIN, group="partners", order=20, icon="link",
                  platform_only=True))

PlatformAdmin = Annotated[ConsoleUser, needs(ADMIN, platform_only=True)]
ResellerCode = Annotated[str, Path(min_length=1, max_length=48, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")]
SkuCode = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")]
MESSAGES = ("topped_up", "top_up_repeated", "price_set", "price_removed")


async def _described(session: Any, reseller: Any) -> dict[str, Any]:
    account = await resellers_service.account_of(session=session, reseller=reseller)
    live = await resellers_service.live_secrets(session=session, reseller_id=reseller.id)
    return {"r": reseller, "account": account, "secrets": live}


NEW_FIELDS = ("code", "name", "contact_email", "rate_limit_per_minute", "credit_limit", "callback_url")


async def _list_page(request: Request, ctx: ContextDep, user: ConsoleUser, *, typed: dict[str, str] | None = None,
                     message: forms.Message | None = None, status_code: int = 200) -> HTMLResponse:
    async with ctx.db.read_session() as session:
        resellers = [await _described(session, r) for r in await resellers_service.list_resellers(session=session)]
    return render_page(request, "console/resellers.html", {
        "resellers": resellers, "message": message,
        "typed": typed or {"rate_limit_per_minute": "600", "credit_limit": "0"},
    }, user=user, active="resellers", status_code=status_code)


@router.get("", response_class=HTMLResponse)
async def reseller_list(request: Request, ctx: ContextDep, user: PlatformAdmin) -> HTMLResponse:
    return await _list_page(request, ctx, user)


@router.post("", response_class=HTMLResponse)
async def create_reseller(request: Request, ctx: ContextDep, user: PlatformAdmin) -> Response:
    form = await request.form()
    try:
        data = forms.validated(ResellerCreate, {
            "code": forms.text(form, "code", max_length=48), "name": forms.text(form, "name", max_length=200),
            "contact_email": forms.text(form, "contact_email", max_length=254),
            "rate_limit_per_minute": forms.integer(form, "rate_limit_per_minute", minimum=0, maximum=1_000_000,
                                                   default=600),
            "credit_limit_cents": forms.amount(form, "credit_limit", "CNY", allow_zero=True),
            "callback_url": forms.text(form, "callback_url", max_length=500) or None})
        async with ctx.db.transaction() as session:
            issued = await resellers_service.create_reseller(
                session=session, cipher=ctx.cipher, code=data.code, name=data.name, contact_email=data.contact_email,
                rate_limit_per_minute=data.rate_limit_per_minute, credit_limit_cents=data.credit_limit_cents,
                callback_url=data.callback_url, actor=user.name)
            reseller = issued.reseller
            # The audit names the app id, never the secret.
            await record_action(session=session, actor=user.actor, action="reseller_created", object_type="reseller",
                                object_id=reseller.code, summary=(
                                    f"{reseller.name} <{reseller.contact_email}>, app id {reseller.app_id}, "
                                    f"{reseller.rate_limit_per_minute}/min, credit {data.credit_limit_cents} cents, "
                                    f"callback {reseller.callback_url or 'none'}"))
            shown = {"secret": issued.secret, "previous_expires_at": None, "created": True}
            code = reseller.code
    except DomainError as exc:
        typed = {name: str(form.get(name, "") or "")[:500] for name in NEW_FIELDS}
        return await _list_page(request, ctx, user, typed=typed, message=forms.error(exc),
                                status_code=forms.status_for(exc))
    # The first secret is on this answer only (no-store, never logged, never in a URL): not a redirect.
    return await _page(request, ctx, user, code, issued=shown)


async def _page(request: Request, ctx: ContextDep, user: ConsoleUser, code: str, *,
                message: forms.Message | None = None, issued: Any = None, status_code: int = 200) -> HTMLResponse:
    try:
        async with ctx.db.read_session() as session:
            reseller = await resellers_service.get_reseller(session=session, code=code)
            described = await _described(session, reseller)
            prices = await resellers_service.price_list(session=session, code=reseller.code)
    except NotFound:
        return forms.not_found(request, user, active="resellers")
    return render_page(request, "console/reseller.html", {
        **described, "prices": prices, "message": message, "issued": issued,
        "request_key": secrets.token_urlsafe(16),
    }, user=user, active="resellers", status_code=status_code)


@router.get("/{reseller_code}", response_class=HTMLResponse)
async def reseller_detail(reseller_code: ResellerCode, request: Request, ctx: ContextDep,
                          user: PlatformAdmin) -> HTMLResponse:
    message = forms.flash(request, "rs", MESSAGES, warn=("top_up_repeated",), values=("amount", "sku"))
    return await _page(request, ctx, user, reseller_code, message=message)


@router.post("/{reseller_code}/top-up", response_class=HTMLResponse)
async def top_up(reseller_code: ResellerCode, request: Request, ctx: ContextDep, user: PlatformAdmin) -> Response:
    form = await request.form()
    try:
        async with ctx.db.transaction() as session:
            reseller = await resellers_service.get_reseller(session=session, code=reseller_code)
            account = await resellers_service.account_of(session=session, reseller=reseller)
            cents = forms.amount(form, "amount", account.currency)
            note = forms.text(form, "note", max_length=500)
            key = forms.text(form, "request_key", max_length=64, required=True)
            # The form's one-time key is the posting reference: pressing the button twice credits once.
            account, created = await resellers_service.top_up(
                session=session, code=reseller.code, amount_cents=cents, note=note, actor=user.name,
                reference=f"console-topup:{reseller.code}:{key}")
            if created:
                await record_action(session=session, actor=user.actor, action="reseller_topped_up",
                                    object_type="reseller", object_id=reseller.code,
                                    summary=f"{cents} cents {account.currency}: {note}")
            code, currency = reseller.code, account.currency
    except DomainError as exc:
        return await _page(request, ctx, user, reseller_code, message=forms.error(exc),
                           status_code=forms.status_for(exc))
    return forms.back(f"/console/resellers/{code}", "topped_up" if created else "top_up_repeated",
                      amount=format_money(cents, currency))


@router.post("/{reseller_code}/rotate-secret", response_class=HTMLResponse)
async def rotate_secret(reseller_code: ResellerCode, request: Request, ctx: ContextDep,
                        user: PlatformAdmin) -> Response:
    form = await request.form()
    try:
        hours = forms.integer(form, "overlap_hours", minimum=0, maximum=30 * 24, default=24)
        overlap = forms.validated(SecretRotate, {"overlap_seconds": hours * 3600}).overlap_seconds
        async with ctx.db.transaction() as session:
            reseller = await resellers_service.get_reseller(session=session, code=reseller_code)
            issued = await resellers_service.rotate_secret(session=session, cipher=ctx.cipher, reseller=reseller,
                                                           overlap=dt.timedelta(seconds=overlap), actor=user.name)
            await record_action(session=session, actor=user.actor, action="reseller_secret_rotated",
                                object_type="reseller", object_id=reseller.code,
                                summary=f"old secret valid for {hours} h more")
            shown = {"secret": issued.secret, "previous_expires_at": issued.previous_expires_at}
            code = reseller.code
    except DomainError as exc:
        return await _page(request, ctx, user, reseller_code, message=forms.error(exc),
                           status_code=forms.status_for(exc))
    # The new secret is on this answer only (no-store, never logged, never in a URL): not a redirect.
    return await _page(request, ctx, user, code, issued=shown)


@router.post("/{reseller_code}/prices", response_class=HTMLResponse)
async def set_price(reseller_code: ResellerCode, request: Request, ctx: ContextDep, user: PlatformAdmin) -> Response:
    form = await request.form()
    try:
        sku_code = forms.text(form, "sku_code", max_length=64, required=True).upper()
        async with ctx.db.transaction() as session:
            reseller = await resellers_service.get_reseller(session=session, code=reseller_code)
            account = await resellers_service.account_of(session=session, reseller=reseller)
            cents = forms.amount(form, "price", account.currency)
            await resellers_service.set_price(session=session, code=reseller.code, sku_code=sku_code,
                                              price_cents=cents, actor=user.name)
            await record_action(session=session, actor=user.actor, action="reseller_price_set",
                                object_type="reseller", object_id=reseller.code, summary=f"{sku_code}: {cents} cents")
            code = reseller.code
    except DomainError as exc:
        return await _page(request, ctx, user, reseller_code, message=forms.error(exc),
                           status_code=forms.status_for(exc))
    return forms.back(f"/console/resellers/{code}", "price_set", sku=sku_code)


@router.post("/{reseller_code}/prices/{sku_code}/remove", response_class=HTMLResponse)
async def remove_price(reseller_code: ResellerCode, sku_code: SkuCode, request: Request, ctx: ContextDep,
                       user: PlatformAdmin) -> Response:
    try:
        async with ctx.db.transaction() as session:
            reseller = await resellers_service.get_reseller(session=session, code=reseller_code)
            await resellers_service.remove_price(session=session, code=reseller.code, sku_code=sku_code)
            await record_action(session=session, actor=user.actor, action="reseller_price_removed",
                                object_type="reseller", object_id=reseller.code, summary=sku_code)
            code = reseller.code
    except DomainError as exc:
        return await _page(request, ctx, user, reseller_code, message=forms.error(exc),
                           status_code=forms.status_for(exc))
    return forms.back(f"/console/resellers/{code}", "price_removed", sku=sku_code)
