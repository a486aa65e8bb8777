"""The access log, and secrets never reaching it: the request line is redacted of query parameters that carry
tokens (`t` of order links and cashier tickets, `token`, `access_token`, `csrf_token`) and of card keys.

`quanyi serve` writes the line itself (`AccessLog`, around `create_app`); the filter on the `uvicorn.access`
logger, installed by `create_app`, keeps uvicorn's own line clean when the app is served some other way. A reverse
proxy in front keeps its own log: order links carry their token in the URL fragment, which never reaches any server.
"""

from __future__ import annotations

import gc
import logging
import re
import sys
from collections.abc import Callable
from http import HTTPStatus
from typing import TextIO

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from quanyi.inventory.masking import redact

__all__ = ["redact_url", "RedactTokensFilter", "install_access_log_redaction", "AccessLog", "access_line",
           "create_served_app"]

_SECRET_PARAMS = re.compile(r"([?&](?:t|token|access_token|csrf_token)=)[^&#\s]*", re.IGNORECASE)


def redact_url(url: str) -> str:
    """`url` with the values of token-carrying query parameters replaced by `[redacted]`."""
    return _SECRET_PARAMS.sub(r"\1[redacted]", url)


class RedactTokensFilter(logging.Filter):
    """uvicorn logs `%s - "%s %s HTTP/%s" %d` with (client, method, path+query, version, status)."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str) and "=" in args[2]:
            record.args = (*args[:2], redact_url(args[2]), *args[3:])
        return True


def install_access_log_redaction() -> None:
    access = logging.getLogger("uvicorn.access")
    if not any(isinstance(existing, RedactTokensFilter) for existing in access.filters):
        access.addFilter(RedactTokensFilter())


# uvicorn's access line, byte for byte (without colours): `INFO:     <client> - "<request line>" <status> <phrase>`.
_STATUS = {int(status): f"{int(status)} {status.phrase}" for status in HTTPStatus}


def _status_text(status: int) -> str:
    return _STATUS.get(status) or f"{status} "


def access_line(scope: Scope, status: int) -> str:
    """The access log line of a request answered `status`, secrets redacted: tokens in the query string (as
    `redact_url`) and any card key this process handled (`masking.redact`) in the parts the request chose."""
    client = scope.get("client")
    client_addr = redact(f"{client[0]}:{int(client[1])}") if client else ""
    path = scope.get("raw_path") or scope["path"].encode("utf-8")
    target = path.decode("latin1")
    if scope.get("query_string"):
        target = f"{target}?{scope['query_string'].decode('latin1')}"
    if "=" in target:
        target = redact_url(target)
    # Each path segment and query value on its own: a code in a path is one "word" to masking.redact otherwise.
    target = _URL_PART.sub(lambda part: redact(part.group(0)), target).replace('"', "%22")
    method = scope["method"]
    if method not in _KNOWN_METHODS:
        method = redact(method)
    return f'INFO:     {client_addr} - "{method} {target} HTTP/{scope["http_version"]}" {_status_text(status)}\n'


_URL_PART = re.compile(r"[^/?&=]{3,}")
_KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT"})


class AccessLog:
    """One line per answered request on the server's standard output, written here instead of by uvicorn
    (`quanyi serve` turns uvicorn's off): the same fields and format, at the same moment (the response's start),
    a 500 line when the application fails before answering (uvicorn then sends that 500). Cheaper: uvicorn's
    line went through the logging module, whose record factory redacts card keys in the format string, each
    argument and the formatted message again (about 50 µs a line once the process had revealed a key, against
    about 10 here, docs/PERFORMANCE.md); here only the parts the request chose are redacted, once.

    Outermost, around the whole application (Starlette's own 500 answer included), inside uvicorn's
    proxy-headers handling, so the client is the one X-Forwarded-For names when a trusted proxy sent it."""

    def __init__(self, app: ASGIApp, stream: Callable[[], TextIO] = lambda: sys.stdout) -> None:
        self.app = app
        self.stream = stream

    def _write(self, line: str) -> None:
        try:
            out = self.stream()
            out.write(line)
            out.flush()
        except (OSError, ValueError):  # a closed or broken stdout must not fail the request
            pass

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def logged_send(message: Message) -> None:
            nonlocal started
            if not started and message["type"] == "http.response.start":
                started = True
                self._write(access_line(scope, message["status"]))
            await send(message)

        try:
            await self.app(scope, receive, logged_send)
        except Exception:
            if not started:  # the server answers 500 itself: log it as uvicorn's own line did
                self._write(access_line(scope, 500))
            raise


# The garbage collector's thresholds in `quanyi serve` (Python's default: 700, 10, 10).
GC_THRESHOLD = (10_000, 10, 10)


def create_served_app() -> ASGIApp:
    """What `quanyi serve` runs: the shop behind its access log (unless QUANYI_ACCESS_LOG=false), with what building
    it allocated frozen out of the garbage collector's full collections."""
    from quanyi.app import create_app
    from quanyi.config import get_settings

    app = create_app()
    # Everything built so far (modules, routes, models, the schema) lives as long as the process: out of the
    # collector's sight, a full collection looks only at what requests allocate (docs/PERFORMANCE.md, issue 15).
    gc.collect()
    gc.freeze()
    # A young collection every 700 new objects ran many times per request under hundreds of requests in flight,
    # walking their live state and promoting it to the older generations for more walks: GC_THRESHOLD collects
    # as reference cycles still are, 14 times less often (docs/PERFORMANCE.md, section 14).
    gc.set_threshold(*GC_THRESHOLD)
    return AccessLog(app) if get_settings().access_log else app
