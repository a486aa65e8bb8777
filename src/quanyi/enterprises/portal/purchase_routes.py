"""Bulk purchases in the portal (批量采购): start one at the enterprise's tier price, watch it being placed (the
progress is an htmx fragment polled while it runs), resume or stop it, and download its codes through the
shop's expiring, audited download links (the link's token is on that one answer only: no-store, never in a
redirect or a log). Every action is the enterprises services' own, audited with the user as actor."""

from __future__ import annotations

import datetime as dt
import secrets
from typing import Annotated, Any

from fastapi import Path, Request
from fastapi.responses import HTMLResponse, Response

from quanyi.deps import ContextDep
from quanyi.enterprises import downloads, pricing, purchases, users
from quanyi.enterprises import service as enterprises_service
from quanyi.enterprises.portal import auth
from quanyi.enterprises.portal.auth import PortalUser, UserDep, needs
from quanyi.enterprises.portal.pages import audit, forms, not_found
from quanyi.enterprises.portal.rendering import render_page
from quanyi.errors import DomainError, NotFound
from quanyi.money import line_total
from quanyi.urls import shop_base_url

__all__ = ["router", "LINK_HOURS", "LINK_DOWNLOADS"]

router = auth.portal_router("/portal/purchases")
BuyerDep = Annotated[PortalUser, needs(users.BUY)]
PurchaseNo = Annotated[str, Path(min_length=1, max_length=32, pattern=r"^[A-Z0-9]+$")]
MESSAGES = ("purchase_made", "purchase_resumed", "purchase_cancelled")
LINK_HOURS, LINK_DOWNLOADS = 24, 3
RUNNING = ("queued", "running")


async def _list_page(request: Request, ctx: ContextDep, user: PortalUser, *, message: forms.Message | None = None,
                     typed: dict[str, str] | None = None, status_code: int = 200) -> HTMLResponse:
    async with ctx.db.read_session() as session:
        bought = [await purchases.progress_of(session=session, purchase=p)
                  for p in await purchases.list_purchases(session=session, code=user.code, limit=100)]
        priced = await pricing.price_list(session=session, code=user.code)
    return render_page(request, "portal/purchases.html", {
        "purchases": bought, "priced": priced, "message": message, "typed": typed or {},
        "request_key": secrets.token_urlsafe(16), "max_quantity": purchases.MAX_QUANTITY,
    }, user=user, active="purchases", status_code=status_code)


@router.get("", response_class=HTMLResponse)
async def purchase_list(request: Request, ctx: ContextDep, user: UserDep) -> Response:
    return await _list_page(request, ctx, user, message=forms.flash(request, "portal", MESSAGES, values=("no",)))


@router.post("", response_class=HTMLResponse)
async def new_purchase(request: Request, ctx: ContextDep, user: BuyerDep) -> Response:
    form = await request.form()
    typed = {name: str(form.get(name, ""))[:64] for name in ("sku_code", "quantity")}
    try:
        enterprises_service.check_not_suspended(user.login.enterprise_status)
        sku_code = forms.text(form, "sku_code", max_length=64, required=True).upper()
        quantity = forms.integer(form, "quantity", minimum=1, maximum=purchases.MAX_QUANTITY)
        key = forms.text(form, "request_key", max_length=64, required=True)
        async with ctx.db.transaction() as session:
            # The form's one-time key is the Idempotency-Key: pressing the button twice makes one purchase.
            made, created = await purchases.create_purchase(
                session=session, code=user.code, sku_code=sku_code, quantity=quantity, actor=user.actor_name,
                reference=f"portal:{user.login.user_id}:{key}")
            if created:
                await audit(session, user, "portal_purchase_made",
                            f"{made.purchase_no}: {quantity} x {sku_code} at {made.unit_price_cents}")
    except DomainError as exc:
        return await _list_page(request, ctx, user, message=forms.error(exc), typed=typed,
                                status_code=forms.status_for(exc))
    return forms.back(f"/portal/purchases/{made.purchase_no}", "purchase_made", no=made.purchase_no)


async def _detail(request: Request, ctx: ContextDep, user: PortalUser, purchase_no: str, *,
                  message: forms.Message | None = None, link: dict[str, Any] | None = None,
                  template: str = "portal/purchase.html", status_code: int = 200) -> HTMLResponse:
    try:
        async with ctx.db.read_session() as session:
            purchase = await purchases.get_purchase(session=session, code=user.code, purchase_no=purchase_no)
            progress = await purchases.progress_of(session=session, purchase=purchase)
            links = await downloads.list_links(session=session, code=user.code, purchase_no=purchase_no)
    except NotFound:
        return not_found(request, user)
    return render_page(request, template, {
        "p": progress, "b": purchase, "links": links, "message": message, "link": link,
        "total_cents": line_total(purchase.unit_price_cents, purchase.quantity), "running": purchase.status in RUNNING,
        "percent": purchase.placed_quantity * 100 // purchase.quantity, "link_hours": LINK_HOURS,
        "link_downloads": LINK_DOWNLOADS, "now": dt.datetime.now(dt.UTC),
    }, user=user, active="purchases", status_code=status_code)


@router.get("/{purchase_no}", response_class=HTMLResponse)
async def purchase_detail(purchase_no: PurchaseNo, request: Request, ctx: ContextDep, user: UserDep) -> Response:
    message = forms.flash(request, "portal", MESSAGES, values=("no",))
    page = await _detail(request, ctx, user, purchase_no, message=message)
    if message and message[0] == "portal.m.purchase_made" and b'data-running="no"' in page.body:
        # "queued" is stale once it ran (htmx reloads this page when it stops): the page without the message.
        page = await _detail(request, ctx, user, purchase_no)
    return page


@router.get("/{purchase_no}/progress", response_class=HTMLResponse)
async def purchase_progress(purchase_no: PurchaseNo, request: Request, ctx: ContextDep, user: UserDep) -> Response:
    """The progress block alone (htmx swaps it in every two seconds while the purchase runs). Once it stopped
    running, htmx reloads the whole page (HX-Refresh): its buttons (resume, download) depend on the outcome."""
    page = await _detail(request, ctx, user, purchase_no, template="portal/_purchase_progress.html")
    if request.headers.get("HX-Request") == "true" and b'data-running="no"' in page.body:
        page.headers["HX-Refresh"] = "true"
    return page


@router.post("/{purchase_no}/{action}", response_class=HTMLResponse)
async def control_purchase(purchase_no: PurchaseNo, action: Annotated[str, Path(pattern=r"^(resume|cancel|link)$")],
                           request: Request, ctx: ContextDep, user: BuyerDep) -> Response:
    try:
        async with ctx.db.transaction() as session:
            if action == "link":
                issued = await downloads.create_link(session=session, code=user.code, purchase_no=purchase_no,
                                                     ttl=dt.timedelta(hours=LINK_HOURS),
                                                     max_downloads=LINK_DOWNLOADS, actor=user.actor_name)
            elif action == "resume":
                enterprises_service.check_not_suspended(user.login.enterprise_status)
                await purchases.resume_purchase(session=session, code=user.code, purchase_no=purchase_no)
            else:
                await purchases.cancel_purchase(session=session, code=user.code, purchase_no=purchase_no)
            await audit(session, user, f"portal_purchase_{action}", purchase_no)
    except NotFound:
        return not_found(request, user)
    except DomainError as exc:
        return await _detail(request, ctx, user, purchase_no, message=forms.error(exc),
                             status_code=forms.status_for(exc))
    if action == "link":  # the token is on this answer only (no-store, never in a redirect or a log)
        base = f"{shop_base_url(ctx.settings).rstrip('/')}/api/enterprise-downloads?t={issued.token}"
        return await _detail(request, ctx, user, purchase_no, link={
            "csv": base + "&format=csv", "xlsx": base + "&format=xlsx"})
    return forms.back(f"/portal/purchases/{purchase_no}",
                      "purchase_resumed" if action == "resume" else "purchase_cancelled", no=purchase_no)
