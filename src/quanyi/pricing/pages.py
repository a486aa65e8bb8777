"""The storefront's price preview: the checkout form's "Apply" button posts here and the product page comes back
with the server's breakdown (list price, member price, coupon, points, payable) from `pricing.price_order`."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from pydantic import ValidationError

from quanyi.catalog import service as catalog_service
from quanyi.coupons.texts import COUPON_ERRORS, reason_text
from quanyi.deps import ContextDep
from quanyi.errors import DomainError
from quanyi.members.dependencies import OptionalMemberDep
from quanyi.pricing import service as pricing_service
from quanyi.pricing.schemas import QuoteRequest
from quanyi.web.csrf import CSRF_PROTECTED
from quanyi.web.i18n import pick_locale, translate
from quanyi.web.routes import CHECKOUT_FIELDS, SlugPath, checkout_payload, product_page_view

__all__ = ["router"]

router = APIRouter(include_in_schema=False)


@router.post("/p/{slug}/quote", response_class=HTMLResponse, dependencies=[CSRF_PROTECTED])
async def preview(slug: SlugPath, request: Request, ctx: ContextDep, member: OptionalMemberDep) -> HTMLResponse:
    locale = pick_locale(request, ctx.settings.default_locale)
    raw = await request.form()
    form = {key: str(raw.get(key, "")) for key in CHECKOUT_FIELDS}
    payload = checkout_payload(form)
    try:
        data = QuoteRequest.model_validate({k: payload[k] for k in ("sku_id", "quantity", "points", "coupon_codes",
                                                                    "member_coupon_ids") if k in payload})
    except ValidationError as exc:
        field = str(exc.errors()[0]["loc"][0]) if exc.errors()[0]["loc"] else "form"
        coupon = field.startswith(("coupon", "member_coupon"))
        errors = ({"coupon_codes": translate(locale, "err.coupon")} if coupon
                  else {"form": translate(locale, "err.form")})
        return await product_page_view(request, ctx, slug, form=form, status_code=422, errors=errors)
    try:
        async with ctx.db.read_session() as session:
            product = await catalog_service.get_product_by_slug(session=session, slug=slug)
            sku = await catalog_service.get_sku(session=session, sku_id=data.sku_id)
            if sku.product_id != product.id:
                raise catalog_service.SkuNotFound("not this product's SKU")
            catalog_service.check_orderable(sku, data.quantity, supplied=True)
            breakdown = await pricing_service.price_order(
                session=session, sku=sku, quantity=data.quantity, member_id=member.member_id if member else None,
                points=data.points if member else 0, coupon_codes=data.coupon_codes,
                member_coupon_ids=data.member_coupon_ids)
    except COUPON_ERRORS as exc:
        return await product_page_view(request, ctx, slug, form=form, status_code=409,
                                       errors={"coupon_codes": reason_text(locale, exc)})
    except DomainError:
        return await product_page_view(request, ctx, slug, form=form, status_code=409,
                                       errors={"form": translate(locale, "err.not_on_sale")})
    return await product_page_view(request, ctx, slug, form=form, quote=breakdown.as_dict())
