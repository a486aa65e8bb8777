"""Catalog pages (商品管理): products with their SKUs, prices and redemption guides (with a live preview drawn
by the same renderer buyers see), and the platform's categories; every change through the catalog service, so a
form is held to exactly the rules of the admin API, and written to the audit log in the same transaction."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.datastructures import FormData

import quanyi.console.texts.catalog  # noqa: F401 - registers the texts
from quanyi.catalog import deletion as catalog_deletion
from quanyi.catalog import service as catalog_service
from quanyi.catalog.guide import render_guide
from quanyi.catalog.models import DeliveryType, Product
from quanyi.catalog.schemas import (
    CategoryCreate,
    CategoryUpdate,
    ProductCreate,
    ProductUpdate,
    SkuCreate,
    SkuUpdate,
)
from quanyi.console.auth import ConsoleForbidden, ConsoleUser, console_router, needs
from quanyi.console.catalog_forms import FormErrors, checkbox, money_field, read_form, text
from quanyi.console.i18n import MESSAGES, console_text
from quanyi.console.menu import MenuItem, register
from quanyi.console.rendering import render_page
from quanyi.deps import ContextDep
from quanyi.errors import Conflict, DomainError, NotFound
from quanyi.merchants import service as merchants_service
from quanyi.money import CURRENCIES
from quanyi.staff.audit import record_action
from quanyi.web.i18n import pick_locale

__all__ = ["router"]

router: APIRouter = console_router("/console/catalog")
register(MenuItem("catalog", "/console/catalog", "catalog.manage", group="catalog", order=10, icon="shop"))
register(MenuItem("categories", "/console/catalog/categories", "catalog.manage", group="catalog", order=20,
                  icon="log", platform_only=True))

Editor = Annotated[ConsoleUser, needs("catalog.manage")]
ProductId = Annotated[int, Path(ge=1, le=2_147_483_647)]
SkuId = Annotated[int, Path(ge=1, le=2_147_483_647)]
CategoryId = Annotated[int, Path(ge=1, le=2_147_483_647)]
GUIDE_LIMIT = 20_000  # the LongText limit of the schemas


def _message(exc: DomainError) -> tuple[str, dict[str, Any], str]:
    key = "err." + exc.code
    return (key if key in MESSAGES["zh-CN"] else "ops.refused"), {"detail": exc.message}, "err"


def _in_use(request: Request, ctx: Any, exc: DomainError, *, product: bool = False) -> tuple[str, dict[str, Any], str]:
    """A refused delete: what still refers to the SKU, in the operator's language, and what to do instead."""
    found = exc.context.get("references")
    if not isinstance(found, list):
        return _message(exc)
    locale = pick_locale(request, ctx.settings.default_locale)
    named = ", ".join(str(name) for name in exc.context.get("coupons") or [])  # type: ignore[attr-defined]
    refs = ("、" if locale == "zh-CN" else ", ").join(
        console_text(locale, "catalog.ref", what=console_text(locale, "catalog.ref." + ref["kind"], names=named),
                     count=ref["count"]) for ref in found)
    kept = any(not ref["removable"] for ref in found)
    advice = console_text(locale, f"catalog.refs_{'keep' if kept else 'remove'}_{'product' if product else 'sku'}")
    key = "catalog.product_in_use" if product else "catalog.sku_in_use"
    return key, {"code": exc.context.get("sku_code", ""), "refs": refs, "advice": advice}, "err"


def _status(exc: DomainError) -> int:
    return 404 if isinstance(exc, NotFound) else 409 if isinstance(exc, Conflict) else 422


def _platform_only(user: ConsoleUser) -> None:
    """Categories are the platform's, shared by every merchant: a merchant's staff do not change them."""
    if not user.scope.is_platform:
        raise ConsoleForbidden("categories are platform configuration", permission="catalog.manage")


def _redirect(url: str, message: str) -> RedirectResponse:
    return RedirectResponse(f"{url}?m={message}", status_code=303)


def _flash(request: Request) -> tuple[str, dict[str, Any], str] | None:
    message = request.query_params.get("m", "")
    return (f"catalog.m.{message}", {}, "ok") if message in {"created", "saved", "deleted"} else None


# ---------------------------------------------------------------- products

@router.get("", response_class=HTMLResponse)
async def products(request: Request, ctx: ContextDep, user: Editor,
                   category: Annotated[int | None, Query(ge=1, le=2_147_483_647)] = None) -> HTMLResponse:
    async with ctx.db.read_session() as session:
        found = await catalog_service.list_products(session=session, category_id=category, active_only=False,
                                                    scope=user.scope)
        summaries = await catalog_service.summarize_products(session=session, products=found)
        categories = await catalog_service.list_categories(session=session, active_only=False)
    return render_page(request, "console/catalog.html", {
        "rows": list(zip(found, summaries, strict=True)), "categories": categories, "category": category,
        "message": _flash(request)}, user=user, active="catalog")


async def _merchant_choices(ctx: Any, user: ConsoleUser) -> list[Any]:
    if not user.scope.is_platform:
        return []
    async with ctx.db.read_session() as session:
        return list(await merchants_service.list_merchants(session=session, scope=user.scope))


async def _product_form(request: Request, ctx: Any, user: ConsoleUser, *, values: dict[str, Any],
                        errors: dict[str, str] | None = None, status_code: int = 200) -> HTMLResponse:
    async with ctx.db.read_session() as session:
        categories = await catalog_service.list_categories(session=session, active_only=False)
    return render_page(request, "console/catalog_new.html", {
        "values": values, "errors": errors or {}, "categories": categories,
        "merchants": await _merchant_choices(ctx, user), "guide_html": render_guide(values.get("redemption_guide", "")),
    }, user=user, active="catalog", status_code=status_code)


@router.get("/products/new", response_class=HTMLResponse)
async def new_product(request: Request, ctx: ContextDep, user: Editor) -> HTMLResponse:
    return await _product_form(request, ctx, user, values={"is_active": True})


def _product_values(form: FormData) -> dict[str, Any]:
    return {
        "category_id": text(form, "category_id", 12) or None, "slug": text(form, "slug", 200),
        "name": text(form, "name", 400), "description": text(form, "description", GUIDE_LIMIT + 1),
        "redemption_guide": str(form.get("redemption_guide", ""))[:GUIDE_LIMIT + 1],
        "cover_image_url": text(form, "cover_image_url", 600) or None,
        "sort_order": text(form, "sort_order", 12) or 0, "is_active": checkbox(form, "is_active"),
    }


@router.post("/products", response_class=HTMLResponse)
async def create_product(request: Request, ctx: ContextDep, user: Editor) -> Response:
    form = await request.form()
    values = _product_values(form)
    merchant_code = text(form, "merchant_code", 40) or None if user.scope.is_platform else None
    try:
        data = read_form(ProductCreate, {**values, "merchant_code": merchant_code})
        async with ctx.db.transaction() as session:
            owner = await merchants_service.resolve_owner(session=session, scope=user.scope,
                                                          merchant_code=data.merchant_code)
            product = await catalog_service.create_product(session=session, data=data, merchant_id=owner)
            await record_action(session=session, actor=user.actor, action="product_created", object_type="product",
                                object_id=product.id, summary=f"{product.slug}: {product.name}")
            product_id = product.id
    except FormErrors as exc:
        return await _product_form(request, ctx, user, values=values, errors=exc.errors, status_code=422)
    except DomainError as exc:
        field = "slug" if exc.code == "slug_taken" else "merchant_code" if "merchant" in exc.code else "form"
        return await _product_form(request, ctx, user, values=values, errors={field: exc.message},
                                   status_code=_status(exc))
    return _redirect(f"/console/catalog/products/{product_id}", "created")


async def _product_page(request: Request, ctx: Any, user: ConsoleUser, product_id: int, *,
                        values: dict[str, Any] | None = None, errors: dict[str, str] | None = None,
                        sku_errors: dict[str, str] | None = None, sku_values: dict[str, Any] | None = None,
                        edited_sku: int | None = None,
                        message: tuple[str, dict[str, Any], str] | None = None,
                        status_code: int = 200) -> HTMLResponse:
    async with ctx.db.read_session() as session:
        product: Product = await catalog_service.get_product(session=session, product_id=product_id,
                                                             active_only=False, scope=user.scope)
        states = await catalog_service.stock_states(session=session, skus=product.skus)
        categories = await catalog_service.list_categories(session=session, active_only=False)
    shown = values if values is not None else {
        "category_id": product.category_id, "slug": product.slug, "name": product.name,
        "description": product.description, "redemption_guide": product.redemption_guide,
        "cover_image_url": product.cover_image_url or "", "sort_order": product.sort_order,
        "is_active": product.is_active}
    return render_page(request, "console/catalog_product.html", {
        "product": product, "values": shown, "errors": errors or {}, "categories": categories, "states": states,
        "guide_html": render_guide(str(shown.get("redemption_guide") or "")), "currencies": sorted(CURRENCIES),
        "delivery_types": list(DeliveryType), "sku_errors": sku_errors or {},
        "sku_values": sku_values or {"currency": "CNY", "min_quantity": 1, "max_quantity": 10, "on_sale": True},
        "edited_sku": edited_sku, "message": message or _flash(request),
    }, user=user, active="catalog", status_code=status_code)


@router.get("/products/{product_id}", response_class=HTMLResponse)
async def product_page(product_id: ProductId, request: Request, ctx: ContextDep, user: Editor) -> HTMLResponse:
    return await _product_page(request, ctx, user, product_id)


@router.post("/products/{product_id}", response_class=HTMLResponse)
async def update_product(product_id: ProductId, request: Request, ctx: ContextDep, user: Editor) -> Response:
    values = _product_values(await request.form())
    try:
        data = read_form(ProductUpdate, {**values, "cover_image_url": values["cover_image_url"] or ""})
        async with ctx.db.transaction() as session:
            product = await catalog_service.update_product(session=session, product_id=product_id, data=data,
                                                           scope=user.scope)
            await record_action(session=session, actor=user.actor, action="product_updated", object_type="product",
                                object_id=product.id, summary=f"{product.slug}: {product.name}")
    except FormErrors as exc:
        return await _product_page(request, ctx, user, product_id, values=values, errors=exc.errors,
                                   status_code=422)
    except catalog_service.ProductNotFound:
        raise
    except DomainError as exc:
        field = "slug" if exc.code == "slug_taken" else "category_id" if exc.code == "category_not_found" else "form"
        return await _product_page(request, ctx, user, product_id, values=values, errors={field: exc.message},
                                   status_code=_status(exc))
    return _redirect(f"/console/catalog/products/{product_id}", "saved")


@router.post("/products/{product_id}/delete", response_class=HTMLResponse)
async def delete_product(product_id: ProductId, request: Request, ctx: ContextDep, user: Editor) -> Response:
    try:
        async with ctx.db.transaction() as session:
            product = await catalog_service.get_product(session=session, product_id=product_id, active_only=False,
                                                        scope=user.scope)
            slug = product.slug
            await catalog_deletion.delete_product(session=session, product_id=product_id, scope=user.scope)
            await record_action(session=session, actor=user.actor, action="product_deleted", object_type="product",
                                object_id=product_id, summary=slug)
    except catalog_deletion.InUse as exc:
        return await _product_page(request, ctx, user, product_id, message=_in_use(request, ctx, exc, product=True),
                                   status_code=409)
    return _redirect("/console/catalog", "deleted")


@router.post("/guide-preview", response_class=HTMLResponse)
async def guide_preview(request: Request, user: Editor) -> HTMLResponse:
    """The redemption guide as buyers will see it (the page's live preview asks for it while the operator types)."""
    source = str((await request.form()).get("redemption_guide", ""))[:GUIDE_LIMIT]
    return HTMLResponse(f'<div class="guide" data-testid="guide-rendered">{render_guide(source)}</div>',
                        headers={"Cache-Control": "no-store"})


# ---------------------------------------------------------------- SKUs

def _sku_values(form: FormData, currency: str, errors: dict[str, str], *, creating: bool) -> dict[str, Any]:
    values: dict[str, Any] = {
        "name": text(form, "name", 400),
        "price_cents": money_field(form, "price", currency, errors),
        "face_value_cents": money_field(form, "face_value", currency, errors, required=False) or 0,
        "min_quantity": text(form, "min_quantity", 12) or 1, "max_quantity": text(form, "max_quantity", 12) or 10,
        "on_sale": checkbox(form, "on_sale"), "sort_order": text(form, "sort_order", 12) or 0,
        # 自选卡密: empty = buyers do not pick (None clears it on an update)
        "pick_surcharge_cents": money_field(form, "pick_surcharge", currency, errors, required=False),
    }
    if creating:
        values |= {"code": text(form, "code", 200), "currency": currency,
                   "delivery_type": text(form, "delivery_type", 40) or DeliveryType.CARD_KEY.value}
    return values


def _typed(form: FormData) -> dict[str, Any]:
    """What the operator typed, to show the form again as it was."""
    return {key: str(value)[:2000] for key, value in form.items() if key != "csrf_token"} | {
        "on_sale": checkbox(form, "on_sale")}


@router.post("/products/{product_id}/skus", response_class=HTMLResponse)
async def create_sku(product_id: ProductId, request: Request, ctx: ContextDep, user: Editor) -> Response:
    form = await request.form()
    errors: dict[str, str] = {}
    currency = text(form, "currency", 8).upper() or "CNY"
    values = _sku_values(form, currency, errors, creating=True)
    try:
        data = read_form(SkuCreate, values, errors)
        async with ctx.db.transaction() as session:
            sku = await catalog_service.create_sku(session=session, product_id=product_id, data=data,
                                                   scope=user.scope)
            await record_action(session=session, actor=user.actor, action="sku_created", object_type="sku",
                                object_id=sku.id, summary=f"{sku.code} {sku.name} at {sku.price_cents}")
    except FormErrors as exc:
        return await _product_page(request, ctx, user, product_id, sku_errors=exc.errors, sku_values=_typed(form),
                                   status_code=422)
    except catalog_service.ProductNotFound:
        raise
    except DomainError as exc:
        return await _product_page(request, ctx, user, product_id, sku_values=_typed(form),
                                   sku_errors={"code" if exc.code == "sku_code_taken" else "form": exc.message},
                                   status_code=_status(exc))
    return _redirect(f"/console/catalog/products/{product_id}", "created")


@router.post("/skus/{sku_id}", response_class=HTMLResponse)
async def update_sku(sku_id: SkuId, request: Request, ctx: ContextDep, user: Editor) -> Response:
    form = await request.form()
    async with ctx.db.read_session() as session:
        current = await catalog_service.get_sku(session=session, sku_id=sku_id, scope=user.scope)
    errors: dict[str, str] = {}
    values = _sku_values(form, current.currency, errors, creating=False)
    try:
        data = read_form(SkuUpdate, values, errors, keep_none=("pick_surcharge_cents",))
        async with ctx.db.transaction() as session:
            sku = await catalog_service.update_sku(session=session, sku_id=sku_id, data=data, scope=user.scope)
            await record_action(session=session, actor=user.actor, action="sku_updated", object_type="sku",
                                object_id=sku.id, summary=f"{sku.code}: price {sku.price_cents}, "
                                                          f"{'on' if sku.on_sale else 'off'} sale")
    except FormErrors as exc:
        return await _product_page(request, ctx, user, current.product_id, sku_errors=exc.errors,
                                   edited_sku=sku_id, status_code=422)
    except catalog_service.SkuNotFound:
        raise
    except DomainError as exc:
        return await _product_page(request, ctx, user, current.product_id, sku_errors={"form": exc.message},
                                   edited_sku=sku_id, status_code=_status(exc))
    return _redirect(f"/console/catalog/products/{current.product_id}", "saved")


@router.post("/skus/{sku_id}/delete", response_class=HTMLResponse)
async def delete_sku(sku_id: SkuId, request: Request, ctx: ContextDep, user: Editor) -> Response:
    async with ctx.db.read_session() as session:
        current = await catalog_service.get_sku(session=session, sku_id=sku_id, scope=user.scope)
    try:
        async with ctx.db.transaction() as session:
            await catalog_deletion.delete_sku(session=session, sku_id=sku_id, scope=user.scope)
            await record_action(session=session, actor=user.actor, action="sku_deleted", object_type="sku",
                                object_id=sku_id, summary=current.code)
    except catalog_deletion.InUse as exc:
        return await _product_page(request, ctx, user, current.product_id, message=_in_use(request, ctx, exc),
                                   status_code=409)
    return _redirect(f"/console/catalog/products/{current.product_id}", "deleted")


# ---------------------------------------------------------------- categories (the platform's)

async def _categories_page(request: Request, ctx: Any, user: ConsoleUser, *, errors: dict[str, str] | None = None,
                           values: dict[str, Any] | None = None, edited: int | None = None,
                           message: tuple[str, dict[str, Any], str] | None = None,
                           status_code: int = 200) -> HTMLResponse:
    async with ctx.db.read_session() as session:
        categories = await catalog_service.list_categories(session=session, active_only=False)
    return render_page(request, "console/catalog_categories.html", {
        "categories": categories, "errors": errors or {}, "values": values or {"is_active": True},
        "edited": edited, "message": message or _flash(request)}, user=user, active="categories",
        status_code=status_code)


@router.get("/categories", response_class=HTMLResponse)
async def categories(request: Request, ctx: ContextDep, user: Editor) -> HTMLResponse:
    _platform_only(user)
    return await _categories_page(request, ctx, user)


def _category_values(form: FormData) -> dict[str, Any]:
    return {"slug": text(form, "slug", 200), "name": text(form, "name", 400),
            "description": text(form, "description", GUIDE_LIMIT + 1),
            "sort_order": text(form, "sort_order", 12) or 0, "is_active": checkbox(form, "is_active")}


@router.post("/categories", response_class=HTMLResponse)
async def create_category(request: Request, ctx: ContextDep, user: Editor) -> Response:
    _platform_only(user)
    values = _category_values(await request.form())
    try:
        data = read_form(CategoryCreate, values)
        async with ctx.db.transaction() as session:
            category = await catalog_service.create_category(session=session, data=data)
            await record_action(session=session, actor=user.actor, action="category_created",
                                object_type="category", object_id=category.id, summary=category.slug)
    except FormErrors as exc:
        return await _categories_page(request, ctx, user, errors=exc.errors, values=values, status_code=422)
    except DomainError as exc:
        return await _categories_page(request, ctx, user, errors={"slug": exc.message}, values=values,
                                      status_code=_status(exc))
    return _redirect("/console/catalog/categories", "created")


@router.post("/categories/{category_id}", response_class=HTMLResponse)
async def update_category(category_id: CategoryId, request: Request, ctx: ContextDep, user: Editor) -> Response:
    _platform_only(user)
    values = _category_values(await request.form())
    try:
        data = read_form(CategoryUpdate, values)
        async with ctx.db.transaction() as session:
            category = await catalog_service.update_category(session=session, category_id=category_id, data=data)
            await record_action(session=session, actor=user.actor, action="category_updated",
                                object_type="category", object_id=category.id, summary=category.slug)
    except FormErrors as exc:
        return await _categories_page(request, ctx, user, errors=exc.errors, edited=category_id, status_code=422)
    except catalog_service.CategoryNotFound:
        raise
    except DomainError as exc:
        return await _categories_page(request, ctx, user, errors={"slug": exc.message}, edited=category_id,
                                      status_code=_status(exc))
    return _redirect("/console/catalog/categories", "saved")


@router.post("/categories/{category_id}/delete", response_class=HTMLResponse)
async def delete_category(category_id: CategoryId, request: Request, ctx: ContextDep, user: Editor) -> Response:
    _platform_only(user)
    try:
        async with ctx.db.transaction() as session:
            await catalog_deletion.delete_category(session=session, category_id=category_id)
            await record_action(session=session, actor=user.actor, action="category_deleted",
                                object_type="category", object_id=category_id, summary="")
    except catalog_deletion.InUse as exc:
        return await _categories_page(request, ctx, user, message=_message(exc), status_code=409)
    return _redirect("/console/catalog/categories", "deleted")
