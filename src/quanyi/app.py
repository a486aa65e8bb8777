"""FastAPI factory: mounts each feature's router, maps domain errors to problem responses once,
and runs the shop's background loops (reservation sweeper, sandbox notification retries)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from http import HTTPStatus
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from starlette.routing import Route

from quanyi import passwords
from quanyi.accesslog import install_access_log_redaction
from quanyi.catalog.routes import admin_router as catalog_admin_router
from quanyi.catalog.routes import router as catalog_router
from quanyi.catalog.service import QuantityOutOfRange
from quanyi.config import Settings, get_settings
from quanyi.console.routes import install as install_console
from quanyi.context import ShopContext, build_context
from quanyi.coupons.abuse import CouponClaimsLimited, CouponRefusedByRisk
from quanyi.coupons.buyer_routes import router as coupons_router
from quanyi.coupons.pages import router as coupon_pages_router
from quanyi.coupons.routes import router as coupons_admin_router
from quanyi.db import is_database_unavailable
from quanyi.deps import NotAuthorized
from quanyi.enterprises import campaigns as enterprise_campaigns
from quanyi.enterprises import oauth as enterprise_oauth
from quanyi.enterprises.campaign_routes import router as enterprise_campaigns_router
from quanyi.enterprises.claim_pages import router as claim_pages_router
from quanyi.enterprises.downloads import LinkRefused
from quanyi.enterprises.portal.routes import install as install_enterprise_portal
from quanyi.enterprises.purchase_routes import download_router as enterprise_download_router
from quanyi.enterprises.purchase_routes import router as enterprise_purchases_router
from quanyi.enterprises.routes import router as enterprises_admin_router
from quanyi.enterprises.service import EnterpriseExists
from quanyi.enterprises.user_routes import router as enterprise_users_router
from quanyi.errors import Conflict, DomainError, InvalidInput, NotFound
from quanyi.inventory.import_jobs import stop_import_jobs
from quanyi.inventory.import_routes import IMPORT_JOB_UPLOAD_PATH
from quanyi.inventory.import_routes import router as import_jobs_router
from quanyi.inventory.masking import install_log_redaction
from quanyi.inventory.rotation import RotationRefused
from quanyi.inventory.routes import IMPORT_UPLOAD_PATH, MULTIPART_ENVELOPE_BYTES
from quanyi.inventory.routes import router as inventory_router
from quanyi.inventory.security_routes import router as key_security_router
from quanyi.inventory.service import NothingImported, OutOfStock
from quanyi.inventory.shared_routes import router as shared_codes_router
from quanyi.ledger import service as ledger_service
from quanyi.ledger.routes import router as ledger_router
from quanyi.loyalty import pages as _loyalty_pages  # noqa: F401 - the points and level card of /account
from quanyi.loyalty.routes import admin_router as loyalty_admin_router
from quanyi.loyalty.routes import member_router as loyalty_member_router
from quanyi.members import service as members_service
from quanyi.members.pages import router as member_pages_router
from quanyi.members.routes import router as members_router
from quanyi.merchants.applications import ApplicationRateLimited
from quanyi.merchants.pages import router as merchant_pages_router
from quanyi.merchants.routes import admin_router as merchants_admin_router
from quanyi.merchants.routes import applications_admin_router
from quanyi.merchants.routes import router as merchants_router
from quanyi.merchants.settlement_routes import admin_router as merchant_money_router
from quanyi.middleware import (
    BodyLimitMiddleware,
    RequestTooLarge,
    SecurityHeadersMiddleware,
    UnexpectedErrorMiddleware,
    request_id,
)
from quanyi.money import InvalidAmount
from quanyi.notifications.routes import admin_router as notifications_admin_router
from quanyi.openapi import install_problem_responses
from quanyi.orders.routes import router as orders_router
from quanyi.orders.service import LookupRateLimited, OrderNotPayable
from quanyi.orders.sold_out_lane import SoldOutLane
from quanyi.payments.gateway import CheckoutRefused, GatewayUnavailable, NoPaymentMethod, NotificationRejected
from quanyi.payments.routes import admin_router as payments_admin_router
from quanyi.payments.routes import reconciliation_router
from quanyi.payments.routes import router as payments_router
from quanyi.payments.sandbox.routes import router as sandbox_router
from quanyi.payments.service import PaymentAmountMismatch
from quanyi.pricing.pages import router as pricing_pages_router
from quanyi.pricing.routes import router as pricing_router
from quanyi.promoters.pages import router as promoter_pages_router
from quanyi.promoters.routes import admin_router as promoters_admin_router
from quanyi.promoters.routes import link_router as promoter_link_router
from quanyi.promoters.routes import member_router as promoter_member_router
from quanyi.refunds.policy import InvalidRefund, RefundExceedsPayment, RefundNotAllowed
from quanyi.refunds.routes import router as refunds_router
from quanyi.resellers.admin_routes import router as resellers_admin_router
from quanyi.resellers.routes import router as open_api_router
from quanyi.resellers.service import ResellerExists
from quanyi.resellers.signing import AccountSuspended, RateLimited, SignatureRefused
from quanyi.risk.challenges import VerificationExpired, VerificationFailed, VerificationUnavailable
from quanyi.risk.engine import CheckoutRateLimited, RiskDenied, VerificationRequired
from quanyi.risk.holdings import TooMuchStockHeld
from quanyi.risk.routes import admin_router as risk_admin_router
from quanyi.staff.admin_routes import admin_router as staff_admin_router
from quanyi.staff.routes import router as staff_router
from quanyi.staff.service import LoginFailed, LoginRateLimited, PermissionDenied
from quanyi.suppliers.fulfilment_routes import admin_router as fulfilment_admin_router
from quanyi.suppliers.fulfilment_routes import router as fulfilment_router
from quanyi.suppliers.push import StockCallbackRejected
from quanyi.suppliers.recharge import RechargeCallbackRejected
from quanyi.suppliers.routes import admin_router as suppliers_admin_router
from quanyi.suppliers.routes import router as suppliers_router
from quanyi.suppliers.sync import SyncFailed
from quanyi.system.routes import router as system_router
from quanyi.tasks import refresh_gateways, run_background_loops
from quanyi.web.csrf import CsrfCookieMiddleware, CsrfFailed
from quanyi.web.order_link import router as order_link_router
from quanyi.web.routes import render_error_page
from quanyi.web.routes import router as web_router

__all__ = ["create_app"]

logger = logging.getLogger(__name__)

# Domain error -> HTTP status. The most specific class in an exception's MRO wins.
STATUS_BY_ERROR: dict[type[Exception], int] = {
    DomainError: 400,
    InvalidInput: 422,
    QuantityOutOfRange: 422,
    NothingImported: 422,
    NotFound: 404,
    Conflict: 409,
    OutOfStock: 409,
    OrderNotPayable: 409,
    NotAuthorized: 401,
    LookupRateLimited: 429,
    NotificationRejected: 400,
    PaymentAmountMismatch: 400,
    GatewayUnavailable: 503,
    CheckoutRefused: 409,
    NoPaymentMethod: 503,
    InvalidRefund: 422,
    RefundNotAllowed: 409,
    RefundExceedsPayment: 409,
    # suppliers: catalog, mapping, sync
    StockCallbackRejected: 400,
    SyncFailed: 502,

    # key security
    LoginFailed: 401,
    LoginRateLimited: 429,
    PermissionDenied: 403,
    RotationRefused: 409,

    RechargeCallbackRejected: 400,  # supplier fulfilment

    # customer prepaid balances and the reseller open API (its own routes answer in the protocol's words)
    ledger_service.CustomerBalanceInsufficient: 402,
    ledger_service.CustomerAccountFrozen: 403,
    SignatureRefused: 401,
    RateLimited: 429,
    AccountSuspended: 403,
    ResellerExists: 409,
    EnterpriseExists: 409,
    LinkRefused: 410,  # an expired, used-up, revoked or unknown download link
    enterprise_campaigns.CampaignClosed: 409,
    enterprise_oauth.ProviderUnavailable: 502,
    enterprise_oauth.LoginFailed: 403,

    # risk control
    RiskDenied: 403,
    VerificationRequired: 403,
    VerificationFailed: 422,
    VerificationExpired: 410,
    VerificationUnavailable: 403,
    CheckoutRateLimited: 429,
    TooMuchStockHeld: 429,
    CouponClaimsLimited: 429,  # coupon abuse (Retry-After)
    CouponRefusedByRisk: 403,  # too much stock held in unpaid / under-review orders (Retry-After)
    ApplicationRateLimited: 429,  # merchants

    CsrfFailed: 403,  # a form post that did not come from the shop's own page

    # buyer accounts (members)
    members_service.SignInRateLimited: 429,
    members_service.CodeCannotBeSent: 403,
    members_service.CodeExpired: 410,
    members_service.InvalidCredentials: 401,
    members_service.MemberDisabled: 403,
}

_DATABASE_RETRY_AFTER = 2  # seconds: a failover or a dropped connection is over about that fast

_DOCS_STATIC = Path(__import__("fastapi_offline").__file__).parent / "static"


def status_for(exc: Exception) -> int:
    for cls in type(exc).__mro__:
        if cls in STATUS_BY_ERROR:
            return STATUS_BY_ERROR[cls]
    return 500


def _jsonable(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, list | tuple):
        return [_jsonable(item) for item in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)


def problem(status: int, code: str, detail: str, extra: dict[str, Any] | None = None) -> JSONResponse:
    """RFC 9457 problem document with a stable machine-readable `code`; `extra` adds members, never
    replacing the standard ones."""
    extra = extra or {}
    body = {k: _jsonable(v) for k, v in extra.items()}
    body.update({"type": f"urn:quanyi:problem:{code}", "title": HTTPStatus(status).phrase, "status": status,
                 "code": code, "detail": detail})
    headers = {"Retry-After": str(extra["retry_after"])} if "retry_after" in extra else None
    return JSONResponse(body, status_code=status, media_type="application/problem+json", headers=headers)


def _domain_problem(exc: DomainError) -> Response:
    return problem(status_for(exc), exc.code, exc.message, exc.context)


def _wants_html(request: Request) -> bool:
    path = request.url.path
    if path.startswith(("/api/", "/payments/", "/openapi.json")):
        return False
    return "text/html" in request.headers.get("accept", "")


def _field_path(loc: tuple[Any, ...]) -> str:
    return ".".join(str(part) for part in loc)


def _allowed_methods(request: Request) -> str:
    """Every method some route serves at this path (Starlette names only the first matching route's)."""
    methods: set[str] = set()
    for route in request.app.router.routes:
        if isinstance(route, APIRoute | Route) and route.path_regex.match(request.url.path):
            methods |= route.methods or set()
    return ", ".join(sorted(methods))


async def _unexpected(request: Request, exc: Exception) -> Response:
    """The one log record of a 500 (traceback, method, path, request id), and its answer."""
    rid = request_id(request)
    logger.error("unhandled error on %s %s%s", request.method, request.url.path,
                 f" (request id {rid})" if rid else "", exc_info=exc, extra={"request_id": rid})
    return problem(500, "internal_error", "something went wrong on our side; the request was not applied")


async def _too_large(request: Request, limit: int) -> Response:
    return problem(413, "payload_too_large", f"the request body is larger than this endpoint accepts ({limit} bytes)",
                   {"max_bytes": limit})


def _body_limit(settings: Settings) -> Any:
    def limit_for(path: str) -> int:
        if IMPORT_UPLOAD_PATH.fullmatch(path):
            return settings.max_import_bytes + MULTIPART_ENVELOPE_BYTES
        if IMPORT_JOB_UPLOAD_PATH.fullmatch(path):
            return settings.max_import_job_bytes + MULTIPART_ENVELOPE_BYTES
        return settings.max_request_bytes
    return limit_for


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(DomainError)
    async def _domain(request: Request, exc: DomainError) -> Response:
        status = status_for(exc)
        if _wants_html(request):
            page = render_error_page(request, status, exc.code, exc.message)
            if "retry_after" in exc.context:  # every limit answers 429 with Retry-After, pages too
                page.headers["Retry-After"] = str(exc.context["retry_after"])
            return page
        return _domain_problem(exc)

    @app.exception_handler(IntegrityError)
    async def _integrity(request: Request, exc: IntegrityError) -> Response:
        # Services check their rules first; this only catches a concurrent request winning a race
        # for the same unique value or row. The transaction has rolled back.
        logger.info("integrity conflict on %s %s: %s", request.method, request.url.path, exc.orig)
        return problem(409, "conflict", "this conflicts with a change made at the same time; reload and retry")

    @app.exception_handler(InvalidAmount)
    async def _amount(request: Request, exc: InvalidAmount) -> Response:
        return problem(422, "invalid_amount", str(exc))

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> Response:
        errors = [
            {"field": _field_path(err.get("loc", ())), "message": err.get("msg", ""), "type": err.get("type", "")}
            for err in exc.errors()
        ]
        if any(err["type"] == "json_invalid" for err in errors):
            return problem(400, "malformed_json", "the request body is not valid JSON", {"errors": errors})
        first = errors[0] if errors else {"field": "", "message": "invalid request"}
        detail = f"{first['field']}: {first['message']}" if first["field"] else first["message"]
        return problem(422, "validation_failed", detail, {"errors": errors})

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        codes = {404: "not_found", 405: "method_not_allowed", 413: "payload_too_large"}
        code = codes.get(exc.status_code, "http_error")
        detail = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).phrase
        if _wants_html(request):
            return render_error_page(request, exc.status_code, code, detail)
        response = problem(exc.status_code, code, detail,
                           {"max_bytes": exc.limit} if isinstance(exc, RequestTooLarge) else None)
        if exc.status_code == 405:
            response.headers["Allow"] = _allowed_methods(request)
        return response

    @app.exception_handler(DBAPIError)
    @app.exception_handler(PoolTimeout)
    @app.exception_handler(ConnectionRefusedError)
    async def _database(request: Request, exc: Exception) -> Response:
        if not is_database_unavailable(exc):
            return await _unexpected(request, exc)
        # Transient (failover, restart, dropped connection, full pool): the transaction rolled back or never
        # began; the pool pings connections before reuse, so a retry gets a healthy one.
        logger.warning("database unavailable on %s %s: %s", request.method, request.url.path,
                       str(exc).splitlines()[0][:300])
        detail = "the database is unavailable right now; please retry shortly"
        if _wants_html(request):
            page = render_error_page(request, 503, "database_unavailable", detail)
            page.headers["Retry-After"] = str(_DATABASE_RETRY_AFTER)
            return page
        return problem(503, "database_unavailable", detail, {"retry_after": _DATABASE_RETRY_AFTER})

    @app.exception_handler(ClientDisconnect)
    async def _client_gone(request: Request, exc: ClientDisconnect) -> Response:
        # The client closed the connection before sending its whole body: nothing to answer, nothing applied.
        logger.info("client disconnected mid-request on %s %s", request.method, request.url.path)
        return Response(status_code=400)



def _install_docs(app: FastAPI) -> None:
    """Swagger UI and ReDoc served from local files: the shop may run where no CDN is reachable."""
    app.mount("/_docs", StaticFiles(directory=_DOCS_STATIC), name="docs-static")

    @app.get("/docs", include_in_schema=False)
    async def swagger() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="/openapi.json", title=f"{app.title} API",
            swagger_js_url="/_docs/swagger-ui-bundle.js", swagger_css_url="/_docs/swagger-ui.css",
            swagger_favicon_url="/_docs/favicon.png",
        )

    @app.get("/redoc", include_in_schema=False)
    async def redoc() -> HTMLResponse:
        return get_redoc_html(openapi_url="/openapi.json", title=f"{app.title} API",
                              redoc_js_url="/_docs/redoc.standalone.js", with_google_fonts=False)


def create_app(settings: Settings | None = None, *, ctx: ShopContext | None = None) -> FastAPI:
    """Build the shop. Tests pass their own context; `quanyi serve` builds one from the environment."""
    owns_context = ctx is None
    ctx = ctx or build_context(settings or get_settings())

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        task = None
        await passwords.warm_up()
        try:
            await refresh_gateways(ctx)
        except Exception:
            logger.exception("could not load the payment gateway configuration; only the sandbox (if on) is active")
        if ctx.settings.run_background_tasks:
            task = asyncio.create_task(run_background_loops(ctx), name="quanyi-background")
        try:
            yield
        finally:
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await stop_import_jobs()  # they resume once their lease runs out
            if owns_context:
                await ctx.close()

    app = FastAPI(
        title="quanyi 权益商城",
        version="0.1.0",
        summary="Virtual-goods shop: catalog, encrypted card-key stock, orders, payments, instant delivery.",
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
        openapi_tags=[
            {"name": "catalog", "description": "Categories, products and SKUs with live stock"},
            {"name": "orders", "description": "Checkout, order status, card-key reveal, lookup without an account"},
            {"name": "payments", "description": "Start a payment; gateway notification endpoints"},
            {"name": "admin: catalog", "description": "Manage categories, products, SKUs (admin token)"},
            {"name": "admin: stock", "description": "Import and void card-key batches (admin token)"},
            {"name": "admin: payments",
             "description": "Payment gateway accounts, secrets encrypted at rest (admin token)"},
            {"name": "admin: notifications", "description": "Outbox dead letters and retries (admin token)"},
            {"name": "admin: refunds", "description": "Refund orders through their gateway (admin token)"},
            {"name": "admin: reconciliation", "description": "Daily reconciliation with the gateways (admin token)"},
            {"name": "suppliers", "description": "Signed stock/cost pushes from suppliers"},
            {"name": "admin: suppliers",
             "description": "Suppliers, product mappings, price policies, sync (admin token)"},

            {"name": "staff", "description": "Staff login: username + password for an expiring bearer token"},
            {"name": "admin: card-key security",
             "description": "Audited staff reveal, masked listings, leak tracing (staff permissions)"},

            {"name": "admin: ledger",
             "description": "Double-entry ledger, supplier prepaid balances, statements (admin token)"},
            {"name": "admin: risk", "description": "Risk rules, decision log, review queue (admin token)"},
            {"name": "admin: merchants",
             "description": "Merchants on the platform (商户): admission, commission, status (platform staff)"},
            {"name": "admin: loyalty",
             "description": "Points (积分) rules, membership levels (会员等级) and member prices (platform staff)"},
            {"name": "admin: promoters",
             "description": "Distribution (分销): programme, promoters, commission, withdrawals (platform staff)"},
            {"name": "open API",
             "description": "For resellers (下游): signed requests, the quanyi protocol (docs/open-api.md)"},
            {"name": "admin: coupons",
             "description": "Coupons (优惠券): create, pause, issue to members, single-use code batches (CSV)"},
            {"name": "admin: resellers",
             "description": "Resellers: app ids, secrets, price lists, prepaid balances (admin token)"},
            {"name": "admin: enterprises",
             "description": "Enterprise customers (企业福利, B2B): balances, tier prices, bulk purchases, benefit "
                            "campaigns (platform staff)"},
            {"name": "members",
             "description": "Buyer accounts (会员): sign up / log in by one-time code or password, my orders and keys"},
            {"name": "system", "description": "Health"},
        ],
    )
    app.state.ctx = ctx
    install_log_redaction()  # plaintext card keys never reach a log record
    install_access_log_redaction()  # nor tokens in query strings (order links, cashier tickets)
    _install_error_handlers(app)
    _install_docs(app)
    # Not `exception_handler(Exception)`: Starlette re-raises after that one, and the server logs it again.
    app.add_middleware(CsrfCookieMiddleware)  # hands out the qy_csrf cookie a rendered form's token needs
    # Bodies above their limit are refused before they are read whole (Content-Length, or counted as they stream).
    app.add_middleware(BodyLimitMiddleware, limit_for=_body_limit(ctx.settings), answer=_too_large)
    app.add_middleware(UnexpectedErrorMiddleware, answer=_unexpected)
    # Checkouts of a SKU known to be sold out are refused here, before routing (the flash-sale tail).
    app.add_middleware(SoldOutLane, ctx=ctx, answer=_domain_problem)
    # Outside: the 500 answer carries the headers too. HSTS when the shop is served over https (Settings.hsts_header).
    app.add_middleware(SecurityHeadersMiddleware, hsts=ctx.settings.hsts_header())
    install_problem_responses(app)
    for router in (system_router, catalog_router, catalog_admin_router, inventory_router, import_jobs_router,
                   orders_router,
                   payments_router, payments_admin_router, reconciliation_router, refunds_router,
                   notifications_admin_router, suppliers_router, suppliers_admin_router, fulfilment_router,
                   fulfilment_admin_router, staff_router, key_security_router, risk_admin_router, open_api_router,
                   resellers_admin_router, web_router, order_link_router, pricing_router,
                   coupons_admin_router, shared_codes_router, coupons_router, coupon_pages_router,
                   pricing_pages_router):
        app.include_router(router)
    app.include_router(ledger_router)  # ledger: trial balance, supplier top-ups, statements, reconciliation
    install_console(app)  # the web console at /console
    app.include_router(merchants_admin_router)  # merchants (商户入驻): admission, terms, scope of their staff
    app.include_router(merchant_money_router)  # merchants: commission, balances, withdrawals, statements
    app.include_router(merchants_router)  # merchant applications (入驻申请), public
    app.include_router(applications_admin_router)  # ... and their review
    app.include_router(merchant_pages_router)  # storefront: /m/<code>, the application form
    app.include_router(enterprises_admin_router)  # enterprise customers (企业福利)
    app.include_router(enterprise_purchases_router)  # ... their bulk purchases (批量采购)
    app.include_router(enterprise_download_router)  # ... whose codes download by expiring link
    app.include_router(enterprise_campaigns_router)  # ... their benefit campaigns (福利活动)
    app.include_router(claim_pages_router)  # ... and the employees' claim page
    app.include_router(enterprise_users_router)  # ... and the people who log in to their portal
    install_enterprise_portal(app)  # ... which is /portal (企业门户)
    app.include_router(staff_admin_router)  # staff and roles of the caller's scope (a merchant owner: their staff)
    app.include_router(members_router)  # buyer accounts: /api/members/...
    app.include_router(member_pages_router)  # ... and their pages: /account
    app.include_router(promoters_admin_router)  # distribution (分销): programme, promoters, commission withdrawals
    app.include_router(promoter_link_router)  # storefront: the promotion link /r/<code> and its QR code
    app.include_router(promoter_member_router)  # a member's own promoter centre: /api/members/me/promoter
    app.include_router(promoter_pages_router)  # ... and its page: /account/promoter
    app.include_router(loyalty_admin_router)  # points rules, membership levels, member prices
    app.include_router(loyalty_member_router)  # a member's points and level: /api/members/me/loyalty
    if ctx.settings.sandbox_enabled:
        # The sandbox's cashier and merchant API exist only while the sandbox is a configured gateway.
        app.include_router(sandbox_router)
    app.mount("/static", StaticFiles(directory=Path(__file__).parent / "web" / "static"), name="static")
    return app
