"""Logging in and out of the console: password (the staff login limits of the API apply), then the second
factor when the account has one; every success and failure lands in the audit log."""

from __future__ import annotations

from urllib.parse import quote

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from quanyi.console import auth
from quanyi.console.auth import UserDep
from quanyi.console.menu import home_for
from quanyi.console.rendering import render_page
from quanyi.deps import ContextDep, client_ip, user_agent
from quanyi.staff import service as staff_service
from quanyi.staff import sessions as console_sessions
from quanyi.staff.audit import Actor, record_action

__all__ = ["router", "PUBLIC_ROUTES"]

router = auth.console_router("/console")

# Routes anyone may open (the access sweep checks every other console route refuses strangers).
PUBLIC_ROUTES = {("GET", "/console/login"), ("POST", "/console/login"), ("GET", "/console/login/verify"),
                 ("POST", "/console/login/verify"), ("POST", "/console/logout")}


def _text(value: object, limit: int) -> str:
    return str(value or "")[:limit]


async def _audit(ctx: ContextDep, request: Request, *, name: str, staff_id: int | None, action: str,
                 summary: str = "") -> None:
    async with ctx.db.transaction() as session:
        await record_action(session=session, actor=Actor(name=name, staff_id=staff_id, ip=client_ip(request),
                                                         user_agent=user_agent(request)),
                            action=action, object_type="staff", object_id=name, summary=summary)


def _login_page(request: Request, *, error: str | None = None, error_values: dict[str, object] | None = None,
                notice: str | None = None, username: str = "", target: str | None = None, status_code: int = 200,
                headers: dict[str, str] | None = None) -> HTMLResponse:
    return render_page(request, "console/login.html", {
        "error": error, "error_values": error_values or {}, "notice": notice, "username": username,
        "next": target or auth.safe_next(request.query_params.get("next")),
    }, user=None, status_code=status_code, headers=headers)


@router.get("/login", response_class=HTMLResponse)
async def login_form(request: Request) -> Response:
    login = await auth.current_login(request)
    if login is not None and not login.second_factor_pending:
        return RedirectResponse(auth.safe_next(request.query_params.get("next")), status_code=303)
    notice = {"ended": "login.ended", "out": "login.logged_out"}.get(request.query_params.get("m", ""))
    return _login_page(request, notice=notice)


@router.post("/login", response_class=HTMLResponse)
async def login(request: Request, ctx: ContextDep) -> Response:
    form = await request.form()
    username, password = _text(form.get("username"), 64).strip(), _text(form.get("password"), 1024)
    target = auth.safe_next(_text(form.get("next"), 500))
    limits = staff_service.LoginLimits.from_settings(ctx.settings)
    try:
        user = await staff_service.authenticate(db=ctx.db, limiter=ctx.limiter, limits=limits, username=username,
                                                password=password, ip=client_ip(request))
    except staff_service.LoginRateLimited as exc:
        minutes = max(ctx.settings.staff_login_window_seconds // 60, 1)
        return _login_page(request, error="login.limited", error_values={"minutes": minutes}, username=username,
                           target=target, status_code=429, headers={"Retry-After": str(exc.context["retry_after"])})
    except staff_service.LoginFailed:
        await _audit(ctx, request, name=username.lower() or "?", staff_id=None, action="login_failed")
        return _login_page(request, error="login.failed", username=username, target=target, status_code=401)
    pending = user.totp_enabled_at is not None
    # A new token at every login (and again after the second factor): a token planted before login is useless.
    token = await console_sessions.open_console_session(
        db=ctx.db, user=user, hours=ctx.settings.console_session_hours, ip=client_ip(request),
        user_agent=user_agent(request), second_factor_pending=pending, replaces=request.cookies.get(auth.COOKIE))
    if pending:
        response = RedirectResponse(f"/console/login/verify?next={quote(target, safe='/')}", status_code=303)
    else:
        await _audit(ctx, request, name=user.username, staff_id=user.id, action="login")
        response = RedirectResponse(target, status_code=303)
    auth.set_session_cookie(response, request, token)
    return response


async def _pending(request: Request) -> console_sessions.ConsoleLogin | None:
    login = await auth.current_login(request)
    return login if login is not None and login.second_factor_pending else None


@router.get("/login/verify", response_class=HTMLResponse)
async def verify_form(request: Request) -> Response:
    if await _pending(request) is None:
        return RedirectResponse("/console/login?m=ended", status_code=303)
    return render_page(request, "console/verify.html", {
        "error": None, "error_values": {}, "next": auth.safe_next(request.query_params.get("next"))}, user=None)


@router.post("/login/verify", response_class=HTMLResponse)
async def verify(request: Request, ctx: ContextDep) -> Response:
    pending = await _pending(request)
    if pending is None:
        return RedirectResponse("/console/login?m=ended", status_code=303)
    form = await request.form()
    code, target = _text(form.get("code"), 64), auth.safe_next(_text(form.get("next"), 500))
    staff_id = pending.principal.staff_id
    assert staff_id is not None
    limits = staff_service.LoginLimits.from_settings(ctx.settings)
    try:
        user = await staff_service.check_second_factor(db=ctx.db, limiter=ctx.limiter, limits=limits,
                                                       cipher=ctx.cipher, staff_id=staff_id, code=code,
                                                       ip=client_ip(request))
    except staff_service.LoginRateLimited as exc:
        minutes = max(ctx.settings.staff_login_window_seconds // 60, 1)
        return render_page(request, "console/verify.html", {
            "error": "login.limited", "error_values": {"minutes": minutes}, "next": target}, user=None,
            status_code=429, headers={"Retry-After": str(exc.context["retry_after"])})
    except staff_service.LoginFailed:
        await _audit(ctx, request, name=pending.principal.name, staff_id=staff_id, action="second_factor_failed")
        return render_page(request, "console/verify.html", {"error": "login.code_failed", "error_values": {},
                                                            "next": target}, user=None, status_code=401)
    token = await console_sessions.open_console_session(
        db=ctx.db, user=user, hours=ctx.settings.console_session_hours, ip=client_ip(request),
        user_agent=user_agent(request), second_factor_pending=False, replaces=request.cookies.get(auth.COOKIE))
    await _audit(ctx, request, name=user.username, staff_id=user.id, action="login", summary="with second factor")
    response = RedirectResponse(target, status_code=303)
    auth.set_session_cookie(response, request, token)
    return response


@router.post("/logout")
async def logout(request: Request, ctx: ContextDep) -> Response:
    token = request.cookies.get(auth.COOKIE)
    login = await auth.current_login(request)
    if token:
        async with ctx.db.transaction() as session:
            await console_sessions.end_console_session(session=session, token=token)
    if login is not None:
        await _audit(ctx, request, name=login.principal.name, staff_id=login.principal.staff_id, action="logout")
    response = RedirectResponse("/console/login?m=out", status_code=303)
    auth.clear_session_cookie(response)
    return response


@router.get("", response_class=HTMLResponse)
async def home(request: Request, user: UserDep) -> Response:
    """/console: the staff member's first page (the dashboard for most roles)."""
    target = home_for(user.principal)
    if target is None:
        return render_page(request, "console/nothing.html", {}, user=user)
    return RedirectResponse(target, status_code=303)

