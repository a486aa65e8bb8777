"""Storefront pages of merchants: a page per merchant (`/m/<code>`), the application form (商户入驻) and its
status page, in zh-CN and English. Thin over the same services as the API."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from quanyi.catalog import service as catalog_service
from quanyi.deps import ContextDep
from quanyi.errors import DomainError
from quanyi.merchants import applications
from quanyi.merchants import service as merchants_service
from quanyi.merchants.models import MerchantStatus
from quanyi.merchants.routes import submit
from quanyi.merchants.schemas import ApplicationCreate
from quanyi.merchants.texts import MESSAGES
from quanyi.web.csrf import CSRF_PROTECTED
from quanyi.web.i18n import pick_locale, register_messages, translate
from quanyi.web.templating import render

__all__ = ["router"]

register_messages(MESSAGES)
router = APIRouter(include_in_schema=False)

CodePath = Annotated[str, Path(max_length=32)]
ApplicationNoPath = Annotated[str, Path(max_length=20)]
_FIELDS = ("code", "name", "description", "contact_name", "contact_email", "contact_phone", "owner_username")


@router.get("/m/{code}", response_class=HTMLResponse)
async def merchant_page(code: CodePath, request: Request, ctx: ContextDep) -> HTMLResponse:
    """A merchant's shop page: its name, description and goods by category. Unknown or suspended: 404."""
    async with ctx.db.read_session() as session:
        merchant = await merchants_service.get_merchant(session=session, code=code)
        if merchant.status != MerchantStatus.ACTIVE:
            raise merchants_service.MerchantNotFound(f"merchant {code!r} does not exist")
        categories = await catalog_service.list_categories(session=session)
        products = await catalog_service.list_products(session=session, merchant_id=merchant.id)
        summaries = await catalog_service.summarize_products(session=session, products=products)
    by_category: dict[int, list[Any]] = {}
    for summary in summaries:
        by_category.setdefault(summary.category_id, []).append(summary)
    sections = [(c, by_category[c.id]) for c in categories if by_category.get(c.id)]
    return render(request, "merchant.html", {"merchant": merchant, "sections": sections})


@router.get("/merchants/apply", response_class=HTMLResponse)
async def apply_form(request: Request) -> HTMLResponse:
    return render(request, "merchant_apply.html", {"form": {}, "errors": {}})


@router.post("/merchants/apply", response_class=HTMLResponse, dependencies=[CSRF_PROTECTED])
async def apply(request: Request, ctx: ContextDep) -> Response:
    locale = pick_locale(request, ctx.settings.default_locale)
    raw = await request.form()
    form = {key: str(raw.get(key, ""))[:2000] for key in (*_FIELDS, "owner_password")}
    try:
        data = ApplicationCreate.model_validate({k: v for k, v in form.items() if v.strip() or k == "description"})
    except ValidationError as exc:
        errors = {str(e["loc"][0]): translate(locale, f"apply.err.{e['loc'][0]}") for e in exc.errors() if e["loc"]}
        return _form(request, form, errors, 422)
    try:
        submitted = await submit(request, ctx, data)
    except applications.ApplicationConflict as exc:
        field = str(exc.context.get("field", "code"))
        return _form(request, form, {field: translate(locale, f"apply.taken.{field}")}, 409)
    except applications.ApplicationRateLimited as exc:
        page = _form(request, form, {"form": translate(locale, "apply.limited")}, 429)
        page.headers["Retry-After"] = str(exc.context["retry_after"])
        return page
    except DomainError:  # the login rules (format, password length) checked by staff
        return _form(request, form, {"owner_password": translate(locale, "apply.err.owner_password")}, 422)
    return RedirectResponse(f"/merchants/apply/{submitted.application_no}?t={submitted.access_token}",
                            status_code=303)


def _form(request: Request, form: dict[str, str], errors: dict[str, str], status: int) -> HTMLResponse:
    kept = {k: v for k, v in form.items() if k != "owner_password"}  # a password is never sent back
    return render(request, "merchant_apply.html", {"form": kept, "errors": errors}, status_code=status)


@router.get("/merchants/apply/{application_no}", response_class=HTMLResponse)
async def application_page(application_no: ApplicationNoPath, request: Request, ctx: ContextDep) -> HTMLResponse:
    """Where the applicant follows the application (the link carries its access token)."""
    no = application_no.upper()
    token = request.query_params.get("t")
    if not applications.verify_application_token(ctx.settings.app_secret.get_secret_value(), no, token):
        raise applications.ApplicationNotFound(f"application {application_no!r} does not exist")
    async with ctx.db.read_session() as session:
        application = await applications.get_application(session=session, application_no=no)
    return render(request, "merchant_application.html", {"application": application, "token": token})
