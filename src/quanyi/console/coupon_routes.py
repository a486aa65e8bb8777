"""The console's coupons (优惠券): the caller's coupons (a merchant's staff: their merchant's) with what each gives,
how it is handed out and its counts; create a coupon of any kind, change what may change, pause / resume. Every
change goes through the coupons service the admin API and `quanyi coupons` use, checked by the API's request
shapes (console/coupon_forms.py), and is written to the audit log in its transaction. Handing out (issue to
members, single-use code batches): coupon_action_routes.py."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import Path, Request
from fastapi.responses import HTMLResponse, Response

import quanyi.console.texts.coupons  # noqa: F401 - registers the texts
from quanyi.catalog import service as catalog_service
from quanyi.console import forms
from quanyi.console.auth import ConsoleUser, console_router, needs
from quanyi.console.catalog_forms import FormErrors
from quanyi.console.coupon_forms import (
    create_values,
    local_input,
    read_create,
    read_update,
    resolve_targets,
    update_values,
)
from quanyi.console.menu import MenuItem, register
from quanyi.console.rendering import render_page
from quanyi.context import ShopContext
from quanyi.coupons import service as coupons_service
from quanyi.coupons.models import Coupon
from quanyi.coupons.texts import summary
from quanyi.db import utcnow
from quanyi.deps import ContextDep
from quanyi.errors import DomainError, NotFound
from quanyi.merchants import service as merchants_service
from quanyi.money import CURRENCIES
from quanyi.shoptime import shop_zone
from quanyi.staff.audit import record_action
from quanyi.web.i18n import pick_locale

__all__ = ["router", "Marketer", "CouponId", "coupon_page", "audit_summary"]

router = console_router("/console/coupons")
register(MenuItem("coupons", "/console/coupons", "catalog.manage", group="sales", order=60, icon="tag"))
Marketer = Annotated[ConsoleUser, needs("catalog.manage")]  # coupons are prices: the catalog's editors run them
CouponId = Annotated[int, Path(ge=1, le=2_147_483_647)]
MESSAGES = ("created", "saved", "paused", "resumed", "issued", "issued_some", "batch")
KINDS = ("amount_off", "percent_off", "fixed_price")
DISTRIBUTIONS = ("code", "claim", "issued", "codes")


@router.get("", response_class=HTMLResponse)
async def coupons_page(request: Request, ctx: ContextDep, user: Marketer) -> HTMLResponse:
    locale = pick_locale(request, ctx.settings.default_locale)
    async with ctx.db.read_session() as session:
        coupons = await coupons_service.list_coupons(session=session, scope=user.scope, limit=200)
        rows = [{"coupon": c, "summary": summary(c, locale),
                 "usage": await coupons_service.usage_counts(session=session, coupon_id=c.id)} for c in coupons]
    return render_page(request, "console/coupons.html", {
        "rows": rows, "message": forms.flash(request, "coupons", ("created",), values=("name",)),
    }, user=user, active="coupons")


# ---------------------------------------------------------------- create

async def _new_page(request: Request, ctx: ShopContext, user: ConsoleUser, values: dict[str, Any], *,
                    errors: dict[str, str] | None = None, status_code: int = 200) -> HTMLResponse:
    async with ctx.db.read_session() as session:
        categories = await catalog_service.list_categories(session=session, active_only=False)
        merchants = list(await merchants_service.list_merchants(session=session, scope=user.scope)) \
            if user.scope.is_platform else []
    return render_page(request, "console/coupon_new.html", {
        "values": values, "errors": errors or {}, "categories": categories, "merchants": merchants,
        "kinds": KINDS, "distributions": DISTRIBUTIONS, "currencies": sorted(CURRENCIES),
        "shop_zone_name": ctx.settings.shop_timezone,
    }, user=user, active="coupons", status_code=status_code)


@router.get("/new", response_class=HTMLResponse)
async def new_coupon(request: Request, ctx: ContextDep, user: Marketer) -> HTMLResponse:
    zone = shop_zone(ctx.settings.shop_timezone)
    now = utcnow().replace(second=0, microsecond=0)
    return await _new_page(request, ctx, user, {
        "kind": "amount_off", "distribution": "claim", "currency": "CNY", "scope": "all", "categories": [],
        "starts_at": local_input(now, zone), "ends_at": local_input(now + dt.timedelta(days=30), zone)})


def audit_summary(coupon: Coupon) -> str:
    """A coupon as the audit log records it: what it gives, how it is handed out, its limits."""
    return (f"{coupon.name}: {summary(coupon, 'en')}; {coupon.distribution}{' ' + coupon.code if coupon.code else ''}"
            f"; {coupon.starts_at:%Y-%m-%d %H:%M}..{coupon.ends_at:%Y-%m-%d %H:%M} UTC; total "
            f"{coupon.total_quantity if coupon.total_quantity is not None else '-'}, per member "
            f"{coupon.per_member_limit if coupon.per_member_limit is not None else '-'}"
            f"{', new members' if coupon.new_members_only else ''}{', stackable' if coupon.stackable else ''}"
            f"{', sign-up gift' if coupon.signup_gift else ''}{'' if coupon.active else ', paused'}")


@router.post("", response_class=HTMLResponse)
async def create_coupon(request: Request, ctx: ContextDep, user: Marketer) -> Response:
    form = await request.form()
    zone = shop_zone(ctx.settings.shop_timezone)
    try:
        data, scope = read_create(form, zone)
        async with ctx.db.transaction() as session:
            owner = await merchants_service.resolve_owner(session=session, scope=user.scope,
                                                          merchant_code=data.merchant_code)
            targets = await resolve_targets(session, scope, owner)
            coupon = await coupons_service.create_coupon(session=session, fields=data.fields(), targets=targets,
                                                         owner=owner, actor=user.name)
            await record_action(session=session, actor=user.actor, action="coupon_created", object_type="coupon",
                                object_id=coupon.id, summary=audit_summary(coupon)
                                + (f"; scope {len(targets)} targets" if targets else ""))
            coupon_id = coupon.id
    except FormErrors as exc:
        return await _new_page(request, ctx, user, create_values(form), errors=exc.errors, status_code=422)
    except DomainError as exc:
        field = str(exc.context.get("field") or ("merchant_code" if "merchant" in exc.code else "form"))
        return await _new_page(request, ctx, user, create_values(form), errors={field: exc.message},
                               status_code=forms.status_for(exc))
    return forms.back(f"/console/coupons/{coupon_id}", "created")


# ---------------------------------------------------------------- one coupon: see, change, pause

async def coupon_page(request: Request, ctx: ShopContext, user: ConsoleUser, coupon_id: int, *,
                      values: dict[str, Any] | None = None, errors: dict[str, str] | None = None,
                      message: forms.Message | None = None, status_code: int = 200,
                      issue_values: dict[str, str] | None = None) -> HTMLResponse:
    """A coupon's page: what it gives and to what, its counts, the edit form and the ways to hand it out."""
    locale = pick_locale(request, ctx.settings.default_locale)
    zone = shop_zone(ctx.settings.shop_timezone)
    try:
        async with ctx.db.read_session() as session:
            coupon = await coupons_service.get_coupon(session=session, coupon_id=coupon_id, scope=user.scope)
            targets = await coupons_service.targets_of(session=session, coupon_id=coupon.id)
            usage = await coupons_service.usage_counts(session=session, coupon_id=coupon.id)
            batches = await coupons_service.code_batches(session=session, coupon_id=coupon.id)
            owner = (await merchants_service.merchant_codes(session=session, merchant_ids=[coupon.merchant_id]))
            named = [(kind, target_id, await _target_name(session, kind, target_id)) for kind, target_id in targets]
    except NotFound:
        return forms.not_found(request, user, active="coupons")
    shown = values if values is not None else {
        "name": coupon.name, "description": coupon.description, "starts_at": local_input(coupon.starts_at, zone),
        "ends_at": local_input(coupon.ends_at, zone), "new_members_only": coupon.new_members_only,
        "total_quantity": "" if coupon.total_quantity is None else coupon.total_quantity,
        "per_member_limit": "" if coupon.per_member_limit is None else coupon.per_member_limit,
        "stackable": coupon.stackable, "signup_gift": coupon.signup_gift}
    return render_page(request, "console/coupon.html", {
        "c": coupon, "summary": summary(coupon, locale), "targets": named, "usage": usage, "batches": batches,
        "owner_code": owner.get(coupon.merchant_id, ""), "values": shown, "errors": errors or {},
        "issue_values": issue_values or {}, "max_batch": coupons_service.MAX_BATCH,
        "message": message or forms.flash(request, "coupons", MESSAGES, warn=("issued_some",),
                                          values=("count", "detail")),
    }, user=user, active="coupons", status_code=status_code)


async def _target_name(session: Any, kind: str, target_id: int) -> str:
    """What a scope target is called (a category's name, a product's, a SKU's code); '' if it is gone."""
    try:
        if kind == "category":
            return str((await catalog_service.get_category(session=session, category_id=target_id)).name)
        if kind == "product":
            return str((await catalog_service.get_product(session=session, product_id=target_id,
                                                          active_only=False)).name)
        return str((await catalog_service.get_sku(session=session, sku_id=target_id)).code)
    except NotFound:
        return ""


@router.get("/{coupon_id}", response_class=HTMLResponse)
async def coupon_detail(coupon_id: CouponId, request: Request, ctx: ContextDep, user: Marketer) -> HTMLResponse:
    return await coupon_page(request, ctx, user, coupon_id)


@router.post("/{coupon_id}", response_class=HTMLResponse)
async def update_coupon(coupon_id: CouponId, request: Request, ctx: ContextDep, user: Marketer) -> Response:
    form = await request.form()
    zone = shop_zone(ctx.settings.shop_timezone)
    try:
        async with ctx.db.transaction() as session:
            coupon = await coupons_service.get_coupon(session=session, coupon_id=coupon_id, scope=user.scope,
                                                      lock=True)
            data = read_update(form, zone, issued=coupon.distribution == "issued")
            await coupons_service.update_coupon(session=session, coupon=coupon, changes=data.changes())
            await record_action(session=session, actor=user.actor, action="coupon_updated", object_type="coupon",
                                object_id=coupon.id, summary=audit_summary(coupon))
    except NotFound:
        return forms.not_found(request, user, active="coupons")
    except FormErrors as exc:
        return await coupon_page(request, ctx, user, coupon_id, values=update_values(form), errors=exc.errors,
                                 status_code=422)
    except DomainError as exc:
        return await coupon_page(request, ctx, user, coupon_id, values=update_values(form),
                                 errors={str(exc.context.get("field") or "form"): exc.message},
                                 status_code=forms.status_for(exc))
    return forms.back(f"/console/coupons/{coupon_id}", "saved")


@router.post("/{coupon_id}/active", response_class=HTMLResponse)
async def set_active(coupon_id: CouponId, request: Request, ctx: ContextDep, user: Marketer) -> Response:
    active = forms.checkbox(await request.form(), "active")
    try:
        async with ctx.db.transaction() as session:
            coupon = await coupons_service.get_coupon(session=session, coupon_id=coupon_id, scope=user.scope,
                                                      lock=True)
            await coupons_service.update_coupon(session=session, coupon=coupon, changes={"active": active})
            await record_action(session=session, actor=user.actor,
                                action="coupon_resumed" if active else "coupon_paused", object_type="coupon",
                                object_id=coupon.id, summary=coupon.name)
    except NotFound:
        return forms.not_found(request, user, active="coupons")
    return forms.back(f"/console/coupons/{coupon_id}", "resumed" if active else "paused")
