"""Storefront pages: home, product + checkout, order (pay, reveal, copy), lookup without an account.

Pages are thin over the same services as the API. Routes that catch a domain error to re-render a
form run their transaction in an explicit block inside the `try`, so the failed unit of work has
already rolled back when the page is drawn (a half-made order can never be committed by accident).
"""

from __future__ import annotations

import logging
from typing import Annotated, Any

import segno
from fastapi import APIRouter, Path, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from markupsafe import Markup
from pydantic import ValidationError

from quanyi.catalog import service as catalog_service
from quanyi.coupons import abuse as coupon_abuse
from quanyi.coupons.pages import member_coupon_views
from quanyi.coupons.texts import COUPON_ERRORS, reason_text
from quanyi.db import utcnow
from quanyi.deps import ContextDep, client_ip, user_agent
from quanyi.errors import DomainError
from quanyi.inventory import picking
from quanyi.inventory.service import OutOfStock
from quanyi.loyalty import service as loyalty_service
from quanyi.members.dependencies import OptionalMemberDep, resolve_member
from quanyi.orders import service as orders_service
from quanyi.orders.access import (
    COOKIE_NAME,
    cookie_with_token,
    order_access_token,
    tokens_from_cookie,
    verify_order_access,
)
from quanyi.orders.numbers import normalize_order_no
from quanyi.orders.placing import CheckoutInput, place_order
from quanyi.orders.schemas import OrderCreate
from quanyi.orders.state import OrderStatus
from quanyi.payments import service as payments_service
from quanyi.payments.gateway import (
    CheckoutMode,
    CheckoutRefused,
    GatewayUnavailable,
    GatewayUnsupported,
    UnknownGateway,
)
from quanyi.payments.titles import title_of
from quanyi.promoters.referral import REFERRAL_COOKIE
from quanyi.risk import engine as risk_engine
from quanyi.risk.challenges import Verification, VerificationExpired, VerificationFailed, VerificationUnavailable
from quanyi.risk.checkout import ensure_device_cookie, request_device
from quanyi.risk.holdings import TooMuchStockHeld
from quanyi.urls import shop_base_url
from quanyi.web.csrf import CSRF_PROTECTED
from quanyi.web.i18n import pick_locale, translate
from quanyi.web.templating import render

__all__ = ["router", "render_error_page", "grant_order_access", "lookup_page", "product_page_view", "checkout_payload",
           "CHECKOUT_FIELDS"]

router = APIRouter(include_in_schema=False)
logger = logging.getLogger(__name__)

SlugPath = Annotated[str, Path(max_length=80)]
CONFIRM_REFRESHES = 15
OrderNoPath = Annotated[str, Path(max_length=64)]


# Errors a buyer or an enterprise's user can act on, in the page's language.
_TRANSLATED_ERRORS = {"csrf_failed": "error.csrf_failed", "download_link_invalid": "error.download_link_invalid",
                      "form_control_chars": "error.form_control_chars"}


def render_error_page(request: Request, status: int, code: str, message: str, *, field: str = "") -> HTMLResponse:
    if code in _TRANSLATED_ERRORS:
        ctx = request.app.state.ctx
        message = translate(pick_locale(request, ctx.settings.default_locale), _TRANSLATED_ERRORS[code], field=field)
    return render(request, "error.html", {"status": status, "code": code, "message": message},
                  status_code=status)


def _redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


def grant_order_access(response: Response, request: Request, ctx: ContextDep, order_no: str) -> None:
    """Keep the order's access token in the buyer's HttpOnly cookie (newest first, the last 20 orders)."""
    token = order_access_token(ctx.settings.app_secret.get_secret_value(), order_no)
    value = cookie_with_token(request.cookies.get(COOKIE_NAME), order_no, token)
    response.set_cookie(COOKIE_NAME, value, max_age=180 * 86400, httponly=True, samesite="lax",
                        secure=request.url.scheme == "https")


def _has_access(request: Request, ctx: ContextDep, order_no: str) -> bool:
    token = tokens_from_cookie(request.cookies.get(COOKIE_NAME)).get(order_no)
    return verify_order_access(ctx.settings.app_secret.get_secret_value(), order_no, token)


# ---------------------------------------------------------------- catalog pages

@router.get("/", response_class=HTMLResponse)
async def home(request: Request, ctx: ContextDep) -> HTMLResponse:
    async with ctx.db.read_session() as session:
        categories = await catalog_service.list_categories(session=session)
        products = await catalog_service.list_products(session=session)
        summaries = await catalog_service.summarize_products(session=session, products=products)
    by_category: dict[int, list[Any]] = {}
    for summary in summaries:
        by_category.setdefault(summary.category_id, []).append(summary)
    sections = [(c, by_category[c.id]) for c in categories if by_category.get(c.id)]
    return render(request, "home.html", {"sections": sections})


async def _product_page(request: Request, ctx: ContextDep, slug: str, *, form: dict[str, Any] | None = None,
                        errors: dict[str, str] | None = None, status_code: int = 200,
                        quote: dict[str, Any] | None = None) -> HTMLResponse:
    member = await resolve_member(request, ctx, strict=False)
    async with ctx.db.read_session() as session:
        product = await catalog_service.get_product_by_slug(session=session, slug=slug)
        view = await catalog_service.describe_product(session=session, product=product)
        category = await catalog_service.get_category(session=session, category_id=product.category_id)
        # 自选卡密: the keys buyers may pick, by the label the operator gave them (never the codes)
        picks = {sku.id: await catalog_service.pickable_keys(session=session, sku_id=sku.id)
                 for sku in view.skus if sku.product_type == "chosen_card_key" and sku.stock.purchasable}
        # A signed-in member may pay part of the order with points (积分抵现): show what they have.
        points_offer = await loyalty_service.points_offer(session=session, member_id=member.member_id) \
            if member is not None else None
        member_coupons = (await member_coupon_views(session, member.member_id, pick_locale(
            request, ctx.settings.default_locale)) if member else [])
    form = form or {}
    selected = form.get("sku_id")
    if selected is None:
        selected = next((str(s.id) for s in view.skus if s.stock.purchasable), None)
    return render(request, "product.html", {
        "product": view, "category": category, "form": form, "errors": errors or {}, "picks": picks,
        "selected_sku_id": str(selected) if selected is not None else None, "points_offer": points_offer,
        "member_coupons": member_coupons, "quote": quote,  # coupons at checkout; the server's price preview
    }, status_code=status_code)


product_page_view = _product_page  # the price preview (quanyi/pricing/pages.py) draws the same page


@router.get("/p/{slug}", response_class=HTMLResponse)
async def product_page(slug: SlugPath, request: Request, ctx: ContextDep, member: OptionalMemberDep) -> HTMLResponse:
    # A logged-in member's order goes to their account; their contact is filled in (they may change it).
    prefill = {"contact": member.email or member.phone or ""} if member is not None else None
    response = await _product_page(request, ctx, slug, form=prefill)
    ensure_device_cookie(ctx, request, response)  # risk control counts checkouts per (shop-issued) device
    return response


_FIELD_ERRORS = {"card_key_id": "err.card_key_taken", "sku_id": "err.sku", "quantity": "err.quantity_plain",
                 "contact": "err.contact", "points": "loyalty.err.points",
                 "query_password": "err.password", "recharge_account": "err.recharge_account",
                 "coupon_codes": "err.coupon", "member_coupon_ids": "err.coupon"}
CHECKOUT_FIELDS = ("sku_id", "quantity", "contact", "query_password", "recharge_account", "challenge_id",
                   "verification_code", "card_key_id", "points", "coupon_code", "member_coupon_id")


def checkout_payload(form: dict[str, str]) -> dict[str, Any]:
    """The order fields of a checkout form: empty fields left out, the coupon fields as the API's lists."""
    payload: dict[str, Any] = {k: v for k, v in form.items()
                               if v.strip() != "" and k not in ("coupon_code", "member_coupon_id")}
    if form.get("coupon_code", "").strip():
        payload["coupon_codes"] = [form["coupon_code"]]
    if form.get("member_coupon_id", "").strip():
        payload["member_coupon_ids"] = [form["member_coupon_id"]]
    return payload


@router.post("/p/{slug}/checkout", response_class=HTMLResponse, dependencies=[CSRF_PROTECTED])
async def checkout(slug: SlugPath, request: Request, ctx: ContextDep, member: OptionalMemberDep) -> Response:
    locale = pick_locale(request, ctx.settings.default_locale)
    raw = await request.form()
    form = {key: str(raw.get(key, "")) for key in CHECKOUT_FIELDS}
    payload = checkout_payload(form)
    try:
        data = OrderCreate.model_validate({**payload, "locale": locale})
    except ValidationError as exc:
        errors = {}
        for err in exc.errors():
            field = str(err["loc"][0]) if err["loc"] else "form"
            errors.setdefault(field, translate(locale, _FIELD_ERRORS.get(field, "err.form")))
        return await _product_page(request, ctx, slug, form=form, errors=errors, status_code=422)
    async with ctx.db.read_session() as session:
        # The form posts to this product's URL: a SKU of another product (a stale tab, a crafted form) is
        # refused rather than silently selling something the buyer did not see. Unknown slug -> 404 page.
        product = await catalog_service.get_product_by_slug(session=session, slug=slug)
        if data.sku_id not in {sku.id for sku in product.skus}:
            return await _product_page(request, ctx, slug, form={**form, "sku_id": ""}, status_code=409,
                                       errors={"sku_id": translate(locale, "err.sku_elsewhere")})
    if not ctx.gateways.names():
        return await _product_page(request, ctx, slug, form=form, status_code=503,
                                   errors={"form": translate(locale, "err.no_payment_method")})
    if ctx.sold_out.is_sold_out(data.sku_id):  # found sold out a moment ago: no screening, no transaction
        return await _product_page(request, ctx, slug, form=form, status_code=409,
                                   errors={"form": translate(locale, "err.sold_out")})
    # ---- risk control: flood limit, refusal, or a one-time code to confirm with
    form["verification_code"] = ""
    try:
        order = await place_order(ctx, CheckoutInput(
            sku_id=data.sku_id, quantity=data.quantity, contact=data.contact, locale=locale, ip=client_ip(request),
            device=request_device(ctx, request),
            verification=Verification(data.challenge_id, data.verification_code) if data.challenge_id else None,
            query_password=data.query_password, recharge_account=data.recharge_account, card_key_id=data.card_key_id,
            member_id=member.member_id if member else None, points=data.points, coupon_codes=data.coupon_codes,
            member_coupon_ids=data.member_coupon_ids,
            # Distribution (分销): the promoter whose link (/r/CODE) the browser came through, within its window.
            referral_cookie=request.cookies.get(REFERRAL_COOKIE)))
        order_no = order.order_no
    except (risk_engine.VerificationRequired, VerificationUnavailable) as exc:
        if exc.context.get("challenge_id"):
            return await _product_page(request, ctx, slug, form={**form, "challenge_id": exc.context["challenge_id"]},
                                       errors={"form": translate(locale, "risk.code_sent")}, status_code=403)
        # No code can reach this contact (and this form has no captcha widget): say what to do instead.
        key = "risk.code_unavailable_use_email" if exc.context.get("use_contact_kind") else "risk.code_unavailable"
        return await _product_page(request, ctx, slug, form={**form, "challenge_id": ""}, status_code=403,
                                   errors={"form": translate(locale, key)})
    except (VerificationFailed, VerificationExpired) as exc:
        kept = form if isinstance(exc, VerificationFailed) else {**form, "challenge_id": ""}
        return await _product_page(request, ctx, slug, form=kept, status_code=422,
                                   errors={"verification_code": translate(locale, "risk.code_wrong")})
    except risk_engine.RiskDenied:
        return await _product_page(request, ctx, slug, form=form, status_code=403,
                                   errors={"form": translate(locale, "risk.refused")})
    except risk_engine.CheckoutRateLimited as exc:
        page = await _product_page(request, ctx, slug, form=form, status_code=429,
                                   errors={"form": translate(locale, "risk.too_many")})
        page.headers["Retry-After"] = str(exc.context["retry_after"])
        return page
    except coupon_abuse.CouponRefusedByRisk:  # 薅羊毛: new-member coupons per device / network
        return await _product_page(request, ctx, slug, form=form, status_code=403,
                                   errors={"coupon_codes": translate(locale, "checkout.coupon_risk")})
    except loyalty_service.PointsInsufficient:
        return await _product_page(request, ctx, slug, form={**form, "points": ""}, status_code=409,
                                   errors={"points": translate(locale, "loyalty.err.points_gone")})
    except picking.CardKeyTaken:
        return await _product_page(request, ctx, slug, form={**form, "card_key_id": ""}, status_code=409,
                                   errors={"card_key_id": translate(locale, "err.card_key_taken")})
    except orders_service.PickNotOffered:
        return await _product_page(request, ctx, slug, form=form, status_code=422,
                                   errors={"card_key_id": translate(locale, "err.pick_one")})
    except COUPON_ERRORS as exc:  # the coupon asked for does not apply: say why next to it; nothing was placed
        return await _product_page(request, ctx, slug, form=form, status_code=404 if exc.code == "coupon_not_found"
                                   else 409, errors={"coupon_codes": reason_text(locale, exc)})
    except orders_service.RechargeAccountInvalid:
        return await _product_page(request, ctx, slug, form=form, status_code=422,
                                   errors={"recharge_account": translate(locale, "err.recharge_account")})
    except TooMuchStockHeld as exc:  # risk control: unpaid / under-review orders hold too much already
        page = await _product_page(request, ctx, slug, form=form, status_code=429,
                                   errors={"form": translate(locale, "risk.too_much_held")})
        page.headers["Retry-After"] = str(exc.context["retry_after"])
        return page
    except OutOfStock as exc:
        if exc.context.get("available") == 0:
            ctx.sold_out.remember(data.sku_id)
        return await _product_page(request, ctx, slug, form=form, status_code=409,
                                   errors={"form": translate(locale, "err.sold_out")})
    except catalog_service.QuantityOutOfRange as exc:
        message = translate(locale, "err.quantity", min=exc.context["min_quantity"], max=exc.context["max_quantity"])
        return await _product_page(request, ctx, slug, form=form, errors={"quantity": message}, status_code=422)
    except (catalog_service.SkuNotPurchasable, catalog_service.SkuNotFound):
        return await _product_page(request, ctx, slug, form=form, status_code=409,
                                   errors={"sku_id": translate(locale, "err.not_on_sale")})
    response = _redirect(f"/orders/{order_no}")
    grant_order_access(response, request, ctx, order_no)
    ensure_device_cookie(ctx, request, response)  # e.g. a form loaded before device cookies were signed
    return response


# ---------------------------------------------------------------- order pages

async def _order_page(request: Request, ctx: ContextDep, order_no: str, *, keys: list[Any] | None = None,
                      notice: str | None = None) -> HTMLResponse:
    async with ctx.db.read_session() as session:
        order = await orders_service.get_order(session=session, order_no=order_no)
        view = await orders_service.describe_order(session=session, order=order)
        product = await catalog_service.get_product(session=session, product_id=order.product_id, active_only=False)
    remaining = max(int((view.expires_at - utcnow()).total_seconds()), 0)
    # Back from the cashier but the notification has not arrived yet: refresh every 2 s, at most
    # CONFIRM_REFRESHES times (about half a minute), then stop and say so instead of looping until expiry.
    from_cashier = view.status is OrderStatus.PENDING_PAYMENT and request.query_params.get("from") == "cashier"
    try:
        refreshes = min(max(int(request.query_params.get("n", "0")), 0), CONFIRM_REFRESHES)
    except ValueError:
        refreshes = 0
    confirming = from_cashier and refreshes < CONFIRM_REFRESHES
    # Suppliers are still buying or recharging: the page refreshes until they are done (live status).
    fulfilling = view.status is OrderStatus.PAID and view.fulfilment is not None \
        and view.fulfilment.stage not in ("succeeded", "failed")
    return render(request, "order.html", {
        "fulfilling": fulfilling,
        "order": view, "product": product, "keys": keys, "notice": notice, "confirming": confirming,
        "confirm_timed_out": from_cashier and not confirming,
        "refresh_url": f"/orders/{view.order_no}?from=cashier&n={refreshes + 1}",
        "remaining_seconds": remaining, "remaining_text": f"{remaining // 60}:{remaining % 60:02d}",
        "gateways": ctx.gateways.all(),
    })


def _require_access(request: Request, ctx: ContextDep, order_no: str) -> str | Response:
    canonical = normalize_order_no(order_no)
    if canonical is None or not _has_access(request, ctx, canonical):
        return _redirect(f"/lookup?order_no={canonical or ''}")
    return canonical


@router.get("/orders/{order_no}", response_class=HTMLResponse)
async def order_page(order_no: OrderNoPath, request: Request, ctx: ContextDep) -> Response:
    access = _require_access(request, ctx, order_no)
    if isinstance(access, Response):
        return access
    notice_key = {"not_payable": "order.not_payable", "not_cancellable": "order.not_cancellable",
                  "gateway_unavailable": "order.gateway_unavailable", "no_gateway": "order.no_gateway",
                  "gateway_refused": "order.gateway_refused"}.get(
        request.query_params.get("error", ""))
    locale = pick_locale(request, ctx.settings.default_locale)
    return await _order_page(request, ctx, access, notice=translate(locale, notice_key) if notice_key else None)


def _checkout_mode(request: Request) -> CheckoutMode:
    """Phones get the gateway's mobile cashier; desktops its page (gateways that only do QR ignore this)."""
    agent = request.headers.get("user-agent", "")
    return "wap" if any(word in agent for word in ("Mobile", "Android", "iPhone")) else "page"


@router.post("/orders/{order_no}/pay", dependencies=[CSRF_PROTECTED])
async def pay(order_no: OrderNoPath, request: Request, ctx: ContextDep) -> Response:
    access = _require_access(request, ctx, order_no)
    if isinstance(access, Response):
        return access
    try:
        gateway = ctx.gateways.get(str((await request.form()).get("gateway", ""))[:32])
    except UnknownGateway:
        return _redirect(f"/orders/{access}?error=no_gateway")
    root = shop_base_url(ctx.settings)  # configuration only, never this request's Host header
    notify_url, return_url = payments_service.callback_urls(root, gateway.name, access)
    try:
        started = await payments_service.start_payment(
            db=ctx.db, order_no=access, gateway=gateway, notify_url=notify_url, return_url=return_url,
            mode=_checkout_mode(request), buyer_ip=client_ip(request),
        )
    except GatewayUnavailable as exc:
        logger.warning("checkout at %s failed for %s: %s", gateway.name, access, exc.message)
        return _redirect(f"/orders/{access}?error=gateway_unavailable")
    except (CheckoutRefused, GatewayUnsupported) as exc:
        logger.info("checkout at %s refused for %s: %s", gateway.name, access, exc.message)
        return _redirect(f"/orders/{access}?error=gateway_refused")
    except DomainError:
        return _redirect(f"/orders/{access}?error=not_payable")
    url = started.checkout.cashier_url
    if url and (url.startswith("/") or url.startswith(root + "/")):
        return _redirect(url)
    if url:
        # Another site: the page's CSP (form-action 'self') would stop a redirect answering this form post, so
        # the buyer gets a page that moves on by itself (a navigation, not a form action), with a link as well.
        return render(request, "to_gateway.html", {
            "url": url, "gateway_title": title_of(gateway, pick_locale(request, ctx.settings.default_locale))})
    return _redirect(f"/orders/{access}/scan?gateway={gateway.name}")


@router.get("/orders/{order_no}/scan", response_class=HTMLResponse)
async def scan(order_no: OrderNoPath, request: Request, ctx: ContextDep) -> Response:
    """The QR code to scan with the wallet app; refreshes itself and moves on to the order once it is paid."""
    access = _require_access(request, ctx, order_no)
    if isinstance(access, Response):
        return access
    gateway_name = request.query_params.get("gateway", "")[:32]
    async with ctx.db.read_session() as session:
        order = await orders_service.get_order(session=session, order_no=access)
        payment = await payments_service.latest_qr_checkout(session=session, order_id=order.id,
                                                            gateway_name=gateway_name)
        view = await orders_service.describe_order(session=session, order=order)
    if view.status is not OrderStatus.PENDING_PAYMENT or payment is None or payment.checkout_qr_code is None:
        return _redirect(f"/orders/{access}")
    gateway = next((g for g in ctx.gateways.all() if g.name == gateway_name), None)
    gateway_title = title_of(gateway, pick_locale(request, ctx.settings.default_locale)) if gateway else gateway_name
    demo_url = None
    if gateway is not None and ctx.settings.sandbox_enabled:  # a demo shop: simulated gateways may be "scanned"
        demo_url = gateway.simulated_scan_url(payment.checkout_qr_code)
    # segno draws the code as path data: the gateway's text never appears in the markup, so it is safe to embed.
    qr_svg = Markup(segno.make(payment.checkout_qr_code, error="m").svg_inline(  # noqa: S704
        scale=6, border=2, dark="#111827"))
    return render(request, "scan.html", {"order": view, "qr_svg": qr_svg, "gateway_title": gateway_title,
                                         "gateway_name": gateway_name, "demo_url": demo_url})


@router.post("/orders/{order_no}/cancel", dependencies=[CSRF_PROTECTED])
async def cancel(order_no: OrderNoPath, request: Request, ctx: ContextDep) -> Response:
    access = _require_access(request, ctx, order_no)
    if isinstance(access, Response):
        return access
    try:
        async with ctx.db.transaction() as session:
            order = await orders_service.get_order(session=session, order_no=access)
            await orders_service.cancel_order(session=session, order_id=order.id, reason="cancelled by buyer")
    except DomainError:
        return _redirect(f"/orders/{access}?error=not_cancellable")
    return _redirect(f"/orders/{access}")


@router.post("/orders/{order_no}/reveal", response_class=HTMLResponse, dependencies=[CSRF_PROTECTED])
async def reveal(order_no: OrderNoPath, request: Request, ctx: ContextDep) -> Response:
    access = _require_access(request, ctx, order_no)
    if isinstance(access, Response):
        return access
    async with ctx.db.transaction() as session:
        order = await orders_service.get_order(session=session, order_no=access)
        keys = await orders_service.reveal_order_keys(
            session=session, cipher=ctx.cipher, order=order, channel="web",
            ip=client_ip(request), user_agent=user_agent(request),
        )
    return await _order_page(request, ctx, access, keys=keys)


# ---------------------------------------------------------------- lookup

def lookup_page(request: Request, *, form: dict[str, str], error: str | None = None,
                 status_code: int = 200) -> HTMLResponse:
    recent = list(tokens_from_cookie(request.cookies.get(COOKIE_NAME)))
    return render(request, "lookup.html", {"form": form, "error": error, "recent": recent},
                  status_code=status_code)


@router.get("/lookup", response_class=HTMLResponse)
async def lookup_form(request: Request) -> HTMLResponse:
    return lookup_page(request, form={"order_no": request.query_params.get("order_no", "")[:64]})


@router.post("/lookup", response_class=HTMLResponse, dependencies=[CSRF_PROTECTED])
async def lookup(request: Request, ctx: ContextDep) -> Response:
    locale = pick_locale(request, ctx.settings.default_locale)
    raw = await request.form()
    form = {key: str(raw.get(key, ""))[:254] for key in ("order_no", "contact", "query_password")}
    if not form["order_no"].strip():
        return lookup_page(request, form=form, error=translate(locale, "lookup.need_order_no"), status_code=422)
    if not (form["contact"].strip() or form["query_password"]):
        return lookup_page(request, form=form, error=translate(locale, "lookup.need_secret"), status_code=422)
    s = ctx.settings
    try:
        order = await orders_service.lookup_order(
            db=ctx.db, limiter=ctx.limiter,
            limits=orders_service.LookupLimits.from_settings(s),
            order_no=form["order_no"], contact=form["contact"] or None,
            query_password=form["query_password"] or None, ip=client_ip(request),
            device=request_device(ctx, request).id,
        )
        order_no = order.order_no
    except orders_service.LookupRateLimited:
        minutes = max(s.lookup_window_seconds // 60, 1)
        page = lookup_page(request, form=form, error=translate(locale, "lookup.limited", minutes=minutes),
                            status_code=429)
        page.headers["Retry-After"] = str(s.lookup_window_seconds)
        return page
    except orders_service.LookupFailed:
        return lookup_page(request, form=form, error=translate(locale, "lookup.failed"), status_code=404)
    response = _redirect(f"/orders/{order_no}")
    grant_order_access(response, request, ctx, order_no)
    return response
