"""Enterprise customers (企业福利) in the console: register one (prepaid account at zero, invoice data), balances and
top-ups (a form sent twice credits once), the top-up requests enterprises send from the portal (confirm: credited
once; refuse with a reason), invoice
data and contacts, tier prices, bulk purchases with their progress (new, resume, stop, a download link shown once)
and benefit campaigns with their figures (end one: the rest returns to the balance). Through the enterprises
feature's services, which the admin API and `quanyi enterprises` use; platform staff only."""

from __future__ import annotations

import datetime as dt
import secrets
from collections import Counter
from typing import Annotated, Any

from fastapi import Path, Request
from fastapi.responses import HTMLResponse, Response

import quanyi.console.texts.enterprises  # noqa: F401 - registers the texts
import quanyi.enterprises.portal.texts  # noqa: F401 - the portal's role names
from quanyi.console import forms
from quanyi.console.auth import ConsoleUser, console_router, needs
from quanyi.console.menu import MenuItem, register
from quanyi.console.rendering import render_page
from quanyi.deps import ContextDep
from quanyi.enterprises import campaigns, downloads, pricing, purchases, top_up_alerts, top_ups, users
from quanyi.enterprises import service as enterprises_service
from quanyi.enterprises.schemas import EnterpriseCreate
from quanyi.errors import DomainError, NotFound
from quanyi.money import format_money
from quanyi.staff.audit import record_action
from quanyi.staff.permissions import ADMIN
from quanyi.urls import shop_base_url

__all__ = ["router"]

router = console_router("/console/enterprises")
register(MenuItem("enterprises", "/console/enterprises", ADMIN, group="partners", order=30, icon="link",
                  platform_only=True))

PlatformAdmin = Annotated[ConsoleUser, needs(ADMIN, platform_only=True)]
EnterpriseCode = Annotated[str, Path(min_length=1, max_length=48, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")]
Number = Annotated[str, Path(min_length=1, max_length=32, pattern=r"^[A-Z0-9]+$")]
MESSAGES = ("created", "topped_up", "top_up_repeated", "purchase_made", "purchase_resumed", "purchase_cancelled",
            "campaign_ended", "user_added", "user_changed", "top_up_confirmed", "top_up_confirmed_before",
            "top_up_refused", "extra_refunded")
LINK_HOURS, LINK_DOWNLOADS = 24, 3


INVOICE_FIELDS = ("invoice_title", "tax_number", "invoice_address", "invoice_phone", "bank_name", "bank_account",
                  "invoice_email")


async def _list_page(request: Request, ctx: ContextDep, user: ConsoleUser, *, typed: dict[str, str] | None = None,
                     message: forms.Message | None = None, status_code: int = 200) -> HTMLResponse:
    async with ctx.db.read_session() as session:
        rows = [(e, await enterprises_service.account_of(session=session, enterprise=e))
                for e in await enterprises_service.list_enterprises(session=session)]
        waiting = await top_ups.waiting_for_operator(session=session)
        to_refund = Counter(code for _, _, code in await top_up_alerts.open_extra_payments(session=session))
    return render_page(request, "console/enterprises.html", {
        "enterprises": rows, "waiting": waiting, "to_refund": to_refund, "typed": typed or {"credit_limit": "0"},
        "message": message,
        "invoice_fields": INVOICE_FIELDS,
    }, user=user, active="enterprises", status_code=status_code)


@router.get("", response_class=HTMLResponse)
async def enterprise_list(request: Request, ctx: ContextDep, user: PlatformAdmin) -> HTMLResponse:
    return await _list_page(request, ctx, user)


@router.post("", response_class=HTMLResponse)
async def create_enterprise(request: Request, ctx: ContextDep, user: PlatformAdmin) -> Response:
    form = await request.form()
    try:
        data = forms.validated(EnterpriseCreate, {
            "code": forms.text(form, "code", max_length=48), "name": forms.text(form, "name", max_length=200),
            "credit_limit_cents": forms.amount(form, "credit_limit", "CNY", allow_zero=True),
            "invoice": {name: forms.text(form, name, max_length=300) for name in INVOICE_FIELDS}})
        async with ctx.db.transaction() as session:
            enterprise = await enterprises_service.create_enterprise(
                session=session, code=data.code, name=data.name, credit_limit_cents=data.credit_limit_cents,
                invoice=enterprises_service.InvoiceData(**data.invoice.model_dump()))
            await record_action(session=session, actor=user.actor, action="enterprise_created",
                                object_type="enterprise", object_id=enterprise.code, summary=(
                                    f"{enterprise.name}: credit {data.credit_limit_cents} cents, invoice title "
                                    f"{enterprise.invoice_title or '-'}, tax number {enterprise.tax_number or '-'}"))
            code = enterprise.code
    except DomainError as exc:
        typed = {name: str(form.get(name, "") or "")[:300] for name in ("code", "name", "credit_limit",
                                                                        *INVOICE_FIELDS)}
        return await _list_page(request, ctx, user, typed=typed, message=forms.error(exc),
                                status_code=forms.status_for(exc))
    return forms.back(f"/console/enterprises/{code}", "created")


async def _page(request: Request, ctx: ContextDep, user: ConsoleUser, code: str, *,
                message: forms.Message | None = None, link: dict[str, Any] | None = None,
                status_code: int = 200) -> HTMLResponse:
    try:
        async with ctx.db.read_session() as session:
            enterprise = await enterprises_service.get_enterprise(session=session, code=code)
            account = await enterprises_service.account_of(session=session, enterprise=enterprise)
            contacts = await enterprises_service.contacts_of(session=session, enterprise=enterprise)
            prices = await pricing.price_list(session=session, code=code)
            bought = [await purchases.progress_of(session=session, purchase=p)
                      for p in await purchases.list_purchases(session=session, code=code, limit=50)]
            reports = [await campaigns.report(session=session, campaign=c)
                       for c in await campaigns.list_campaigns(session=session, code=code)]
            portal_users = await users.list_users(session=session, code=code)
            requested = await top_ups.list_top_ups(session=session, code=code)
            extra = await top_up_alerts.extra_payments_of(session=session, request_ids=[r.id for r in requested])
    except NotFound:
        return forms.not_found(request, user, active="enterprises")
    return render_page(request, "console/enterprise.html", {
        "e": enterprise, "account": account, "contacts": contacts, "prices": prices, "purchases": bought,
        "campaigns": reports, "portal_users": portal_users, "top_up_requests": requested,
        "extra_payments": extra,
        "roles": list(users.ROLES), "message": message,
        "link": link, "request_key": secrets.token_urlsafe(16),
        "base_url": shop_base_url(ctx.settings).rstrip("/"),
    }, user=user, active="enterprises", status_code=status_code)


@router.get("/{code}", response_class=HTMLResponse)
async def enterprise_detail(code: EnterpriseCode, request: Request, ctx: ContextDep,
                            user: PlatformAdmin) -> HTMLResponse:
    message = forms.flash(request, "ent", MESSAGES, warn=("top_up_repeated", "top_up_confirmed_before"),
                          values=("amount", "no", "name", "trade"))
    return await _page(request, ctx, user, code, message=message)


async def _refused(request: Request, ctx: ContextDep, user: ConsoleUser, code: str, exc: DomainError) -> Response:
    return await _page(request, ctx, user, code, message=forms.error(exc), status_code=forms.status_for(exc))


@router.post("/{code}/top-up", response_class=HTMLResponse)
async def top_up(code: EnterpriseCode, request: Request, ctx: ContextDep, user: PlatformAdmin) -> Response:
    form = await request.form()
    try:
        async with ctx.db.transaction() as session:
            enterprise = await enterprises_service.get_enterprise(session=session, code=code)
            account = await enterprises_service.account_of(session=session, enterprise=enterprise)
            cents = forms.amount(form, "amount", account.currency)
            note = forms.text(form, "note", max_length=500)
            key = forms.text(form, "request_key", max_length=64, required=True)
            # The form's one-time key is the posting reference: pressing the button twice credits once.
            account, created = await enterprises_service.top_up(
                session=session, code=enterprise.code, amount_cents=cents, note=note or "console", actor=user.name,
                reference=f"console-topup:{enterprise.code}:{key}")
            if created:
                await record_action(session=session, actor=user.actor, action="enterprise_topped_up",
                                    object_type="enterprise", object_id=enterprise.code,
                                    summary=f"{cents} cents {account.currency}: {note}")
    except DomainError as exc:
        return await _refused(request, ctx, user, code, exc)
    return forms.back(f"/console/enterprises/{code}", "topped_up" if created else "top_up_repeated",
                      amount=format_money(cents, account.currency))


@router.post("/{code}/top-up-requests/{request_no}/{action}", response_class=HTMLResponse)
async def decide_top_up(code: EnterpriseCode, request_no: Number, action: Annotated[str, Path(
        pattern=r"^(confirm|refuse)$")], request: Request, ctx: ContextDep, user: PlatformAdmin) -> Response:
    """A top-up request from the portal: the money arrived (credited once), or refused with a reason."""
    form = await request.form()
    try:
        async with ctx.db.transaction() as session:
            if action == "confirm":
                found, changed = await top_ups.confirm_top_up(session=session, code=code, request_no=request_no,
                                                              actor=user.name)
            else:
                found, changed = await top_ups.refuse_top_up(
                    session=session, code=code, request_no=request_no, actor=user.name,
                    reason=str(form.get("reason", ""))[:600])
            if changed:
                await record_action(session=session, actor=user.actor, action=f"enterprise_top_up_{found.status}",
                                    object_type="enterprise", object_id=code, summary=(
                                        f"{request_no}: {found.amount_cents} cents {found.currency}, transfer "
                                        f"{found.payer_reference}" + (f"; {found.refusal_reason}"
                                                                      if action == "refuse" else "")))
    except DomainError as exc:
        return await _refused(request, ctx, user, code, exc)
    outcome = "top_up_refused" if action == "refuse" else "top_up_confirmed" if changed else "top_up_confirmed_before"
    return forms.back(f"/console/enterprises/{code}", outcome, no=request_no,
                      amount=format_money(found.amount_cents, found.currency))


@router.post("/{code}/top-up-extra/{trade_no}/refunded", response_class=HTMLResponse)
async def extra_refunded(code: EnterpriseCode, trade_no: Annotated[str, Path(max_length=64)], request: Request,
                         ctx: ContextDep, user: PlatformAdmin) -> Response:
    """A second payment of a credited online top-up was refunded at the gateway: the flag goes away."""
    try:
        async with ctx.db.transaction() as session:
            found, changed = await top_up_alerts.mark_refunded(session=session, code=code, trade_no=trade_no,
                                                               actor=user.name)
            if changed:
                await record_action(session=session, actor=user.actor, action="enterprise_top_up_extra_refunded",
                                    object_type="enterprise", object_id=code, summary=(
                                        f"{found.gateway} trade {trade_no}: {found.amount_cents} cents "
                                        f"{found.currency} refunded at the gateway"))
    except DomainError as exc:
        return await _refused(request, ctx, user, code, exc)
    return forms.back(f"/console/enterprises/{code}", "extra_refunded", trade=trade_no)


@router.post("/{code}/purchases", response_class=HTMLResponse)
async def new_purchase(code: EnterpriseCode, request: Request, ctx: ContextDep, user: PlatformAdmin) -> Response:
    form = await request.form()
    try:
        sku_code = forms.text(form, "sku_code", max_length=64, required=True).upper()
        quantity = forms.integer(form, "quantity", minimum=1, maximum=purchases.MAX_QUANTITY)
        key = forms.text(form, "request_key", max_length=64, required=True)
        async with ctx.db.transaction() as session:
            made, created = await purchases.create_purchase(
                session=session, code=code, sku_code=sku_code, quantity=quantity, actor=user.name,
                reference=f"console:{key}")
            if created:
                await record_action(session=session, actor=user.actor, action="enterprise_purchase_made",
                                    object_type="enterprise", object_id=code,
                                    summary=f"{made.purchase_no}: {quantity} x {sku_code} at {made.unit_price_cents}")
    except DomainError as exc:
        return await _refused(request, ctx, user, code, exc)
    return forms.back(f"/console/enterprises/{code}", "purchase_made", no=made.purchase_no)


@router.post("/{code}/purchases/{purchase_no}/{action}", response_class=HTMLResponse)
async def control_purchase(code: EnterpriseCode, purchase_no: Number, action: Annotated[str, Path(
        pattern=r"^(resume|cancel|link)$")], request: Request, ctx: ContextDep, user: PlatformAdmin) -> Response:
    try:
        async with ctx.db.transaction() as session:
            if action == "link":
                issued = await downloads.create_link(session=session, code=code, purchase_no=purchase_no,
                                                     ttl=dt.timedelta(hours=LINK_HOURS),
                                                     max_downloads=LINK_DOWNLOADS, actor=user.name)
            elif action == "resume":
                await purchases.resume_purchase(session=session, code=code, purchase_no=purchase_no)
            else:
                await purchases.cancel_purchase(session=session, code=code, purchase_no=purchase_no)
            await record_action(session=session, actor=user.actor, action=f"enterprise_purchase_{action}",
                                object_type="enterprise", object_id=code, summary=purchase_no)
    except DomainError as exc:
        return await _refused(request, ctx, user, code, exc)
    if action == "link":  # the token is on this answer only (no-store, never in a redirect or a log)
        base = f"{shop_base_url(ctx.settings).rstrip('/')}/api/enterprise-downloads?t={issued.token}"
        return await _page(request, ctx, user, code, link={
            "no": purchase_no, "csv": base + "&format=csv", "xlsx": base + "&format=xlsx", "hours": LINK_HOURS,
            "count": LINK_DOWNLOADS})
    return forms.back(f"/console/enterprises/{code}", "purchase_resumed" if action == "resume"
                      else "purchase_cancelled", no=purchase_no)


@router.post("/{code}/campaigns/{campaign_no}/end", response_class=HTMLResponse)
async def end_campaign(code: EnterpriseCode, campaign_no: Number, request: Request, ctx: ContextDep,
                       user: PlatformAdmin) -> Response:
    try:
        async with ctx.db.transaction() as session:
            campaign = await campaigns.get_campaign(session=session, code=code, campaign_no=campaign_no)
            moved = await campaigns.end_campaign(session=session, campaign=campaign, actor=user.name)
            await record_action(session=session, actor=user.actor, action="enterprise_campaign_ended",
                                object_type="enterprise", object_id=code, summary=f"{campaign_no}: {moved} returned")
            currency = campaign.currency
    except DomainError as exc:
        return await _refused(request, ctx, user, code, exc)
    return forms.back(f"/console/enterprises/{code}", "campaign_ended", no=campaign_no,
                      amount=format_money(moved, currency))


@router.post("/{code}/users", response_class=HTMLResponse)
async def add_portal_user(code: EnterpriseCode, request: Request, ctx: ContextDep, user: PlatformAdmin) -> Response:
    """A person of the enterprise who logs in at /portal (企业门户账号)."""
    form = await request.form()
    try:
        username = forms.text(form, "username", max_length=64, required=True)
        async with ctx.db.transaction() as session:
            made = await users.create_user(
                session=session, code=code, username=username, actor=user.name,
                password=str(form.get("password", ""))[:1024], role=forms.text(form, "role", max_length=16),
                display_name=forms.text(form, "display_name", max_length=100))
            await record_action(session=session, actor=user.actor, action="enterprise_user_created",
                                object_type="enterprise", object_id=code, summary=f"{made.username} ({made.role})")
    except DomainError as exc:
        return await _refused(request, ctx, user, code, exc)
    return forms.back(f"/console/enterprises/{code}", "user_added", name=made.username)


@router.post("/{code}/users/{username}/{action}", response_class=HTMLResponse)
async def change_portal_user(code: EnterpriseCode, username: Annotated[str, Path(
        min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9._-]*$")], action: Annotated[str, Path(
        pattern=r"^(disable|enable|reset-2fa|logout|role)$")], request: Request, ctx: ContextDep,
        user: PlatformAdmin) -> Response:
    form = await request.form()
    try:
        async with ctx.db.transaction() as session:
            if action in ("disable", "enable"):
                await users.update_user(session=session, code=code, username=username, active=action == "enable")
            elif action == "role":
                await users.update_user(session=session, code=code, username=username,
                                        role=forms.text(form, "role", max_length=16, required=True))
            elif action == "reset-2fa":
                await users.reset_second_factor(session=session, code=code, username=username)
            else:
                found = await users.get_user(session=session, code=code, username=username)
                await users.end_sessions(session=session, user_id=found.id)
            await record_action(session=session, actor=user.actor, action=f"enterprise_user_{action}",
                                object_type="enterprise", object_id=code, summary=username)
    except DomainError as exc:
        return await _refused(request, ctx, user, code, exc)
    return forms.back(f"/console/enterprises/{code}", "user_changed", name=username)
