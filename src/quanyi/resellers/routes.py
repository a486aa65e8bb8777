"""The open API (开放接口): the server side of the quanyi supplier protocol, under /api/open.

A reseller's base URL is `https://<shop>/api/open`; the paths below it are those of docs/supplier-protocol.md.
Every request is verified (signing.py) before anything else; every refusal answers the protocol's error body
`{"error": {"code", "message"}}`, which is also an RFC 9457 problem document (type, title, status, code,
detail) like every other error of the shop. Routes parse and answer; ordering.py holds the rules.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Coroutine
from http import HTTPStatus
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Path, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from pydantic import BaseModel, ValidationError
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from quanyi.catalog.service import QuantityOutOfRange, SkuNotPurchasable
from quanyi.db import is_database_unavailable
from quanyi.deps import ContextDep, client_ip, user_agent
from quanyi.errors import Conflict, DomainError, InvalidInput, NotFound
from quanyi.inventory.service import OutOfStock
from quanyi.ledger import service as ledger_service
from quanyi.orders.service import RechargeAccountInvalid
from quanyi.resellers import ordering
from quanyi.resellers.schemas import CardOrderRequest, QuotesRequest, RechargeOrderRequest
from quanyi.resellers.signing import AccountSuspended, Caller, RateLimited, SignatureRefused, authenticate

__all__ = ["router", "protocol_error"]

_Model = TypeVar("_Model", bound=BaseModel)

logger = logging.getLogger("quanyi.openapi")
_MAX_BODY = 64 * 1024

# Protocol error code -> HTTP status (docs/supplier-protocol.md §5).
_STATUS = {"invalid_request": 400, "unknown_app": 401, "stale_request": 401, "bad_signature": 401,
           "body_mismatch": 401, "replayed_nonce": 401, "insufficient_balance": 402, "account_suspended": 403,
           "unknown_product": 404, "order_not_found": 404, "out_of_stock": 409, "price_changed": 409,
           "product_unavailable": 409, "idempotency_conflict": 409, "invalid_account": 422,
           "wrong_product_kind": 422, "rate_limited": 429, "unavailable": 503}


def protocol_error(status: int, code: str, message: str, **extra: Any) -> JSONResponse:
    body = {"error": {"code": code, "message": message, **extra}, "type": f"urn:quanyi:problem:{code}",
            "title": HTTPStatus(status).phrase, "status": status, "code": code, "detail": message, **extra}
    headers = {"Retry-After": str(extra["retry_after"])} if "retry_after" in extra else None
    return JSONResponse(body, status_code=status, media_type="application/problem+json", headers=headers)


def _translate(exc: DomainError) -> tuple[str, str]:
    """Another feature's refusal in the protocol's words."""
    if isinstance(exc, OutOfStock):
        return "out_of_stock", exc.message
    if isinstance(exc, SkuNotPurchasable):
        return "product_unavailable", exc.message
    if isinstance(exc, RechargeAccountInvalid):
        return "invalid_account", exc.message
    if isinstance(exc, ledger_service.CustomerBalanceInsufficient):
        return "insufficient_balance", exc.message
    if isinstance(exc, ledger_service.CustomerAccountFrozen):
        return "account_suspended", exc.message
    if isinstance(exc, QuantityOutOfRange | InvalidInput):
        return "invalid_request", exc.message
    if isinstance(exc, NotFound):
        return "unknown_product", exc.message
    if isinstance(exc, Conflict):
        return "unavailable", exc.message
    return "invalid_request", exc.message


class OpenApiRoute(APIRoute):
    """Answers every refusal in the protocol's error body. Answers carry card keys and balances: never cached."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def answer(request: Request) -> Response:
            response = await _answer(request)
            response.headers["Cache-Control"] = "no-store"
            return response

        async def _answer(request: Request) -> Response:
            try:
                return await handler(request)
            except (ordering.ProtocolError, SignatureRefused, RateLimited, AccountSuspended) as exc:
                code, message = exc.code, exc.message
                extra = {k: v for k, v in exc.context.items() if isinstance(v, int | str)}
            except (DBAPIError, PoolTimeout) as exc:
                if not is_database_unavailable(exc):
                    raise
                # Not taken (the transaction rolled back or never began): the protocol's "retry later".
                logger.warning("open API %s %s: database unavailable: %s", request.method, request.url.path,
                               str(exc).splitlines()[0][:200])
                return protocol_error(503, "unavailable", "busy right now; nothing was taken, retry shortly",
                                      retry_after=2)
            except RequestValidationError as exc:
                return protocol_error(400, "invalid_request", f"malformed request: {exc.errors()[0].get('msg', '')}")
            except DomainError as exc:
                code, message = _translate(exc)
                logger.info("open API %s %s refused: %s (%s)", request.method, request.url.path, code, exc.code)
                return protocol_error(_STATUS[code], code, message)
            if code in ("bad_signature", "body_mismatch", "replayed_nonce", "unknown_app", "stale_request"):
                logger.warning("open API request refused: %s from %s: %s", code, client_ip(request), message)
            return protocol_error(_STATUS.get(code, 400), code, message, **extra)

        return answer


router = APIRouter(prefix="/api/open/v1", tags=["open API"], route_class=OpenApiRoute)

OrderKeyPath = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]


def _target(request: Request) -> str:
    """The request target as the client signed it: raw path, and the raw query string if any."""
    path = request.scope.get("raw_path", request.url.path.encode()).decode("latin-1")
    query = request.scope.get("query_string", b"").decode("latin-1")
    return f"{path}?{query}" if query else path


async def _verified(request: Request, ctx: ContextDep) -> tuple[Caller, bytes]:
    body = await request.body()
    if len(body) > _MAX_BODY:
        raise ordering.ProtocolError("invalid_request", f"the body is larger than {_MAX_BODY} bytes")
    caller = await authenticate(db=ctx.db, cipher=ctx.cipher, nonces=ctx.nonces, limiter=ctx.limiter,
                                method=request.method, path=_target(request), headers=request.headers, body=body)
    return caller, body


def _parse(model: type[_Model], body: bytes) -> _Model:
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise ordering.ProtocolError("invalid_request", "the body is not JSON") from None
    if not isinstance(data, dict):
        raise ordering.ProtocolError("invalid_request", "the body must be a JSON object")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"])
        raise ordering.ProtocolError("invalid_request", f"{field}: {first['msg']}" if field else first["msg"],
                                     field=field) from None


_SIGNED = {"description": "Signed with the headers of docs/supplier-protocol.md §2.1; refusals carry "
                          "{\"error\": {\"code\", \"message\"}}"}


@router.get("/catalog", summary="Products on sale at your price, with stock", responses={401: _SIGNED})
async def catalog(request: Request, ctx: ContextDep) -> dict[str, Any]:
    caller, _ = await _verified(request, ctx)
    async with ctx.db.read_session() as session:
        return await ordering.catalog(session=session, caller=caller)


@router.post("/quotes", summary="Current price and stock of some products", responses={401: _SIGNED})
async def quotes(request: Request, ctx: ContextDep) -> dict[str, Any]:
    caller, body = await _verified(request, ctx)
    data = _parse(QuotesRequest, body)
    async with ctx.db.read_session() as session:
        return await ordering.quotes(session=session, caller=caller, product_codes=data.product_codes)


@router.post("/card-orders", summary="Buy card keys under your order number (idempotent), paid from your balance",
             responses={401: _SIGNED, 402: {"description": "insufficient_balance"},
                        409: {"description": "out_of_stock, price_changed, idempotency_conflict"}})
async def card_order(request: Request, ctx: ContextDep) -> Response:
    caller, body = await _verified(request, ctx)
    status, order = await ordering.place_order(db=ctx.db, cipher=ctx.cipher, caller=caller,
                                               request=_parse(CardOrderRequest, body), ip=client_ip(request),
                                               user_agent=user_agent(request))
    return JSONResponse(order, status_code=status)


@router.post("/recharge-orders", status_code=202, summary="Submit a direct recharge (idempotent); the result "
             "comes by callback and by order query", responses={401: _SIGNED})
async def recharge_order(request: Request, ctx: ContextDep) -> Response:
    caller, body = await _verified(request, ctx)
    status, order = await ordering.place_order(db=ctx.db, cipher=ctx.cipher, caller=caller,
                                               request=_parse(RechargeOrderRequest, body), ip=client_ip(request),
                                               user_agent=user_agent(request))
    return JSONResponse(order, status_code=status)


@router.get("/orders/{key}", summary="An order by your order number, with its card keys (audited)",
            responses={401: _SIGNED, 404: {"description": "order_not_found"}})
async def order(key: OrderKeyPath, request: Request, ctx: ContextDep) -> dict[str, Any]:
    caller, _ = await _verified(request, ctx)
    return await ordering.find_order(db=ctx.db, cipher=ctx.cipher, caller=caller, key=key, ip=client_ip(request),
                                     user_agent=user_agent(request))


@router.get("/balance", summary="Your prepaid balance and credit limit", responses={401: _SIGNED})
async def balance(request: Request, ctx: ContextDep) -> dict[str, Any]:
    caller, _ = await _verified(request, ctx)
    async with ctx.db.read_session() as session:
        return await ordering.balance(session=session, caller=caller)
