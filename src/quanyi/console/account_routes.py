"""The staff member's own account: who they are, their roles, and the second factor (enrol with a QR code
drawn here by segno, confirm with a code, recovery codes shown once, turn off with a current code)."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from quanyi.console.auth import UserDep, console_router
from quanyi.console.rendering import render_page
from quanyi.deps import ContextDep
from quanyi.logins import LoginFailed, LoginLimits, LoginRateLimited
from quanyi.staff import second_factor
from quanyi.staff import service as staff_service
from quanyi.staff.audit import record_action
from quanyi.web.area_rendering import enrolment_qr
from quanyi.web.login_flow import form_text, limited

__all__ = ["router"]

router = console_router("/console/account")


async def _account_page(request: Request, ctx: ContextDep, user: UserDep, *, enrolment: second_factor.Enrolment | None
                        = None, recovery_codes: list[str] | None = None, error: str | None = None,
                        error_values: dict[str, object] | None = None, notice: str | None = None,
                        status_code: int = 200, headers: dict[str, str] | None = None) -> HTMLResponse:
    assert user.principal.staff_id is not None
    async with ctx.db.read_session() as session:
        staff = await staff_service.get_staff_by_id(session=session, staff_id=user.principal.staff_id)
        left = await second_factor.remaining_recovery_codes(session=session, staff_id=staff.id)
    return render_page(request, "console/account.html", {
        "staff": staff, "recovery_left": left, "enrolment": enrolment, "qr_svg": enrolment_qr(enrolment),
        "recovery_codes": recovery_codes, "error": error, "error_values": error_values or {}, "notice": notice,
        "direct_permissions": sorted(staff.permissions.split()), "settings": ctx.settings,
    }, user=user, status_code=status_code, headers=headers)


@router.get("", response_class=HTMLResponse)
async def account(request: Request, ctx: ContextDep, user: UserDep) -> HTMLResponse:
    notice = "account.disabled" if request.query_params.get("m") == "disabled" else None
    return await _account_page(request, ctx, user, notice=notice)


@router.post("/second-factor/start", response_class=HTMLResponse)
async def start(request: Request, ctx: ContextDep, user: UserDep) -> HTMLResponse:
    assert user.principal.staff_id is not None
    if user.has_second_factor:  # a new secret replaces the old one only after turning it off with a code
        return await _account_page(request, ctx, user, error="account.second_factor_on", status_code=409)
    enrolment = second_factor.start_enrolment(cipher=ctx.cipher, staff_id=user.principal.staff_id,
                                              account=user.name, issuer=ctx.settings.shop_name)
    return await _account_page(request, ctx, user, enrolment=enrolment)


@router.post("/second-factor/confirm", response_class=HTMLResponse)
async def confirm(request: Request, ctx: ContextDep, user: UserDep) -> HTMLResponse:
    assert user.principal.staff_id is not None
    form = await request.form()
    sealed, code = form_text(form.get("enrolment"), 2000), form_text(form.get("code"), 32)
    try:
        async with ctx.db.transaction() as session:
            codes = await second_factor.confirm_enrolment(session=session, cipher=ctx.cipher,
                                                          staff_id=user.principal.staff_id, sealed=sealed, code=code)
            await record_action(session=session, actor=user.actor, action="second_factor_enabled",
                                object_type="staff", object_id=user.name)
    except second_factor.SecondFactorAlreadyOn:  # not "expired": say what to do instead
        return await _account_page(request, ctx, user, error="account.second_factor_already_on", status_code=422)
    except second_factor.EnrolmentExpired:
        return await _account_page(request, ctx, user, error="account.enrolment_expired", status_code=422)
    except second_factor.EnrolmentInvalid:
        # Same secret again, so the QR code the phone already scanned stays valid.
        enrolment = second_factor.reopen_enrolment(cipher=ctx.cipher, staff_id=user.principal.staff_id,
                                                   sealed=sealed, account=user.name, issuer=ctx.settings.shop_name)
        return await _account_page(request, ctx, user, enrolment=enrolment, error="account.code_wrong",
                                   status_code=422)
    return await _account_page(request, ctx, user, recovery_codes=codes)


async def _current_code_refused(request: Request, ctx: ContextDep, user: UserDep) -> HTMLResponse | None:
    """Check the form's current code (app or recovery, used up) under the login limits, as at login: a wrong
    one counts as a failed login, so a session cannot guess its way to new recovery codes. The refusal, or None."""
    assert user.principal.staff_id is not None
    code = form_text((await request.form()).get("code"), 32)
    try:
        await staff_service.check_second_factor(db=ctx.db, limiter=ctx.limiter,
                                                limits=LoginLimits.from_settings(ctx.settings), cipher=ctx.cipher,
                                                staff_id=user.principal.staff_id, code=code, ip=user.ip)
    except LoginRateLimited as exc:
        values, headers = limited(ctx.settings, exc)
        return await _account_page(request, ctx, user, error="login.limited", error_values=values, status_code=429,
                                   headers=headers)
    except LoginFailed:
        return await _account_page(request, ctx, user, error="account.code_wrong", status_code=422)
    return None


@router.post("/second-factor/recovery-codes", response_class=HTMLResponse)
async def new_recovery_codes(request: Request, ctx: ContextDep, user: UserDep) -> HTMLResponse:
    assert user.principal.staff_id is not None
    if (refused := await _current_code_refused(request, ctx, user)) is not None:
        return refused
    async with ctx.db.transaction() as session:
        codes = await second_factor.new_recovery_codes(session=session, staff_id=user.principal.staff_id)
        await record_action(session=session, actor=user.actor, action="recovery_codes_renewed",
                            object_type="staff", object_id=user.name)
    return await _account_page(request, ctx, user, recovery_codes=codes)


@router.post("/second-factor/disable")
async def disable(request: Request, ctx: ContextDep, user: UserDep) -> Response:
    assert user.principal.staff_id is not None
    if (refused := await _current_code_refused(request, ctx, user)) is not None:
        return refused
    async with ctx.db.transaction() as session:
        await second_factor.disable(session=session, staff_id=user.principal.staff_id)
        await record_action(session=session, actor=user.actor, action="second_factor_disabled",
                            object_type="staff", object_id=user.name)
    return RedirectResponse("/console/account?m=disabled", status_code=303)
