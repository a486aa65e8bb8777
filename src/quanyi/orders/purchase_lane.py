"""The purchase lane: a purchase's requests after checkout answered before the framework runs.

A flash-sale purchase is checkout, start payment (`POST /api/orders/{order_no}/payments`), the gateway's
notification (`POST /payments/{gateway}/notify`) and the reveal (`POST /api/orders/{order_no}/reveal`). Each of
the last three is one or two statements now; what a request still paid for was FastAPI's routing over every
route, dependency solving, request and response validation and the middleware below this one. This plain ASGI
layer parses those three requests the way their routes do, calls the same functions the routes call
(`payments.routes.payment_started`, `payments.routes.notification_reply`, `orders.routes.revealed_keys`) and
answers with the same bytes: status, headers and body. An exception is answered by the app's own handler for
it (a domain error's problem document, a database outage's 503, ...), as the app would.

Anything unusual goes on to the app untouched, body handed on as it came: another method or path, a root path,
an order number or gateway name the route's parameters would refuse, a missing or wrong order token (the route
answers that), a start-payment body that is not a valid JSON `PaymentStartRequest`, a body above the request
limit or without a length. The FastAPI routes stay: for the OpenAPI document, and as the way for all of that.
`tests/orders/test_purchase_lane.py` compares both ways, lane on and off, on both backends.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from pydantic import BaseModel, ValidationError
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from quanyi.context import ShopContext
from quanyi.deps import NO_STORE_HEADERS
from quanyi.orders.access import verify_order_access
from quanyi.orders.numbers import normalize_order_no
from quanyi.orders.schemas import PaymentStartRequest
from quanyi.orders.sold_out_lane import exception_handler, read_declared, replay

__all__ = ["PurchaseLane"]

_GATEWAY_NAME = re.compile(r"[a-z0-9_]{1,32}")  # the notify route's Path(max_length=32, pattern=...)
_ORDERS = "/api/orders/"
_MAX_TOKEN = 128  # the X-Order-Token header's max_length


class PurchaseLane:
    def __init__(self, app: ASGIApp, *, ctx: ShopContext, handlers: Mapping[Any, Callable[..., Any]]) -> None:
        self.app = app
        self.ctx = ctx
        self.handlers = handlers  # the app's exception handlers (FastAPI.exception_handlers), read at each error

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope.get("root_path"):
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        if path.startswith(_ORDERS):
            order_no, _, action = path[len(_ORDERS):].partition("/")
            if action == "reveal":
                await self._reveal(scope, receive, send, order_no)
                return
            if action == "payments":
                await self._pay(scope, receive, send, order_no)
                return
        elif path.startswith("/payments/") and path.endswith("/notify"):
            await self._notify(scope, receive, send, path[len("/payments/"):-len("/notify")])
            return
        await self.app(scope, receive, send)

    # ------------------------------------------------------------------------------------------- the requests

    async def _reveal(self, scope: Scope, receive: Receive, send: Send, order_no: str) -> None:
        headers = _headers(scope)
        canonical = self._authorized(order_no, headers)
        if canonical is None or _declared_length(headers) > self.ctx.settings.max_request_bytes:
            await self.app(scope, receive, send)  # the route answers, or the body limit does
            return
        from quanyi.orders.routes import revealed_keys

        ip, agent = _client_ip(scope), headers.get(b"user-agent", b"").decode("latin-1")[:512]
        try:
            answer = await revealed_keys(self.ctx, canonical, ip, agent)
        except Exception as exc:
            await self._fail(scope, receive, send, exc)
            return
        response = _json(answer, 200)
        response.raw_headers.extend(NO_STORE_HEADERS)  # the route's NO_STORE dependency
        await response(scope, receive, send)

    async def _pay(self, scope: Scope, receive: Receive, send: Send, order_no: str) -> None:
        headers = _headers(scope)
        canonical = self._authorized(order_no, headers)
        body, messages = (None, []) if canonical is None else await self._body(headers, receive)
        data = None if body is None else _payment_request(body, headers)
        if canonical is None or data is None:
            await self.app(scope, replay(messages, receive), send)
            return
        from quanyi.payments.routes import payment_started

        try:
            answer = await payment_started(self.ctx, canonical, data, _client_ip(scope))
        except Exception as exc:
            await self._fail(scope, replay(messages, receive), send, exc)
            return
        await _json(answer, 201)(scope, receive, send)

    async def _notify(self, scope: Scope, receive: Receive, send: Send, gateway_name: str) -> None:
        headers = _headers(scope)
        body, messages = (await self._body(headers, receive)) if _GATEWAY_NAME.fullmatch(gateway_name) \
            else (None, [])
        if body is None:
            await self.app(scope, replay(messages, receive), send)
            return
        from quanyi.payments.routes import notification_reply

        try:
            gateway = self.ctx.gateways.get(gateway_name)
            reply = await notification_reply(self.ctx, gateway, Headers(scope=scope), body, _client_ip(scope))
        except Exception as exc:
            await self._fail(scope, replay(messages, receive), send, exc)
            return
        await Response(reply.body, status_code=reply.status_code, media_type=reply.media_type)(scope, receive, send)

    # ------------------------------------------------------------------------------------------------ helpers

    def _authorized(self, order_no: str, headers: dict[bytes, bytes]) -> str | None:
        """The canonical order number if the route's OrderNoDep would accept this path and token, else None."""
        if not order_no or "/" in order_no or len(order_no) > 64:
            return None
        token = headers.get(b"x-order-token")
        if token is None or len(token) > _MAX_TOKEN:
            return None
        canonical = normalize_order_no(order_no)
        secret = self.ctx.settings.app_secret.get_secret_value()
        if canonical is None or not verify_order_access(secret, canonical, token.decode("latin-1")):
            return None
        return canonical

    async def _body(self, headers: dict[bytes, bytes], receive: Receive) -> tuple[bytes | None, list[Message]]:
        """The body when it has a declared length within the request limit (else None: the app and its body
        limit take it), and the messages it came in."""
        declared = _declared_length(headers)
        if declared < 0 or declared > self.ctx.settings.max_request_bytes:
            return None, []
        return await read_declared(receive, declared)

    async def _fail(self, scope: Scope, receive: Receive, send: Send, exc: Exception) -> None:
        """Answer `exc` with the app's handler for it, as the app's exception middleware would; none: raise."""
        handler = exception_handler(self.handlers, exc)
        if handler is None:
            raise exc
        response = await handler(Request(scope, receive), exc)
        await response(scope, receive, send)


def _headers(scope: Scope) -> dict[bytes, bytes]:
    """The request's headers, the first value of each name (as Starlette's `Headers.get` reads them)."""
    found: dict[bytes, bytes] = {}
    for name, value in scope["headers"]:
        found.setdefault(name, value)
    return found


def _declared_length(headers: dict[bytes, bytes]) -> int:
    """Content-Length as the body limit (middleware.BodyLimitMiddleware) reads it; -1 when absent or not a number."""
    try:
        return int(headers.get(b"content-length", b"-1"))
    except ValueError:
        return -1


def _client_ip(scope: Scope) -> str:
    client = scope.get("client")
    return client[0] if client else ""


def _payment_request(body: bytes, headers: dict[bytes, bytes]) -> PaymentStartRequest | None:
    """The start-payment body as the route reads it, when it is an empty body or a valid JSON object; None for
    anything else (the route answers it)."""
    if not body:
        return PaymentStartRequest()
    content_type = headers.get(b"content-type", b"").split(b";")[0].strip().lower()
    if content_type != b"application/json":
        return None
    try:
        return PaymentStartRequest.model_validate_json(body)
    except ValidationError:
        return None


def _json(model: BaseModel, status: int) -> Response:
    """A route's `response_model` answer, as FastAPI serializes it (pydantic's JSON, no re-encoding)."""
    return Response(model.__pydantic_serializer__.to_json(model, by_alias=True), status_code=status,
                    media_type="application/json")
