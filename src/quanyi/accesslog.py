"""Secrets never reach the access log: the request line of uvicorn's access log is redacted of query parameters
that carry tokens (`t` of order links and cashier tickets, `token`, `access_token`, `csrf_token`).

Installed on the `uvicorn.access` logger by `create_app`, so it holds however the app is served. A reverse proxy in
front keeps its own log: order links carry their token in the URL fragment, which never reaches any server.
"""

from __future__ import annotations

import logging
import re

__all__ = ["redact_url", "RedactTokensFilter", "install_access_log_redaction"]

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
