"""Account pages of the storefront (会员中心), zh-CN and en: log in / sign up by code or password, my orders (each
opens the order page, where keys are revealed and audited as for any buyer), security (password, second contact,
log out everywhere), and the cards other features register (members/extensions.py).

Thin over `members.service`, like the API. Every form carries the CSRF token; a domain error re-renders the form
with a translated message and the matching status.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from quanyi.context import ShopContext
from quanyi.deps import ContextDep
from quanyi.members import service as members_service
from quanyi.members import texts as _texts  # noqa: F401 - registers the page texts
from quanyi.members.dependencies import OptionalMemberDep, clear_member_cookie, request_member_token, set_member_cookie
from quanyi.members.extensions import account_sections
from quanyi.members.routes import SignInRequest, sign_in_request
from quanyi.members.sessions import MemberLogin, end_all_sessions, end_member_session
from quanyi.orders import service as orders_service
from quanyi.orders.contact import mask_contact
from quanyi.web.csrf import CSRF_PROTECTED
from quanyi.web.i18n import pick_locale, translate
from quanyi.web.routes import grant_order_access
from quanyi.web.templating import render

__all__ = ["router"]

router = APIRouter(include_in_schema=False)

OrderNoPath = Annotated[str, Path(max_length=64)]
ORDERS_PER_PAGE = 20
_LOGIN = "/account/login"


def _redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


async def _form(request: Request, *names: str) -> dict[str, str]:
    raw = await request.form()
    return {name: str(raw.get(name, ""))[:254] for name in names}


def _login_page(request: Request, *, step: str = "contact", form: dict[str, str] | None = None,
                error: str | None = None, notice: str | None = None, status_code: int = 200,
                retry_after: int | None = None) -> HTMLResponse:
    page = render(request, "account_login.html", {"step": step, "form": form or {}, "error": error,
                                                  "notice": notice}, status_code=status_code)
    if retry_after:
        page.headers["Retry-After"] = str(retry_after)
    return page


def _error_text(r: SignInRequest, exc: Exception) -> tuple[str, int]:
    """The buyer's message and status for a sign-in error."""
    t = r.locale
    if isinstance(exc, members_service.SignInRateLimited):
        return translate(t, "account.err.limited", minutes=max(r.limits.window_seconds // 60, 1)), 429
    if isinstance(exc, members_service.CodeCannotBeSent):
        key = ("account.err.code_unavailable_use_email" if exc.context.get("use_contact_kind")
               else "account.err.code_unavailable")
        return translate(t, key), 403
    if isinstance(exc, members_service.CodeWrong):
        return translate(t, "account.err.code_wrong", left=exc.context.get("attempts_left", 0)), 422
    if isinstance(exc, members_service.CodeExpired):
        return translate(t, "account.err.code_expired"), 410
    if isinstance(exc, members_service.MemberDisabled):
        return translate(t, "account.err.disabled"), 403
    if isinstance(exc, members_service.InvalidCredentials):
        key = "account.err.current_password" if exc.context.get("field") else "account.err.credentials"
        return translate(t, key), 401
    if isinstance(exc, members_service.PasswordRejected):
        return translate(t, "account.err.password"), 422
    if isinstance(exc, members_service.ContactTaken):
        return translate(t, "account.err.contact_taken"), 409
    return translate(t, "account.err.contact"), 422  # ContactInvalid


_SIGN_IN_ERRORS = (members_service.SignInRateLimited, members_service.CodeCannotBeSent, members_service.CodeWrong,
                   members_service.CodeExpired, members_service.MemberDisabled, members_service.InvalidCredentials,
                   members_service.PasswordRejected, members_service.ContactTaken, members_service.ContactInvalid)


def _retry_after(exc: Exception) -> int | None:
    value = getattr(exc, "context", {}).get("retry_after")
    return int(value) if value else None


def _code_notice(r: SignInRequest, contact_kind: str, contact: str) -> str:
    return translate(r.locale, "account.login.code_sent", contact=mask_contact(contact_kind, contact),
                     minutes=max(r.limits.code_ttl_seconds // 60, 1))


def _safe_next(value: str | None) -> str:
    """Where to go after logging in: a path of this shop only (never another site)."""
    if value and value.startswith("/") and not value.startswith(("//", "/\\")) and len(value) <= 200:
        return value
    return "/account"


# ---------------------------------------------------------------- log in / sign up

@router.get("/account/login", response_class=HTMLResponse)
async def login_form(request: Request, member: OptionalMemberDep) -> Response:
    if member is not None:
        return _redirect("/account")
    return _login_page(request, form={"next": _safe_next(request.query_params.get("next"))})


@router.post("/account/login/code", response_class=HTMLResponse, dependencies=[CSRF_PROTECTED])
async def send_login_code(request: Request, ctx: ContextDep) -> Response:
    form = await _form(request, "contact", "next")
    r = sign_in_request(ctx, request)
    try:
        kind, contact = members_service.normalize_member_contact(form["contact"])
        sent = await members_service.request_sign_in_code(
            db=ctx.db, limiter=ctx.limiter, limits=r.limits, secret=r.secret, contact=contact, locale=r.locale,
            ip=r.ip, device=r.device)
    except _SIGN_IN_ERRORS as exc:
        message, status = _error_text(r, exc)
        return _login_page(request, form=form, error=message, status_code=status, retry_after=_retry_after(exc))
    return _login_page(request, step="code", form={**form, "code_id": sent.code_id},
                       notice=_code_notice(r, kind, contact))


@router.post("/account/login/verify", response_class=HTMLResponse, dependencies=[CSRF_PROTECTED])
async def verify_login_code(request: Request, ctx: ContextDep) -> Response:
    form = await _form(request, "contact", "code_id", "code", "next")
    r = sign_in_request(ctx, request)
    if not form["code"].strip().isdigit() or len(form["code"].strip()) != 6 or not form["code_id"].startswith("mc_"):
        return _login_page(request, step="code", form=form, status_code=422,
                           error=translate(r.locale, "account.err.code_format"))
    try:
        signed = await members_service.sign_in_with_code(
            db=ctx.db, limiter=ctx.limiter, limits=r.limits, secret=r.secret, code_id=form["code_id"],
            code=form["code"], locale=r.locale, ip=r.ip, device=r.device, user_agent=r.user_agent,
            replaces=r.token or None)
    except _SIGN_IN_ERRORS as exc:
        message, status = _error_text(r, exc)
        step = "code" if isinstance(exc, members_service.CodeWrong | members_service.SignInRateLimited) else "contact"
        return _login_page(request, step=step, form=form, error=message, status_code=status,
                           retry_after=_retry_after(exc))
    target = _safe_next(form["next"])
    if signed.attached_orders and target == "/account":
        target = f"/account?attached={signed.attached_orders}"
    response = _redirect(target)
    set_member_cookie(response, request, signed.token, days=ctx.settings.member_session_days)
    return response


@router.post("/account/login/password", response_class=HTMLResponse, dependencies=[CSRF_PROTECTED])
async def password_login(request: Request, ctx: ContextDep) -> Response:
    form = await _form(request, "contact", "password", "next")
    r = sign_in_request(ctx, request)
    try:
        signed = await members_service.sign_in_with_password(
            db=ctx.db, limiter=ctx.limiter, limits=r.limits, contact=form["contact"], password=form["password"],
            ip=r.ip, device=r.device, user_agent=r.user_agent, replaces=r.token or None)
    except _SIGN_IN_ERRORS as exc:
        message, status = _error_text(r, exc)
        return _login_page(request, step="password", form={**form, "password": ""}, error=message,
                           status_code=status, retry_after=_retry_after(exc))
    response = _redirect(_safe_next(form["next"]))
    set_member_cookie(response, request, signed.token, days=ctx.settings.member_session_days)
    return response


@router.post("/account/logout", dependencies=[CSRF_PROTECTED])
async def logout(request: Request, ctx: ContextDep) -> Response:
    token = request_member_token(request)[0]
    if token:
        async with ctx.db.transaction() as session:
            await end_member_session(session=session, token=token)
    response = _redirect("/")
    clear_member_cookie(response, request)
    return response


@router.post("/account/logout-everywhere", dependencies=[CSRF_PROTECTED])
async def logout_everywhere(request: Request, ctx: ContextDep, member: OptionalMemberDep) -> Response:
    if member is not None:
        async with ctx.db.transaction() as session:
            await end_all_sessions(session=session, member_id=member.member_id)
    response = _redirect(f"{_LOGIN}?out=everywhere")
    clear_member_cookie(response, request)
    return response


# ---------------------------------------------------------------- the account

async def _account_page(request: Request, ctx: ShopContext, member: MemberLogin, *, notice: str | None = None,
                        errors: dict[str, str] | None = None, form: dict[str, str] | None = None,
                        status_code: int = 200) -> HTMLResponse:
    before = request.query_params.get("before", "")
    before_id = int(before) if before.isdigit() and len(before) < 10 else None
    async with ctx.db.read_session() as session:
        record = await members_service.get_member(session=session, member_id=member.member_id)
        orders = await orders_service.member_orders(session=session, member_id=member.member_id,
                                                    limit=ORDERS_PER_PAGE + 1, before_id=before_id)
        open_sessions = await members_service.open_sessions(session=session, member_id=member.member_id)
        sections: list[dict[str, Any]] = []
        for section in account_sections():
            loaded = await section.load(session=session, member=member)
            if loaded is not None:
                sections.append({"key": section.key, "title": section.title.get(
                    _locale(request, ctx), next(iter(section.title.values()), section.key)),
                    "template": section.template, "href": section.href, "context": loaded})
    more = len(orders) > ORDERS_PER_PAGE
    return render(request, "account.html", {
        "member": record, "orders": orders[:ORDERS_PER_PAGE],
        "older_url": f"/account?before={orders[ORDERS_PER_PAGE - 1].id}" if more else None,
        "session_count": len(open_sessions), "sections": sections, "notice": notice, "errors": errors or {},
        "form": form or {}, "lang_base": "/account",
    }, status_code=status_code)


def _locale(request: Request, ctx: ShopContext) -> str:
    return pick_locale(request, ctx.settings.default_locale)


def _login_redirect(request: Request) -> RedirectResponse:
    return _redirect(f"{_LOGIN}?next={request.url.path}")


@router.get("/account", response_class=HTMLResponse)
async def account(request: Request, ctx: ContextDep, member: OptionalMemberDep) -> Response:
    if member is None:
        return _login_redirect(request)
    locale = _locale(request, ctx)
    attached = request.query_params.get("attached", "")
    notice = None
    if attached.isdigit() and 0 < int(attached) < 10_000:
        notice = translate(locale, "account.orders.attached", count=int(attached))
    elif request.query_params.get("saved") == "password":
        notice = translate(locale, "account.password.saved")
    elif request.query_params.get("saved") == "contact":
        notice = translate(locale, "account.add_contact.done")
    return await _account_page(request, ctx, member, notice=notice)


@router.get("/account/orders/{order_no}")
async def open_my_order(order_no: OrderNoPath, request: Request, ctx: ContextDep,
                        member: OptionalMemberDep) -> Response:
    """One of my orders: opens its order page (pay, reveal keys, audited as every reveal) with the order's
    access cookie, as if the buyer had just looked it up."""
    if member is None:
        return _login_redirect(request)
    async with ctx.db.read_session() as session:
        order = await orders_service.get_member_order(session=session, member_id=member.member_id,
                                                      order_no=order_no)
    response = _redirect(f"/orders/{order.order_no}")
    grant_order_access(response, request, ctx, order.order_no)
    return response


@router.post("/account/password", response_class=HTMLResponse, dependencies=[CSRF_PROTECTED])
async def set_password(request: Request, ctx: ContextDep, member: OptionalMemberDep) -> Response:
    if member is None:
        return _login_redirect(request)
    form = await _form(request, "password", "current_password")
    r = sign_in_request(ctx, request)
    try:
        await members_service.change_password(db=ctx.db, login=member, new_password=form["password"],
                                              current_password=form["current_password"] or None)
    except _SIGN_IN_ERRORS as exc:
        message, status = _error_text(r, exc)
        return await _account_page(request, ctx, member, errors={"password": message}, status_code=status)
    return _redirect("/account?saved=password")


@router.post("/account/contacts/code", response_class=HTMLResponse, dependencies=[CSRF_PROTECTED])
async def send_contact_code(request: Request, ctx: ContextDep, member: OptionalMemberDep) -> Response:
    if member is None:
        return _login_redirect(request)
    form = await _form(request, "contact")
    r = sign_in_request(ctx, request)
    try:
        kind, contact = members_service.normalize_member_contact(form["contact"])
        sent = await members_service.request_contact_code(
            db=ctx.db, limiter=ctx.limiter, limits=r.limits, secret=r.secret, login=member, contact=contact,
            locale=r.locale, ip=r.ip, device=r.device)
    except _SIGN_IN_ERRORS as exc:
        message, status = _error_text(r, exc)
        page = await _account_page(request, ctx, member, errors={"contact": message}, form=form, status_code=status)
        if _retry_after(exc):
            page.headers["Retry-After"] = str(_retry_after(exc))
        return page
    return await _account_page(request, ctx, member, form={**form, "code_id": sent.code_id},
                               notice=_code_notice(r, kind, contact))


@router.post("/account/contacts/verify", response_class=HTMLResponse, dependencies=[CSRF_PROTECTED])
async def verify_contact(request: Request, ctx: ContextDep, member: OptionalMemberDep) -> Response:
    if member is None:
        return _login_redirect(request)
    form = await _form(request, "contact", "code_id", "code")
    r = sign_in_request(ctx, request)
    if not form["code"].strip().isdigit() or len(form["code"].strip()) != 6 or not form["code_id"].startswith("mc_"):
        return await _account_page(request, ctx, member, form=form, status_code=422,
                                   errors={"code": translate(r.locale, "account.err.code_format")})
    try:
        attached = await members_service.add_contact_with_code(
            db=ctx.db, limiter=ctx.limiter, limits=r.limits, secret=r.secret, login=member, code_id=form["code_id"],
            code=form["code"], ip=r.ip, device=r.device)
    except _SIGN_IN_ERRORS as exc:
        message, status = _error_text(r, exc)
        kept = form if isinstance(exc, members_service.CodeWrong) else {"contact": form["contact"]}
        return await _account_page(request, ctx, member, errors={"code" if "code_id" in kept else "contact": message},
                                   form=kept, status_code=status)
    return _redirect(f"/account?attached={attached}" if attached else "/account?saved=contact")
