"""Logging in to and out of the enterprise portal: enterprise code, username and password under the shop's
login limits (quanyi.logins), then the second factor when the user has one; a new session token at every
login; every success and failure in the shop's audit log."""

from __future__ import annotations

from urllib.parse import quote

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from quanyi import logins
from quanyi.deps import ContextDep, client_ip, user_agent
from quanyi.enterprises import user_sessions, users
from quanyi.enterprises.portal import auth
from quanyi.enterprises.portal.rendering import render_page
from quanyi.staff.audit import Actor, record_action

__all__ = ["router", "PUBLIC_ROUTES"]

router = auth.portal_router("/portal")

# Routes anyone may open (the isolation sweep checks every other portal route refuses strangers).
PUBLIC_ROUTES = {("GET", "/portal/login"), ("POST", "/portal/login"), ("GET", "/portal/login/verify"),
                 ("POST", "/portal/login/verify"), ("POST", "/portal/logout")}


def _text(value: object, limit: int) -> str:
    return str(value or "")[:limit]


async def _audit(ctx: ContextDep, request: Request, *, name: str, action: str, code: str, summary: str = "") -> None:
    async with ctx.db.transaction() as session:
        await record_action(session=session, actor=Actor(name=name, staff_id=None, ip=client_ip(request),
                                                         user_agent=user_agent(request)),
                            action=action, object_type="enterprise", object_id=code, summary=summary)


def _login_page(request: Request, *, error: str | None = None, error_values: dict[str, object] | None = None,
                notice: str | None = None, enterprise: str = "", username: str = "", target: str | None = None,
                status_code: int = 200, headers: dict[str, str] | None = None) -> HTMLResponse:
    return render_page(request, "portal/login.html", {
        "error": error, "error_values": error_values or {}, "notice": notice, "enterprise": enterprise,
        "username": username, "next": target or auth.safe_next(request.query_params.get("next")),
    }, user=None, status_code=status_code, headers=headers)


def _limited(ctx: ContextDep, exc: logins.LoginRateLimited) -> tuple[dict[str, object], dict[str, str]]:
    minutes = max(ctx.settings.staff_login_window_seconds // 60, 1)
    return {"minutes": minutes}, {"Retry-After": str(exc.context["retry_after"])}


@router.get("/login", response_class=HTMLResponse)
async def login_form(request: Request) -> Response:
    login = await auth.current_login(request)
    if login is not None and not login.second_factor_pending:
        return RedirectResponse(auth.safe_next(request.query_params.get("next")), status_code=303)
    notice = {"ended": "login.ended", "out": "login.logged_out",
              "password": "portal.m.password_changed"}.get(request.query_params.get("m", ""))
    return _login_page(request, notice=notice)


@router.post("/login", response_class=HTMLResponse)
async def login(request: Request, ctx: ContextDep) -> Response:
    form = await request.form()
    code, username = _text(form.get("enterprise"), 48).strip(), _text(form.get("username"), 64).strip()
    password, target = _text(form.get("password"), 1024), auth.safe_next(_text(form.get("next"), 500))
    limits = logins.LoginLimits.from_settings(ctx.settings)
    try:
        user, enterprise = await users.authenticate(db=ctx.db, limiter=ctx.limiter, limits=limits, code=code,
                                                    username=username, password=password, ip=client_ip(request))
    except logins.LoginRateLimited as exc:
        values, headers = _limited(ctx, exc)
        return _login_page(request, error="login.limited", error_values=values, enterprise=code, username=username,
                           target=target, status_code=429, headers=headers)
    except logins.LoginFailed:
        await _audit(ctx, request, name=users.actor_name(code or "?", username or "?"), action="portal_login_failed",
                     code=code)
        return _login_page(request, error="portal.login.failed", enterprise=code, username=username, target=target,
                           status_code=401)
    pending = user.totp_enabled_at is not None
    # A new token at every login (and again after the second factor): a token planted before login is useless.
    token = await user_sessions.open_portal_session(
        db=ctx.db, user=user, hours=ctx.settings.enterprise_portal_session_hours, ip=client_ip(request),
        user_agent=user_agent(request), second_factor_pending=pending, replaces=request.cookies.get(auth.COOKIE))
    if pending:
        response = RedirectResponse(f"/portal/login/verify?next={quote(target, safe='/')}", status_code=303)
    else:
        await _audit(ctx, request, name=users.actor_name(enterprise.code, user.username), action="portal_login",
                     code=enterprise.code)
        response = RedirectResponse(target, status_code=303)
    auth.set_session_cookie(response, request, token)
    return response


async def _pending(request: Request) -> user_sessions.PortalLogin | None:
    login = await auth.current_login(request)
    return login if login is not None and login.second_factor_pending else None


@router.get("/login/verify", response_class=HTMLResponse)
async def verify_form(request: Request) -> Response:
    if await _pending(request) is None:
        return RedirectResponse("/portal/login?m=ended", status_code=303)
    return render_page(request, "portal/verify.html", {
        "error": None, "error_values": {}, "next": auth.safe_next(request.query_params.get("next"))}, user=None)


@router.post("/login/verify", response_class=HTMLResponse)
async def verify(request: Request, ctx: ContextDep) -> Response:
    pending = await _pending(request)
    if pending is None:
        return RedirectResponse("/portal/login?m=ended", status_code=303)
    form = await request.form()
    code, target = _text(form.get("code"), 64), auth.safe_next(_text(form.get("next"), 500))
    limits = logins.LoginLimits.from_settings(ctx.settings)
    name = users.actor_name(pending.enterprise_code, pending.username)
    try:
        user = await users.check_second_factor(db=ctx.db, limiter=ctx.limiter, limits=limits, cipher=ctx.cipher,
                                               user_id=pending.user_id, code=code, ip=client_ip(request))
    except logins.LoginRateLimited as exc:
        values, headers = _limited(ctx, exc)
        return render_page(request, "portal/verify.html", {"error": "login.limited", "error_values": values,
                                                           "next": target}, user=None, status_code=429,
                           headers=headers)
    except logins.LoginFailed:
        await _audit(ctx, request, name=name, action="portal_second_factor_failed", code=pending.enterprise_code)
        return render_page(request, "portal/verify.html", {"error": "login.code_failed", "error_values": {},
                                                           "next": target}, user=None, status_code=401)
    token = await user_sessions.open_portal_session(
        db=ctx.db, user=user, hours=ctx.settings.enterprise_portal_session_hours, ip=client_ip(request),
        user_agent=user_agent(request), second_factor_pending=False, replaces=request.cookies.get(auth.COOKIE))
    await _audit(ctx, request, name=name, action="portal_login", code=pending.enterprise_code,
                 summary="with second factor")
    response = RedirectResponse(target, status_code=303)
    auth.set_session_cookie(response, request, token)
    return response


@router.post("/logout")
async def logout(request: Request, ctx: ContextDep) -> Response:
    token = request.cookies.get(auth.COOKIE)
    login = await auth.current_login(request)
    if token:
        async with ctx.db.transaction() as session:
            await user_sessions.end_portal_session(session=session, token=token)
    if login is not None:
        await _audit(ctx, request, name=users.actor_name(login.enterprise_code, login.username),
                     action="portal_logout", code=login.enterprise_code)
    response = RedirectResponse("/portal/login?m=out", status_code=303)
    auth.clear_session_cookie(response)
    return response
