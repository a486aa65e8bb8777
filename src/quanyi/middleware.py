"""Plain ASGI middleware around every request: the front door (security headers, lanes), the request body limit,
and the one place an unexpected error becomes a 500 answer and a log record."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["FrontDoor", "UnexpectedErrorMiddleware", "BodyLimitMiddleware", "RequestTooLarge",
           "request_id"]

_SECURITY_HEADERS = ((b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"same-origin"),
                     (b"x-frame-options", b"DENY"))


def request_id(request: Request) -> str | None:
    """The id a proxy or client gave this request (X-Request-ID), for matching log lines to a report."""
    value = request.headers.get("x-request-id", "").strip()
    return value[:128] or None


class FrontDoor:
    """The app's outermost layer, around Starlette's own (see `ShopApp`): the security headers every answer carries
    (unless a route set its own; Starlette's last-resort 500 included), and the lanes, plain ASGI layers that answer
    a hot request from memory before the framework runs (routing, dependency injection, and Starlette's error,
    telemetry and body-limit layers: about 10 µs of a refused checkout's 40 in-process, docs/PERFORMANCE.md).

    A lane is a middleware class as `add_middleware` takes them (`Lane(app, **options)`, given here as
    `functools.partial(Lane, **options)`): it answers the requests it knows and hands every other one to `app`
    unchanged, reading a body only when it is small and has a Content-Length. The first lane listed runs first.
    A lane that fails before answering gets `answer`'s 500 (one log record), as a route does."""

    def __init__(self, app: ASGIApp, *, lanes: Sequence[Callable[[ASGIApp], ASGIApp]] = (), hsts: str | None = None,
                 answer: Callable[[Request, Exception], Awaitable[Response]] | None = None) -> None:
        """`hsts`: the Strict-Transport-Security value (Settings.hsts_header), when the shop is served over https."""
        for lane in reversed(lanes):
            app = lane(app)
        self.app = app
        self.answer = answer
        self.headers = _SECURITY_HEADERS + (((b"strict-transport-security", hsts.encode()),) if hsts else ())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def send_with_headers(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                headers = list(message.get("headers", ()))
                present = {name.lower() for name, _ in headers}
                headers.extend((name, value) for name, value in self.headers if name not in present)
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        except Exception as exc:
            # Starlette's ServerErrorMiddleware answers whatever escapes the app (started is then true); only a
            # lane's own failure gets here unanswered.
            if started or self.answer is None:
                raise
            response = await self.answer(Request(scope), exc)
            await response(scope, receive, send_with_headers)


class UnexpectedErrorMiddleware:
    """Turns an exception no handler took into `answer`'s 500 response, logged once here.

    Starlette's own 500 handling (ServerErrorMiddleware, outermost) answers and then re-raises the exception
    so the server logs it too: every 500 was logged twice, the server's record without method or path. This
    sits inside it, so nothing reaches it or the server. `answer` logs the record and shapes the response."""

    def __init__(self, app: ASGIApp, answer: Callable[[Request, Exception], Awaitable[Response]]) -> None:
        self.app = app
        self.answer = answer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def watch(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, watch)
        except Exception as exc:
            request = Request(scope)
            response = await self.answer(request, exc)
            # Half an answer cannot become a 500 (the shop streams nothing, so only a failing send gets here):
            # returning leaves the server to cut the connection.
            if not started:
                await response(scope, receive, send)


class RequestTooLarge(HTTPException):
    """A request body above its limit (413, problem code `payload_too_large`)."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body is larger than this endpoint accepts ({limit} bytes)")
        self.limit = limit


class BodyLimitMiddleware:
    """Refuses request bodies above `limit_for(path)` bytes before they are read whole.

    A `Content-Length` above the limit is answered 413 at once, before the app runs or a byte is read. A body
    without one (chunked) or one that lies is counted as it streams in: the chunk that crosses the limit raises
    `RequestTooLarge` inside the app, whose handler answers 413, so at most limit + one chunk is ever held."""

    def __init__(self, app: ASGIApp, limit_for: Callable[[str], int],
                 answer: Callable[[Request, int], Awaitable[Response]]) -> None:
        self.app = app
        self.limit_for = limit_for
        self.answer = answer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope["path"])
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = -1
                if declared > limit:
                    response = await self.answer(Request(scope), limit)
                    await response(scope, receive, send)
                    return
                break
        received = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise RequestTooLarge(limit)
            return message

        async def watch(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, watch)
        except RequestTooLarge:
            if started:
                raise
            response = await self.answer(Request(scope), limit)
            await response(scope, receive, send)
