"""The sold-out lane: `POST /api/orders` for a SKU the stock gate knows is sold out is answered before the
framework runs (no routing, no dependency injection, no screening, no database).

In a flash sale nine checkouts of ten come after the last key is gone; each used to cost a full trip through
FastAPI only to be refused from the process's memory. This plain ASGI layer reads the small JSON body, and
refuses exactly when the route would: the body is a valid `OrderCreate`, the shop has a payment method, and
the gate says the SKU is sold out. Anything else (another path, a large or non-JSON body, a SKU not known
to be sold out) goes on to the app untouched, with the body handed on as it came.

The sold-out answer depends only on the quantity asked for: it is built once per quantity (the app's problem
response, `answer`) and its status, headers and body are sent again for the next refusal of that quantity
(docs/PERFORMANCE.md section 25d: building it was ~40 % of a refusal's CPU).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from pydantic import ValidationError
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from quanyi.context import ShopContext
from quanyi.errors import DomainError
from quanyi.inventory.service import OutOfStock
from quanyi.orders.pay_at_checkout import check_pay
from quanyi.orders.schemas import OrderCreate

__all__ = ["SoldOutLane", "read_body", "read_declared", "replay", "exception_handler"]

_PATH = "/api/orders"
_MAX_BODY = 8 * 1024  # a checkout is a few hundred bytes; anything larger takes the ordinary road


class SoldOutLane:
    def __init__(self, app: ASGIApp, *, ctx: ShopContext, answer: Callable[[DomainError], Response]) -> None:
        self.app = app
        self.ctx = ctx
        self.answer = answer  # the app's problem response for a domain error: one shape for every refusal
        self._sold_out: dict[int, tuple[int, tuple[tuple[bytes, bytes], ...], bytes]] = {}  # by quantity

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (scope["type"] != "http" or scope["path"] != _PATH or scope["method"] != "POST"
                or not self.ctx.sold_out.any_sold_out()):
            await self.app(scope, receive, send)
            return
        length = content_type = None
        for name, value in scope["headers"]:
            if name == b"content-length":
                length = value
            elif name == b"content-type":
                content_type = value
        # Outside the body limit (middleware.BodyLimitMiddleware): a body above it is the limit's 413, as without us.
        if (length is None or not length.isdigit() or int(length) > min(_MAX_BODY, self.ctx.settings.max_request_bytes)
                or content_type is None or content_type.split(b";")[0].strip().lower() != b"application/json"):
            await self.app(scope, receive, send)
            return
        body, messages = await read_body(receive)
        if body is not None:
            refusal = self._refusal(body)
            if isinstance(refusal, OutOfStock):
                await self._send_sold_out(refusal, send)
                return
            if refusal is not None:
                await self.answer(refusal)(scope, receive, send)
                return
        await self.app(scope, replay(messages, receive), send)

    async def _send_sold_out(self, refusal: OutOfStock, send: Send) -> None:
        """`answer(refusal)` as its Response would send it, built once per quantity asked for."""
        quantity = refusal.context["requested"]
        sent = self._sold_out.get(quantity)
        if sent is None:
            response = self.answer(refusal)
            sent = (response.status_code, tuple(response.raw_headers), bytes(response.body))
            if len(self._sold_out) < 64:  # quantities are few (OrderCreate bounds them); a bound all the same
                self._sold_out[quantity] = sent
        status, headers, body = sent
        await send({"type": "http.response.start", "status": status, "headers": list(headers)})
        await send({"type": "http.response.body", "body": body})

    def _refusal(self, body: bytes) -> DomainError | None:
        try:
            data = OrderCreate.model_validate_json(body)
        except ValidationError:
            return None  # the route answers with its validation problem
        if not self.ctx.sold_out.is_sold_out(data.sku_id):
            return None
        try:
            self.ctx.gateways.require_any()  # the route checks this first: same order here
            if data.pay is not None:  # then a `pay` naming a gateway that cannot be chosen (orders.pay_at_checkout)
                check_pay(self.ctx, data.pay)
        except DomainError as exc:
            return exc
        return OutOfStock("sold out", available=0, requested=data.quantity)


async def read_body(receive: Receive) -> tuple[bytes | None, list[Message]]:
    """The whole body (None if the client went away), and the messages it came in, to hand on unchanged."""
    messages: list[Message] = []
    chunks: list[bytes] = []
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            return None, messages
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks), messages


async def read_declared(receive: Receive, declared: int) -> tuple[bytes | None, list[Message]]:
    """The whole body, and the messages it came in to hand on unchanged; None once it runs longer than its
    Content-Length (the app's body limit then counts the rest: never more than the declared length read here) or the
    client went away."""
    messages: list[Message] = []
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            return None, messages
        chunk = message.get("body", b"")
        chunks.append(chunk)
        size += len(chunk)
        if size > declared:
            return None, messages
        if not message.get("more_body", False):
            return b"".join(chunks), messages


def replay(messages: list[Message], receive: Receive) -> Receive:
    """`receive` for the app after a lane has read `messages`: those first, then the rest as it comes."""
    pending = list(messages)

    async def replayed() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    return replayed


def exception_handler(handlers: Mapping[Any, Callable[..., Any]], exc: Exception) -> Callable[..., Any] | None:
    """The app's handler for `exc` as Starlette's ExceptionMiddleware finds it (the first class of its MRO with
    one), for a lane answering an error the way the route would; None: let it go up. A handler for Exception
    itself belongs to the outermost error middleware, not this lookup."""
    return next((handlers[kind] for kind in type(exc).__mro__ if kind is not Exception and kind in handlers), None)
