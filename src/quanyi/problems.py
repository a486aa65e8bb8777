"""Domain errors and framework errors as HTTP answers, in one place: RFC 9457 problem documents with a stable
`code` for the API, the error page for browsers, and the one log record of an unexpected error."""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from pydantic import BaseModel
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from starlette.routing import Route

from quanyi.catalog.service import QuantityOutOfRange
from quanyi.coupons.abuse import CouponClaimsLimited, CouponRefusedByRisk
from quanyi.db import is_database_unavailable
from quanyi.deps import NotAuthorized
from quanyi.enterprises import campaigns as enterprise_campaigns
from quanyi.enterprises import oauth as enterprise_oauth
from quanyi.enterprises.downloads import LinkRefused
from quanyi.enterprises.service import EnterpriseExists
from quanyi.errors import Conflict, DomainError, InvalidInput, NotFound
from quanyi.inventory.rotation import RotationRefused
from quanyi.inventory.service import NothingImported, OutOfStock
from quanyi.ledger import service as ledger_service
from quanyi.members import service as members_service
from quanyi.merchants.applications import ApplicationRateLimited
from quanyi.middleware import RequestTooLarge, request_id
from quanyi.money import InvalidAmount
from quanyi.orders.service import LookupRateLimited, OrderNotPayable
from quanyi.payments.gateway import CheckoutRefused, GatewayUnavailable, NoPaymentMethod, NotificationRejected
from quanyi.payments.service import PaymentAmountMismatch
from quanyi.refunds.policy import InvalidRefund, RefundExceedsPayment, RefundNotAllowed
from quanyi.resellers.service import ResellerExists
from quanyi.resellers.signing import AccountSuspended, RateLimited, SignatureRefused
from quanyi.risk.challenges import VerificationExpired, VerificationFailed, VerificationUnavailable
from quanyi.risk.engine import CheckoutRateLimited, RiskDenied, VerificationRequired
from quanyi.risk.holdings import TooMuchStockHeld
from quanyi.staff.service import LoginFailed, LoginRateLimited, PermissionDenied
from quanyi.suppliers.push import StockCallbackRejected
from quanyi.suppliers.recharge import RechargeCallbackRejected
from quanyi.suppliers.sync import SyncFailed
from quanyi.web.csrf import CsrfFailed
from quanyi.web.form_text import FormTextRefused
from quanyi.web.routes import render_error_page

__all__ = ["STATUS_BY_ERROR", "status_for", "problem", "domain_problem", "unexpected", "too_large",
           "install_error_handlers"]

# The records keep the name they always had (log filters and searches use it).
logger = logging.getLogger("quanyi.app")

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


def domain_problem(exc: DomainError) -> Response:
    return problem(status_for(exc), exc.code, exc.message, exc.context)


# API paths people open from a link in a browser (a download link shown on a page): a browser gets a page, and
# a mangled link (cut short, mistyped) gets the same page as a dead one; an API client keeps its 422.
_BROWSER_LINKS: dict[str, type[DomainError]] = {"/api/enterprise-downloads": LinkRefused}


def _wants_html(request: Request) -> bool:
    path = request.url.path
    if path.startswith(("/api/", "/payments/", "/openapi.json")) and path not in _BROWSER_LINKS:
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


async def unexpected(request: Request, exc: Exception) -> Response:
    """The one log record of a 500 (traceback, method, path, request id), and its answer."""
    rid = request_id(request)
    logger.error("unhandled error on %s %s%s", request.method, request.url.path,
                 f" (request id {rid})" if rid else "", exc_info=exc, extra={"request_id": rid})
    return problem(500, "internal_error", "something went wrong on our side; the request was not applied")


async def too_large(request: Request, limit: int) -> Response:
    return problem(413, "payload_too_large", f"the request body is larger than this endpoint accepts ({limit} bytes)",
                   {"max_bytes": limit})




def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(DomainError)
    async def _domain(request: Request, exc: DomainError) -> Response:
        status = status_for(exc)
        if _wants_html(request):
            page = render_error_page(request, status, exc.code, exc.message, field=str(exc.context.get("field", "")))
            if "retry_after" in exc.context:  # every limit answers 429 with Retry-After, pages too
                page.headers["Retry-After"] = str(exc.context["retry_after"])
            return page
        return domain_problem(exc)

    @app.exception_handler(FormTextRefused)
    async def _form_text(request: Request, exc: FormTextRefused) -> Response:
        # Only a login area's forms (browser pages, never the API) get this check: always the page, in its language.
        return render_error_page(request, 422, exc.code, exc.message, field=str(exc.context.get("field", "")))

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
        refusal = _BROWSER_LINKS.get(request.url.path)
        if refusal is not None and _wants_html(request):
            refused = refusal("this link is not valid; ask for a new one")
            return render_error_page(request, status_for(refused), refused.code, refused.message)
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
            return await unexpected(request, exc)
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
