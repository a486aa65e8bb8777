"""The one browser login flow (登录流程) of every login area (quanyi.web.login_area): the console's staff and the
enterprise portal's users log in through the same pages, in the same steps:

1. the login form (the area's account fields and a password), checked under the shop's login limits
   (quanyi.logins: counted per IP and per account, one answer for an unknown account, a disabled one or a wrong
   password; past the limits 429 with Retry-After, even for a right password);
2. when the account has a second factor, a short session that opens only the code page; a right code (under
   the same limits) replaces it with a full session;
3. a new session token at every step (the token the browser came with ends first): a token planted before
   login is never a logged-in token; logout ends the session and clears the cookie;
4. every success, failure and logout lands in the shop's audit log.

What differs between areas is who logs in: `Accounts` says which fields name an account, how a password and a
code are checked, how a session opens and ends, and how the audit log names the person.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.ext.asyncio import AsyncSession

from quanyi import logins
from quanyi.context import ShopContext
from quanyi.deps import ContextDep, client_ip, user_agent
from quanyi.staff.audit import Actor, record_action
from quanyi.web.login_area import LoginArea

__all__ = ["Who", "Accounts", "form_text", "limited", "install_login_routes", "public_routes"]


def form_text(value: object, limit: int) -> str:
    """A form field as text, cut to `limit` characters."""
    return str(value or "")[:limit]


@dataclass(frozen=True, slots=True)
class Who:
    """A person as the audit log records a login of theirs: the actor's name and staff id, the row's object."""

    name: str
    staff_id: int | None
    object_type: str
    object_id: str


class Accounts(Protocol):
    """Who logs in to an area: the account fields of its login form and the rules of its accounts."""

    fields: tuple[tuple[str, int], ...]  # the login form's account fields (besides the password), with max lengths
    actions: str  # the prefix of the audit log's action names ("" for staff: login, logout ...; "portal_")
    failed_error: str  # the text key of the answer to a failed login
    notices: Mapping[str, str]  # ?m=<key> on the login page: the text key of the notice shown

    def session_hours(self, settings: Any) -> float: ...

    async def check_password(self, ctx: ShopContext, values: Mapping[str, str], password: str,
                             ip: str) -> tuple[Any, Who]: ...

    def who_failed(self, values: Mapping[str, str]) -> Who: ...

    def who_of(self, login: Any) -> Who: ...

    async def check_code(self, ctx: ShopContext, login: Any, code: str, ip: str) -> Any: ...

    async def open_session(self, *, db: Any, user: Any, hours: float, ip: str, user_agent: str,
                           second_factor_pending: bool, replaces: str | None) -> str: ...

    async def end_session(self, *, session: AsyncSession, token: str) -> bool: ...


Render = Callable[..., HTMLResponse]
_BASE_NOTICES = {"ended": "login.ended", "out": "login.logged_out"}


async def _audit(ctx: ShopContext, request: Request, who: Who, action: str, summary: str = "") -> None:
    async with ctx.db.transaction() as session:
        await record_action(session=session, actor=Actor(name=who.name, staff_id=who.staff_id, ip=client_ip(request),
                                                         user_agent=user_agent(request)),
                            action=action, object_type=who.object_type, object_id=who.object_id, summary=summary)


def limited(settings: Any, exc: logins.LoginRateLimited) -> tuple[dict[str, object], dict[str, str]]:
    """The text values ("login.limited": in how many minutes) and headers (Retry-After) of a 429 page."""
    minutes = max(settings.staff_login_window_seconds // 60, 1)
    return {"minutes": minutes}, {"Retry-After": str(exc.context["retry_after"])}


def public_routes(home: str) -> set[tuple[str, str]]:
    """The routes of the flow anyone may open (every other route of the area refuses strangers)."""
    return {("GET", f"{home}/login"), ("POST", f"{home}/login"), ("GET", f"{home}/login/verify"),
            ("POST", f"{home}/login/verify"), ("POST", f"{home}/logout")}


def install_login_routes(router: APIRouter, *, area: LoginArea[Any], accounts: Accounts, render: Render,
                         templates: str) -> None:
    """Add the login, second-factor and logout routes of `area` to its root router; pages drawn by `render`:
    `<templates>/login.html`, and area/verify.html inside `<templates>/base.html`."""
    home = area.home

    def login_page(request: Request, *, error: str | None = None, error_values: dict[str, object] | None = None,
                   notice: str | None = None, values: Mapping[str, str] | None = None, target: str | None = None,
                   status_code: int = 200, headers: dict[str, str] | None = None) -> HTMLResponse:
        fields = {name: (values or {}).get(name, "") for name, _ in accounts.fields}
        return render(request, f"{templates}/login.html", {
            "error": error, "error_values": error_values or {}, "notice": notice, **fields,
            "next": target or area.safe_next(request.query_params.get("next")),
        }, user=None, status_code=status_code, headers=headers)

    def verify_page(request: Request, *, target: str, error: str | None = None,
                    error_values: dict[str, object] | None = None, status_code: int = 200,
                    headers: dict[str, str] | None = None) -> HTMLResponse:
        return render(request, "area/verify.html", {
            "layout": f"{templates}/base.html", "error": error, "error_values": error_values or {}, "next": target},
            user=None,
            status_code=status_code, headers=headers)

    async def new_session(ctx: ShopContext, request: Request, user: Any, *, pending: bool) -> str:
        # A new token at every login (and again after the second factor): a token planted before login is useless.
        return await accounts.open_session(
            db=ctx.db, user=user, hours=accounts.session_hours(ctx.settings), ip=client_ip(request),
            user_agent=user_agent(request), second_factor_pending=pending, replaces=request.cookies.get(area.cookie))

    @router.get("/login", response_class=HTMLResponse)
    async def login_form(request: Request) -> Response:
        login = await area.current_login(request)
        if login is not None and not login.second_factor_pending:
            return RedirectResponse(area.safe_next(request.query_params.get("next")), status_code=303)
        notice = {**_BASE_NOTICES, **accounts.notices}.get(request.query_params.get("m", ""))
        return login_page(request, notice=notice)

    @router.post("/login", response_class=HTMLResponse)
    async def login(request: Request, ctx: ContextDep) -> Response:
        form = await request.form()
        values = {name: form_text(form.get(name), limit).strip() for name, limit in accounts.fields}
        password, target = form_text(form.get("password"), 1024), area.safe_next(form_text(form.get("next"), 500))
        try:
            user, who = await accounts.check_password(ctx, values, password, client_ip(request))
        except logins.LoginRateLimited as exc:
            error_values, headers = limited(ctx.settings, exc)
            return login_page(request, error="login.limited", error_values=error_values, values=values,
                              target=target, status_code=429, headers=headers)
        except logins.LoginFailed:
            await _audit(ctx, request, accounts.who_failed(values), f"{accounts.actions}login_failed")
            return login_page(request, error=accounts.failed_error, values=values, target=target, status_code=401)
        pending = user.totp_enabled_at is not None
        token = await new_session(ctx, request, user, pending=pending)
        if pending:
            response = RedirectResponse(f"{home}/login/verify?next={quote(target, safe='/')}", status_code=303)
        else:
            await _audit(ctx, request, who, f"{accounts.actions}login")
            response = RedirectResponse(target, status_code=303)
        area.set_session_cookie(response, request, token)
        return response

    @router.get("/login/verify", response_class=HTMLResponse)
    async def verify_form(request: Request) -> Response:
        if await area.pending(request) is None:
            return RedirectResponse(f"{home}/login?m=ended", status_code=303)
        return verify_page(request, target=area.safe_next(request.query_params.get("next")))

    @router.post("/login/verify", response_class=HTMLResponse)
    async def verify(request: Request, ctx: ContextDep) -> Response:
        pending = await area.pending(request)
        if pending is None:
            return RedirectResponse(f"{home}/login?m=ended", status_code=303)
        form = await request.form()
        code, target = form_text(form.get("code"), 64), area.safe_next(form_text(form.get("next"), 500))
        who = accounts.who_of(pending)
        try:
            user = await accounts.check_code(ctx, pending, code, client_ip(request))
        except logins.LoginRateLimited as exc:
            error_values, headers = limited(ctx.settings, exc)
            return verify_page(request, target=target, error="login.limited", error_values=error_values,
                               status_code=429, headers=headers)
        except logins.LoginFailed:
            await _audit(ctx, request, who, f"{accounts.actions}second_factor_failed")
            return verify_page(request, target=target, error="login.code_failed", status_code=401)
        token = await new_session(ctx, request, user, pending=False)
        await _audit(ctx, request, who, f"{accounts.actions}login", summary="with second factor")
        response = RedirectResponse(target, status_code=303)
        area.set_session_cookie(response, request, token)
        return response

    @router.post("/logout")
    async def logout(request: Request, ctx: ContextDep) -> Response:
        token = request.cookies.get(area.cookie)
        login = await area.current_login(request)
        if token:
            async with ctx.db.transaction() as session:
                await accounts.end_session(session=session, token=token)
        if login is not None:
            await _audit(ctx, request, accounts.who_of(login), f"{accounts.actions}logout")
        response = RedirectResponse(f"{home}/login?m=out", status_code=303)
        area.clear_session_cookie(response)
        return response

