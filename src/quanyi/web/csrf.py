"""CSRF protection (跨站请求伪造) for every cookie-authenticated or form route: one mechanism for the storefront,
buyer account pages and the console.

Two checks on every unsafe request (POST, PUT, PATCH, DELETE) of a protected route:

1. **Origin**: a browser names the page that sent the request (`Origin`, else `Referer`). When it does, that
   origin must be this shop: the host the request was sent to (`Host`), the origin of
   `QUANYI_PUBLIC_BASE_URL`, or one listed in `QUANYI_CSRF_TRUSTED_ORIGINS`. `Origin: null` (sandboxed frames,
   some redirects) is refused. Requests naming no origin at all (scripts, privacy proxies) rely on check 2.
2. **Token**: the request carries the client's CSRF token, in the form field `csrf_token` or in the
   `X-CSRF-Token` header (htmx, fetch). The token is an HMAC (key derived from `QUANYI_APP_SECRET` for this use
   alone) of a random client id kept in the `qy_csrf` cookie (HttpOnly, SameSite=Lax, Secure over https), and
   of the values of the session cookies registered with `register_session_cookie`: logging in or out changes
   the token, so a token seen before a login is worth nothing after it.

A failure raises `CsrfFailed` (403, problem code `csrf_failed`; browsers get the error page telling them to
reload the form) and changes nothing.

API for features:

- Routes: add the dependency, `_: CsrfDep` (or `dependencies=[CSRF_PROTECTED]` on a router). It reads the form
  (Starlette caches it, so the route can read it again) only when the header carries no token.
- Forms in templates: `{{ csrf_input() }}` inside every `<form method="post">`; `{{ csrf_token() }}` for the raw
  value. Storefront `base.html` puts it in `<meta name="csrf-token">`, and `static/app.js` adds the header to
  every htmx request (`htmx:configRequest`) and offers `window.quanyiCsrfToken()` for fetch/XHR.
- A feature whose session lives in a cookie calls `register_session_cookie("qy_member")` at import time.
- `CsrfCookieMiddleware` (installed by `create_app`) sends the `qy_csrf` cookie whenever a token was minted
  for a client that had none, whatever rendered the page.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from functools import lru_cache
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import Depends, Request
from markupsafe import Markup, escape
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from quanyi.errors import DomainError
from quanyi.web.form_text import is_form_post

__all__ = ["CSRF_COOKIE", "CSRF_FIELD", "CSRF_HEADER", "CSRF_PROTECTED", "CsrfDep", "CsrfFailed",
           "CsrfCookieMiddleware", "csrf_token", "csrf_input", "require_csrf", "register_session_cookie",
           "install_template_helpers"]

CSRF_COOKIE = "qy_csrf"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
_COOKIE_MAX_AGE = 365 * 86_400
_KEY_LABEL = b"quanyi web csrf v1"
_CLIENT_ID = re.compile(r"[A-Za-z0-9_-]{22,64}")
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
_SCOPE_KEY = "quanyi.csrf"  # {"minted": client id} when a page minted one for a client without a cookie
_session_cookies: list[str] = []


class CsrfFailed(DomainError):
    """The request did not come from this shop's own page (wrong origin, missing or stale token)."""

    code = "csrf_failed"


def register_session_cookie(name: str) -> None:
    """Bind tokens to a session cookie: its value becomes part of every token, so a new session means new
    tokens. Call once at import time (buyer accounts, console)."""
    if name not in _session_cookies:
        _session_cookies.append(name)


@lru_cache(maxsize=8)
def _key(app_secret: str) -> bytes:
    return hmac.new(app_secret.encode(), _KEY_LABEL, hashlib.sha256).digest()


def _app_secret(request: Request) -> str:
    return str(request.app.state.ctx.settings.app_secret.get_secret_value())


def _token_for(request: Request, client_id: str) -> str:
    message = client_id.encode()
    for name in _session_cookies:
        message += b"\x00" + name.encode() + b"=" + request.cookies.get(name, "").encode()
    digest = hmac.new(_key(_app_secret(request)), message, hashlib.sha256).digest()[:24]
    return base64.urlsafe_b64encode(digest).decode()


def _client_id(request: Request) -> str:
    value = request.cookies.get(CSRF_COOKIE, "")
    return value if _CLIENT_ID.fullmatch(value) else ""


def csrf_token(request: Request) -> str:
    """The token for forms of this client's next request; mints a client id (sent as a cookie by the
    middleware) when the client has none."""
    client_id = _client_id(request)
    if not client_id:
        holder = request.scope.setdefault(_SCOPE_KEY, {})
        client_id = holder.setdefault("minted", secrets.token_urlsafe(16))
    return _token_for(request, client_id)


def csrf_input(request: Request) -> Markup:
    """`<input type="hidden" name="csrf_token" value="...">` for a form."""
    return Markup('<input type="hidden" name="{}" value="{}">').format(CSRF_FIELD, escape(csrf_token(request)))


def _origin_of(url: str) -> tuple[str, str] | None:
    parts = urlsplit(url.strip())
    if not parts.scheme or not parts.netloc:
        return None
    return parts.scheme.lower(), parts.netloc.lower()


def _default_port(scheme: str) -> str:
    return {"http": "80", "https": "443"}.get(scheme, "")


def _same_host(netloc: str, scheme: str, host_header: str) -> bool:
    """`netloc` (from Origin/Referer) names the host the request was sent to. The scheme is not compared: behind
    a TLS-terminating proxy the app may see http while the browser is on https."""
    host_header = host_header.strip().lower()
    if not host_header:
        return False
    if netloc == host_header:
        return True
    port = _default_port(scheme)
    return bool(port) and (netloc == f"{host_header}:{port}" or f"{netloc}:{port}" == host_header)


def _trusted(request: Request, url: str) -> bool:
    origin = _origin_of(url)
    if origin is None:
        return False
    scheme, netloc = origin
    if _same_host(netloc, scheme, request.headers.get("host", "")):
        return True
    settings = request.app.state.ctx.settings
    configured = [settings.public_base_url or "", *settings.csrf_trusted_origins.split(",")]
    return any(_origin_of(item) == origin for item in configured if item)


def _check_origin(request: Request) -> None:
    origin = request.headers.get("origin")
    if origin is not None:
        if origin.strip().lower() == "null" or not _trusted(request, origin):
            raise CsrfFailed("this request came from another site (Origin); reload the shop's page and retry",
                             reason="origin")
        return
    referer = request.headers.get("referer")
    if referer and not _trusted(request, referer):
        raise CsrfFailed("this request came from another site (Referer); reload the shop's page and retry",
                         reason="referer")


async def _submitted_token(request: Request) -> str:
    header = request.headers.get(CSRF_HEADER.lower(), "")
    if header:
        return header
    if is_form_post(request):
        value = (await request.form()).get(CSRF_FIELD, "")
        return value if isinstance(value, str) else ""
    return ""


async def require_csrf(request: Request) -> None:
    """Route dependency: unsafe requests must come from this shop's page and carry this client's token."""
    if request.method in _SAFE_METHODS:
        return
    _check_origin(request)
    client_id = _client_id(request)
    submitted = await _submitted_token(request)
    if not client_id or not submitted or not hmac.compare_digest(
            _token_for(request, client_id).encode(), submitted.encode()[:128]):
        raise CsrfFailed("the form has expired or did not come from this shop; reload the page and retry",
                         reason="token")


CSRF_PROTECTED: Any = Depends(require_csrf)
CsrfDep = Annotated[None, CSRF_PROTECTED]


def install_template_helpers(env: Any) -> None:
    """`csrf_token()` and `csrf_input()` in a Jinja environment (the page context must hold `request`)."""
    from jinja2 import pass_context

    env.globals["csrf_token"] = pass_context(lambda context: csrf_token(context["request"]))
    env.globals["csrf_input"] = pass_context(lambda context: csrf_input(context["request"]))


class CsrfCookieMiddleware:
    """Sends the `qy_csrf` cookie with any answer that minted a client id (plain ASGI, no extra task)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        holder: dict[str, str] = {}
        scope[_SCOPE_KEY] = holder

        async def send_with_cookie(message: Message) -> None:
            if message["type"] == "http.response.start" and "minted" in holder:
                secure = "; Secure" if scope.get("scheme") == "https" else ""
                cookie = (f"{CSRF_COOKIE}={holder['minted']}; Max-Age={_COOKIE_MAX_AGE}; Path=/; HttpOnly; "
                          f"SameSite=Lax{secure}")
                message = {**message, "headers": [*message.get("headers", ()), (b"set-cookie", cookie.encode())]}
            await send(message)

        await self.app(scope, receive, send_with_cookie)
