"""A part of the shop people log in to with a browser (登录区): the console (/console, staff) and the enterprise
portal (/portal, enterprise users). Each is one `LoginArea`; this is the one place for what they do alike:

- the session lives in an HttpOnly, SameSite=Lax cookie of the area's own name, sent only under the area's
  path (a portal cookie never reaches /console, nor a console cookie /portal), without max-age: the server ends
  it (logout, absolute expiry, idle limit, revocation);
- the login of a request is read once per request from the area's own session table (a token of another area
  is not found there) and its idle clock restarts at most once a minute (`logins.due_for_touch`);
- a visitor without a finished login (none, ended, idled out, still waiting for the second factor) is sent to
  the area's login page, with `next` only ever a path of the same area (no open redirect);
- form tokens (quanyi.web.csrf) are bound to the area's cookie and every form of the area is checked, and no
  field of a form posted to the area may hold a control character (quanyi.web.form_text).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar
from urllib.parse import quote

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import RedirectResponse, Response

from quanyi.config import Settings
from quanyi.errors import DomainError
from quanyi.logins import due_for_touch
from quanyi.web.csrf import CSRF_PROTECTED, register_session_cookie
from quanyi.web.form_text import CLEAN_FORM

__all__ = ["AreaLogin", "LoginArea"]


class AreaLogin(Protocol):
    """What every area's login has: its session, whether it waits for the second factor, its last use."""

    @property
    def session_id(self) -> int: ...
    @property
    def second_factor_pending(self) -> bool: ...
    @property
    def last_seen_at(self) -> dt.datetime | None: ...


LoginT = TypeVar("LoginT", bound=AreaLogin)


@dataclass(frozen=True)
class LoginArea(Generic[LoginT]):
    """`home` is the area's path ("/console"), also its cookie's path; `find` reads the login of a token
    (session=, token=, idle=) from the area's own table, `touch` (session=, session_id=) restarts its idle
    clock; `login_required` is raised (with `message`) for a visitor who must log in first."""

    home: str
    cookie: str
    state_key: str  # where the request keeps its login once read (request.state.<state_key>)
    idle_minutes: Callable[[Settings], float]
    find: Callable[..., Awaitable[LoginT | None]]
    touch: Callable[..., Awaitable[None]]
    login_required: type[DomainError]
    message: str

    def __post_init__(self) -> None:
        # Form tokens are bound to the area's session: logging in or out makes every earlier token worthless.
        register_session_cookie(self.cookie)

    async def current_login(self, request: Request) -> LoginT | None:
        """The session of this request's cookie, or None; the idle clock restarts (at most once a minute)."""
        if hasattr(request.state, self.state_key):
            return getattr(request.state, self.state_key)  # type: ignore[no-any-return]
        token = request.cookies.get(self.cookie)
        login = None
        if token:
            ctx = request.app.state.ctx
            idle = dt.timedelta(minutes=self.idle_minutes(ctx.settings))
            async with ctx.db.read_session() as session:
                login = await self.find(session=session, token=token, idle=idle)
            if login is not None and due_for_touch(login.last_seen_at):
                async with ctx.db.transaction() as session:
                    await self.touch(session=session, session_id=login.session_id)
        setattr(request.state, self.state_key, login)
        return login

    async def logged_in(self, request: Request) -> LoginT:
        """The finished login of this request, or `login_required` naming where to come back to."""
        login = await self.current_login(request)
        if login is None or login.second_factor_pending:
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            raise self.login_required(self.message, next=target if request.method == "GET" else self.home)
        return login

    async def pending(self, request: Request) -> LoginT | None:
        """The login of this request when it still waits for the second factor."""
        login = await self.current_login(request)
        return login if login is not None and login.second_factor_pending else None

    def safe_next(self, value: str | None) -> str:
        """Where to go after logging in: only a path of this area of this shop (no open redirect)."""
        if value and value.startswith(self.home) and not value.startswith("//") and "\\" not in value:
            return value
        return self.home

    def router(self, prefix: str) -> APIRouter:
        """A section's router: not in the OpenAPI document, and every form it takes (POST ...) checked against
        cross-site requests (quanyi.web.csrf: Origin + the token bound to this session), then for control
        characters in any field (quanyi.web.form_text: a 422 before the handler runs)."""
        return APIRouter(prefix=prefix, include_in_schema=False, dependencies=[CSRF_PROTECTED, CLEAN_FORM])

    def set_session_cookie(self, response: Any, request: Request, token: str) -> None:
        # HttpOnly: no script reads it. Lax: sent when following a link into the area (an alert, a bookmark),
        # never with a cross-site form post. No max-age: the server ends the session (idle / absolute expiry).
        response.set_cookie(self.cookie, token, httponly=True, samesite="lax", path=self.home,
                            secure=request.url.scheme == "https")

    def clear_session_cookie(self, response: Any) -> None:
        response.delete_cookie(self.cookie, path=self.home)

    def login_redirect(self, exc: DomainError) -> RedirectResponse:
        """The answer to `login_required`: the login page (coming back to `next` afterwards), cookie cleared."""
        target = self.safe_next(str(exc.context.get("next") or ""))
        suffix = "" if target == self.home else f"?next={quote(target, safe='/')}"
        response = RedirectResponse(f"{self.home}/login{suffix}", status_code=303)
        self.clear_session_cookie(response)
        return response

    def mount(self, app: FastAPI, routers: Iterable[APIRouter], *, forbidden: type[DomainError],
              draw_forbidden: Callable[[Request, LoginT, DomainError], Response]) -> None:
        """Mount the area's routers and answer its two refusals: `login_required` with the login page
        (`login_redirect`), `forbidden` (a logged-in user without the permission) with `draw_forbidden`."""
        for router in routers:
            app.include_router(router)

        async def login_required(request: Request, exc: Exception) -> Response:
            assert isinstance(exc, self.login_required)
            return self.login_redirect(exc)

        async def refused(request: Request, exc: Exception) -> Response:
            assert isinstance(exc, forbidden)
            login = await self.current_login(request)
            assert login is not None  # refused only after the login was found
            return draw_forbidden(request, login, exc)

        app.add_exception_handler(self.login_required, login_required)
        app.add_exception_handler(forbidden, refused)
