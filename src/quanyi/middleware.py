"""Plain ASGI middleware around every request: the security headers, and the one place an unexpected
error becomes a 500 answer and a log record."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["SecurityHeadersMiddleware", "UnexpectedErrorMiddleware", "request_id"]

_SECURITY_HEADERS = ((b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"same-origin"),
                     (b"x-frame-options", b"DENY"))


def request_id(request: Request) -> str | None:
    """The id a proxy or client gave this request (X-Request-ID), for matching log lines to a report."""
    value = request.headers.get("x-request-id", "").strip()
    return value[:128] or None


class SecurityHeadersMiddleware:
    """Adds the security headers every answer carries (unless a route set its own). Plain ASGI rather than
    `@app.middleware("http")`: that wrapper streams every response through an extra task and cost a
    measurable share of each request in the flash-sale profile."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", ()))
                present = {name.lower() for name, _ in headers}
                headers.extend((name, value) for name, value in _SECURITY_HEADERS if name not in present)
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


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
