"""FastAPI factory: mounts each feature's router, maps domain errors to problem responses once,
and runs the shop's background loops (reservation sweeper, sandbox notification retries)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from starlette.types import ASGIApp

from quanyi import passwords
from quanyi.accesslog import install_access_log_redaction
from quanyi.catalog.routes import admin_router as catalog_admin_router
from quanyi.catalog.routes import router as catalog_router
from quanyi.config import Settings, get_settings
from quanyi.console.routes import install as install_console
from quanyi.context import ShopContext, build_context
from quanyi.coupons.buyer_routes import router as coupons_router
from quanyi.coupons.pages import router as coupon_pages_router
from quanyi.coupons.routes import router as coupons_admin_router
from quanyi.enterprises.campaign_routes import router as enterprise_campaigns_router
from quanyi.enterprises.claim_pages import router as claim_pages_router
from quanyi.enterprises.portal.routes import install as install_enterprise_portal
from quanyi.enterprises.purchase_routes import download_router as enterprise_download_router
from quanyi.enterprises.purchase_routes import router as enterprise_purchases_router
from quanyi.enterprises.routes import router as enterprises_admin_router
from quanyi.enterprises.user_routes import router as enterprise_users_router
from quanyi.inventory.import_jobs import stop_import_jobs
from quanyi.inventory.import_routes import IMPORT_JOB_UPLOAD_PATH
from quanyi.inventory.import_routes import router as import_jobs_router
from quanyi.inventory.masking import install_log_redaction
from quanyi.inventory.routes import IMPORT_UPLOAD_PATH, MULTIPART_ENVELOPE_BYTES
from quanyi.inventory.routes import router as inventory_router
from quanyi.inventory.security_routes import router as key_security_router
from quanyi.inventory.shared_routes import router as shared_codes_router
from quanyi.ledger.routes import router as ledger_router
from quanyi.loyalty import pages as _loyalty_pages  # noqa: F401 - the points and level card of /account
from quanyi.loyalty.routes import admin_router as loyalty_admin_router
from quanyi.loyalty.routes import member_router as loyalty_member_router
from quanyi.members.pages import router as member_pages_router
from quanyi.members.routes import router as members_router
from quanyi.merchants.pages import router as merchant_pages_router
from quanyi.merchants.routes import admin_router as merchants_admin_router
from quanyi.merchants.routes import applications_admin_router
from quanyi.merchants.routes import router as merchants_router
from quanyi.merchants.settlement_routes import admin_router as merchant_money_router
from quanyi.middleware import BodyLimitMiddleware, FrontDoor, UnexpectedErrorMiddleware
from quanyi.notifications.routes import admin_router as notifications_admin_router
from quanyi.openapi import install_problem_responses
from quanyi.orders.checkout_lane import CheckoutLane
from quanyi.orders.purchase_lane import PurchaseLane
from quanyi.orders.routes import router as orders_router
from quanyi.orders.sold_out_lane import SoldOutLane
from quanyi.payments.routes import admin_router as payments_admin_router
from quanyi.payments.routes import reconciliation_router
from quanyi.payments.routes import router as payments_router
from quanyi.payments.sandbox.routes import router as sandbox_router
from quanyi.pricing.pages import router as pricing_pages_router
from quanyi.pricing.routes import router as pricing_router
from quanyi.problems import domain_problem, install_error_handlers, too_large, unexpected
from quanyi.promoters.pages import router as promoter_pages_router
from quanyi.promoters.routes import admin_router as promoters_admin_router
from quanyi.promoters.routes import link_router as promoter_link_router
from quanyi.promoters.routes import member_router as promoter_member_router
from quanyi.refunds.routes import router as refunds_router
from quanyi.resellers.admin_routes import router as resellers_admin_router
from quanyi.resellers.routes import router as open_api_router
from quanyi.risk.routes import admin_router as risk_admin_router
from quanyi.route_index import install_route_index
from quanyi.staff.admin_routes import admin_router as staff_admin_router
from quanyi.staff.routes import router as staff_router
from quanyi.suppliers.fulfilment_routes import admin_router as fulfilment_admin_router
from quanyi.suppliers.fulfilment_routes import router as fulfilment_router
from quanyi.suppliers.routes import admin_router as suppliers_admin_router
from quanyi.suppliers.routes import router as suppliers_router
from quanyi.system.routes import router as system_router
from quanyi.tasks import refresh_gateways, run_background_loops
from quanyi.telemetry import fastapi_arguments
from quanyi.web.csrf import CsrfCookieMiddleware
from quanyi.web.order_link import router as order_link_router
from quanyi.web.routes import router as web_router

__all__ = ["create_app"]

logger = logging.getLogger(__name__)

_DOCS_STATIC = Path(__import__("fastapi_offline").__file__).parent / "static"


class ShopApp(FastAPI):
    """FastAPI with the shop's front door (`middleware.FrontDoor`) around Starlette's middleware stack."""

    front_door: Callable[[ASGIApp], ASGIApp] | None = None

    def build_middleware_stack(self) -> ASGIApp:
        stack = super().build_middleware_stack()
        return self.front_door(stack) if self.front_door is not None else stack


def _body_limit(settings: Settings) -> Any:
    def limit_for(path: str) -> int:
        if IMPORT_UPLOAD_PATH.fullmatch(path):
            return settings.max_import_bytes + MULTIPART_ENVELOPE_BYTES
        if IMPORT_JOB_UPLOAD_PATH.fullmatch(path):
            return settings.max_import_job_bytes + MULTIPART_ENVELOPE_BYTES
        return settings.max_request_bytes
    return limit_for




def _install_docs(app: FastAPI) -> None:
    """Swagger UI and ReDoc served from local files: the shop may run where no CDN is reachable. Their pages load
    no image from elsewhere either (ReDoc's bundle draws its maker's logo from a CDN; it hides it when refused)."""
    app.mount("/_docs", StaticFiles(directory=_DOCS_STATIC), name="docs-static")
    own_images = {"Content-Security-Policy": "img-src 'self' data:"}

    @app.get("/docs", include_in_schema=False)
    async def swagger() -> HTMLResponse:
        page = get_swagger_ui_html(
            openapi_url="/openapi.json", title=f"{app.title} API",
            swagger_js_url="/_docs/swagger-ui-bundle.js", swagger_css_url="/_docs/swagger-ui.css",
            swagger_favicon_url="/_docs/favicon.png", swagger_ui_parameters={"validatorUrl": None},
        )
        page.headers.update(own_images)
        return page

    @app.get("/redoc", include_in_schema=False)
    async def redoc() -> HTMLResponse:
        page = get_redoc_html(openapi_url="/openapi.json", title=f"{app.title} API",
                              redoc_js_url="/_docs/redoc.standalone.js", redoc_favicon_url="/_docs/favicon.png",
                              with_google_fonts=False)
        page.headers.update(own_images)
        return page


def create_app(settings: Settings | None = None, *, ctx: ShopContext | None = None) -> FastAPI:
    """Build the shop. Tests pass their own context; `quanyi serve` builds one from the environment."""
    owns_context = ctx is None
    ctx = ctx or build_context(settings or get_settings())

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        task = None
        if ctx.settings.sandbox_enabled:
            # `quanyi serve` also says it on stderr; this reaches the shop's logs, once per server process.
            logger.warning("the sandbox payment gateway is enabled: anyone can 'pay' without money and receive "
                           "goods; set QUANYI_SANDBOX_ENABLED=false before taking real orders")
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

    app = ShopApp(
        title="quanyi 权益商城",
        version="0.1.0",
        summary="Virtual-goods shop: catalog, encrypted card-key stock, orders, payments, instant delivery.",
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
        **fastapi_arguments(ctx.settings.opentelemetry),  # OpenTelemetry decided once, not on every request
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
    install_error_handlers(app)
    _install_docs(app)
    # Not `exception_handler(Exception)`: Starlette re-raises after that one, and the server logs it again.
    app.add_middleware(CsrfCookieMiddleware)  # hands out the qy_csrf cookie a rendered form's token needs
    # Bodies above their limit are refused before they are read whole (Content-Length, or counted as they stream).
    app.add_middleware(BodyLimitMiddleware, limit_for=_body_limit(ctx.settings), answer=too_large)
    app.add_middleware(UnexpectedErrorMiddleware, answer=unexpected)
    # Outside Starlette's own layers: the security headers on every answer (HSTS when the shop is served over https,
    # Settings.hsts_header), and the lanes answering hot requests from memory before the framework runs. One line each.
    app.front_door = partial(FrontDoor, hsts=ctx.settings.hsts_header(), answer=unexpected, lanes=[
        partial(SoldOutLane, ctx=ctx, answer=domain_problem),  # checkouts of a SKU known to be sold out
        partial(PurchaseLane, ctx=ctx, handlers=app.exception_handlers),  # start payment, notification, reveal
        partial(CheckoutLane, ctx=ctx, handlers=app.exception_handlers),  # a plain guest checkout
    ])
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
    install_route_index(app.router)  # a request tries only the routes that could match its path
    return app
