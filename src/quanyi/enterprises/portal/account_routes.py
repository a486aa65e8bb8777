"""The portal's overview (账户概览: balance, credit, recent movements), the statement (对账单) and prices (协议价),
and the user's own account (password, second factor)."""

from __future__ import annotations

import datetime as dt

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from quanyi.deps import ContextDep
from quanyi.enterprises import pricing, users
from quanyi.enterprises import service as enterprises_service
from quanyi.enterprises.portal import auth
from quanyi.enterprises.portal.auth import UserDep
from quanyi.enterprises.portal.pages import audit, forms
from quanyi.enterprises.portal.rendering import render_page
from quanyi.errors import DomainError
from quanyi.logins import LoginFailed, LoginLimits, LoginRateLimited
from quanyi.second_factor import Enrolment
from quanyi.shoptime import parse_month, shop_zone
from quanyi.web.area_rendering import enrolment_qr
from quanyi.web.login_flow import limited

__all__ = ["router"]

router = auth.portal_router("/portal")


def _bounds(first: dt.date, zone: dt.tzinfo) -> tuple[dt.datetime, dt.datetime]:
    """A month's bounds in UTC, from midnight of its first day in the shop's time zone."""
    following = (first.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
    start = dt.datetime.combine(first, dt.time(), zone).astimezone(dt.UTC)
    return start, dt.datetime.combine(following, dt.time(), zone).astimezone(dt.UTC)


@router.get("", response_class=HTMLResponse)
async def home(request: Request, ctx: ContextDep, user: UserDep) -> Response:
    zone = shop_zone(ctx.settings.shop_timezone)
    start, end = _bounds(dt.datetime.now(zone).date().replace(day=1), zone)
    async with ctx.db.read_session() as session:
        enterprise = await enterprises_service.get_enterprise(session=session, code=user.code)
        account = await enterprises_service.account_of(session=session, enterprise=enterprise)
        recent = await enterprises_service.statement(session=session, code=user.code,
                                                     start=start - dt.timedelta(days=90), end=end)
    return render_page(request, "portal/home.html", {
        "enterprise": enterprise, "account": account, "recent": list(reversed(recent.lines[-8:])),
    }, user=user, active="home")


@router.get("/statement", response_class=HTMLResponse)
async def statement(request: Request, ctx: ContextDep, user: UserDep) -> Response:
    """The statement of the month asked for (?month= typed the Chinese way: 2026-12, 2026/12, 2026年12月; default
    this month in the shop's time zone); a month that cannot be read is refused (422), no statement shown."""
    zone = shop_zone(ctx.settings.shop_timezone)
    raw = request.query_params.get("month", "")[:20]
    first = parse_month(raw) if raw.strip() else dt.datetime.now(zone).date().replace(day=1)
    if first is None:
        return render_page(request, "portal/statement.html", {
            "s": None, "month": raw, "message": ("portal.statement.bad_month", {}, "err")},
            user=user, active="statement", status_code=422)
    start, end = _bounds(first, zone)
    async with ctx.db.read_session() as session:
        found = await enterprises_service.statement(session=session, code=user.code, start=start, end=end)
    return render_page(request, "portal/statement.html", {
        "s": found, "month": first.strftime("%Y-%m"), "message": None}, user=user, active="statement")


@router.get("/prices", response_class=HTMLResponse)
async def prices(request: Request, ctx: ContextDep, user: UserDep) -> Response:
    async with ctx.db.read_session() as session:
        listed = await pricing.price_list(session=session, code=user.code)
    return render_page(request, "portal/prices.html", {"prices": listed}, user=user, active="prices")


# ---------------------------------------------------------------- the user's own account

async def _account_page(request: Request, ctx: ContextDep, user: auth.PortalUser, *,
                        enrolment: Enrolment | None = None, recovery_codes: list[str] | None = None,
                        message: forms.Message | None = None, status_code: int = 200,
                        headers: dict[str, str] | None = None) -> HTMLResponse:
    async with ctx.db.read_session() as session:
        me = await users.get_user_by_id(session=session, user_id=user.login.user_id)
        left = await users.SECOND_FACTOR.remaining_recovery_codes(session=session, owner_id=me.id)
    return render_page(request, "portal/account.html", {
        "me": me, "recovery_left": left, "enrolment": enrolment, "qr_svg": enrolment_qr(enrolment),
        "recovery_codes": recovery_codes,
        "message": message, "idle": int(ctx.settings.enterprise_portal_idle_minutes),
        "hours": ctx.settings.enterprise_portal_session_hours,
    }, user=user, active="account", status_code=status_code, headers=headers)


@router.get("/account", response_class=HTMLResponse)
async def account(request: Request, ctx: ContextDep, user: UserDep) -> Response:
    return await _account_page(request, ctx, user)


@router.post("/account/password", response_class=HTMLResponse)
async def change_password(request: Request, ctx: ContextDep, user: UserDep) -> Response:
    form = await request.form()
    current, new = str(form.get("current", ""))[:1024], str(form.get("new", ""))[:1024]
    try:  # the current password is checked like a login: same failure limits, so a session cannot guess it
        me, _ = await users.authenticate(db=ctx.db, limiter=ctx.limiter, limits=LoginLimits.from_settings(ctx.settings),
                                         code=user.code, username=user.login.username, password=current,
                                         ip=user.ip)
    except LoginRateLimited as exc:
        values, headers = limited(ctx.settings, exc)
        return await _account_page(request, ctx, user, message=("login.limited", values, "err"), status_code=429,
                                   headers=headers)
    except LoginFailed:
        return await _account_page(request, ctx, user, message=("portal.account.wrong_password", {}, "err"),
                                   status_code=403)
    try:
        async with ctx.db.transaction() as session:
            await users.set_password(session=session, code=user.code, username=me.username, password=new)
            await audit(session, user, "portal_password_changed", me.username)
    except DomainError as exc:
        return await _account_page(request, ctx, user, message=forms.error(exc), status_code=forms.status_for(exc))
    response = RedirectResponse("/portal/login?m=password", status_code=303)  # every session ended, this one too
    auth.AREA.clear_session_cookie(response)
    return response


def _issuer(ctx: ContextDep) -> str:
    return f"{ctx.settings.shop_name} 企业门户"


@router.post("/account/second-factor/start", response_class=HTMLResponse)
async def enrol_start(request: Request, ctx: ContextDep, user: UserDep) -> Response:
    if user.login.has_second_factor:  # a new secret replaces the old one only after turning it off with a code
        return await _account_page(request, ctx, user, message=("account.second_factor_on", {}, "warn"),
                                   status_code=409)
    enrolment = users.SECOND_FACTOR.start_enrolment(
        cipher=ctx.cipher, owner_id=user.login.user_id, issuer=_issuer(ctx),
        account=users.actor_name(user.code, user.login.username))
    return await _account_page(request, ctx, user, enrolment=enrolment)


@router.post("/account/second-factor/confirm", response_class=HTMLResponse)
async def enrol_confirm(request: Request, ctx: ContextDep, user: UserDep) -> Response:
    form = await request.form()
    sealed, code = str(form.get("sealed", ""))[:2000], str(form.get("code", ""))[:32]
    try:
        async with ctx.db.transaction() as session:
            codes = await users.SECOND_FACTOR.confirm_enrolment(session=session, cipher=ctx.cipher,
                                                                owner_id=user.login.user_id, sealed=sealed, code=code)
            await audit(session, user, "portal_second_factor_on", user.login.username)
    except DomainError as exc:
        try:
            again = users.SECOND_FACTOR.reopen_enrolment(
                cipher=ctx.cipher, owner_id=user.login.user_id, sealed=sealed, issuer=_issuer(ctx),
                account=users.actor_name(user.code, user.login.username))
        except DomainError:
            again = None
        return await _account_page(request, ctx, user, enrolment=again, message=forms.error(exc), status_code=422)
    return await _account_page(request, ctx, user, recovery_codes=codes)


@router.post("/account/second-factor/off", response_class=HTMLResponse)
async def second_factor_off(request: Request, ctx: ContextDep, user: UserDep) -> Response:
    form = await request.form()
    code = str(form.get("code", ""))[:32]
    try:  # a current code, checked under the login limits (and used up)
        await users.check_second_factor(db=ctx.db, limiter=ctx.limiter, limits=LoginLimits.from_settings(ctx.settings),
                                        cipher=ctx.cipher, user_id=user.login.user_id, code=code, ip=user.ip)
    except LoginRateLimited as exc:
        values, headers = limited(ctx.settings, exc)
        return await _account_page(request, ctx, user, message=("login.limited", values, "err"), status_code=429,
                                   headers=headers)
    except LoginFailed:
        return await _account_page(request, ctx, user, message=("account.code_wrong", {}, "err"), status_code=422)
    async with ctx.db.transaction() as session:
        await users.SECOND_FACTOR.disable(session=session, owner_id=user.login.user_id)
        await audit(session, user, "portal_second_factor_off", user.login.username)
    return await _account_page(request, ctx, user, message=("account.disabled", {}, "ok"))
