"""Merchants (商户) for platform staff: the merchants with their terms, admit one directly (its owner's login is then
added on the staff page), applications to approve (the merchant and
its owner's login are created) or reject with the reason the applicant is shown, commission (the merchant's rate
and per-category rates), balances, and withdrawals to approve, reject or record as paid (booked in the ledger).
Through the merchants' services the admin API uses, every decision audited; platform staff only."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Request
from fastapi.responses import HTMLResponse, Response

import quanyi.console.texts.merchants  # noqa: F401 - registers the texts
from quanyi.catalog import service as catalog_service
from quanyi.console import forms
from quanyi.console.auth import ConsoleUser, console_router, needs
from quanyi.console.menu import MenuItem, register
from quanyi.console.rendering import render_page
from quanyi.deps import ContextDep
from quanyi.errors import DomainError, NotFound
from quanyi.ledger import service as ledger_service
from quanyi.merchants import applications, commission, settlement
from quanyi.merchants import service as merchants_service
from quanyi.merchants.models import ApplicationStatus, WithdrawalStatus
from quanyi.merchants.schemas import (
    ApplicationApprove,
    ApplicationReject,
    MerchantCreate,
    MerchantUpdate,
    WithdrawalDecision,
    WithdrawalPayout,
)
from quanyi.staff.audit import record_action
from quanyi.staff.permissions import ADMIN

__all__ = ["router"]

router = console_router("/console/merchants")
register(MenuItem("merchants", "/console/merchants", ADMIN, group="partners", order=10, icon="store",
                  platform_only=True))

PlatformAdmin = Annotated[ConsoleUser, needs(ADMIN, platform_only=True)]
MerchantCode = Annotated[str, Path(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9-]+$")]
ApplicationNo = Annotated[str, Path(pattern=r"^MA[0-9A-Za-z]{16}$")]
WithdrawalNo = Annotated[str, Path(pattern=r"^WD[0-9A-Z]{16}$")]
Decision = Annotated[str, Path(pattern="^(approve|reject|pay)$")]
CategoryId = Annotated[int, Path(ge=1, le=2_147_483_647)]


NEW_FIELDS = ("code", "name", "commission", "hold_days", "description", "contact_name", "contact_email",
              "contact_phone")


async def _list_page(request: Request, ctx: ContextDep, user: ConsoleUser, *, typed: dict[str, str] | None = None,
                     message: forms.Message | None = None, status_code: int = 200) -> HTMLResponse:
    async with ctx.db.read_session() as session:
        merchants = await merchants_service.list_merchants(session=session)
        pending = await applications.list_applications(session=session, status=ApplicationStatus.PENDING.value)
        waiting = [w for w in await settlement.list_withdrawals(session=session)
                   if w.status in (WithdrawalStatus.REQUESTED, WithdrawalStatus.APPROVED)]
    return render_page(request, "console/merchants.html", {
        "merchants": merchants, "pending": len(pending), "waiting": len(waiting),
        "default_hold": ctx.settings.merchant_hold_days, "message": message, "typed": typed or {"commission": "0"},
    }, user=user, active="merchants", status_code=status_code)


@router.get("", response_class=HTMLResponse)
async def merchant_list(request: Request, ctx: ContextDep, user: PlatformAdmin) -> HTMLResponse:
    return await _list_page(request, ctx, user)


@router.post("", response_class=HTMLResponse)
async def create_merchant(request: Request, ctx: ContextDep, user: PlatformAdmin) -> Response:
    form = await request.form()
    try:
        hold = forms.text(form, "hold_days", max_length=4)
        data = forms.validated(MerchantCreate, {
            "code": forms.text(form, "code", max_length=32), "name": forms.text(form, "name", max_length=200),
            "commission_bps": forms.percent_bps(form, "commission"), "hold_days": hold or None,
            **{name: forms.text(form, name, max_length=2000)
               for name in ("description", "contact_name", "contact_email", "contact_phone")}})
        async with ctx.db.transaction() as session:
            merchant = await merchants_service.create_merchant(session=session, data=data)
            await record_action(session=session, actor=user.actor, action="merchant_created", object_type="merchant",
                                object_id=merchant.code, summary=(
                                    f"{merchant.name}: commission {merchant.commission_bps} bps, hold "
                                    f"{merchant.hold_days if merchant.hold_days is not None else 'default'} days"))
            code = merchant.code
    except DomainError as exc:
        typed = {name: str(form.get(name, "") or "")[:2000] for name in NEW_FIELDS}
        return await _list_page(request, ctx, user, typed=typed, message=forms.error(exc),
                                status_code=forms.status_for(exc))
    return forms.back(f"/console/merchants/{code}", "created", code=code)


# ---------------------------------------------------------------- applications (入驻申请)

async def _applications_page(request: Request, ctx: ContextDep, user: ConsoleUser, *,
                             message: forms.Message | None = None, status_code: int = 200) -> HTMLResponse:
    raw = request.query_params.get("status", ApplicationStatus.PENDING.value)
    status = raw if raw in ApplicationStatus.__members__.values() else None
    async with ctx.db.read_session() as session:
        found = await applications.list_applications(session=session, status=status)
    return render_page(request, "console/merchant_applications.html", {
        "applications": found, "status": status or "", "statuses": list(ApplicationStatus), "message": message,
    }, user=user, active="merchants", status_code=status_code)


@router.get("/applications", response_class=HTMLResponse)
async def application_list(request: Request, ctx: ContextDep, user: PlatformAdmin) -> HTMLResponse:
    return await _applications_page(request, ctx, user, message=forms.flash(
        request, "mc", ("approved", "rejected"), values=("no", "code")))


@router.post("/applications/{application_no}/approve", response_class=HTMLResponse)
async def approve_application(application_no: ApplicationNo, request: Request, ctx: ContextDep,
                              user: PlatformAdmin) -> Response:
    form = await request.form()
    try:
        hold = forms.text(form, "hold_days", max_length=4)
        data = forms.validated(ApplicationApprove, {
            "reason": forms.text(form, "reason", max_length=500),
            "commission_bps": forms.percent_bps(form, "commission"), "hold_days": hold or None})
        async with ctx.db.transaction() as session:
            application, merchant = await applications.approve_application(
                session=session, application_no=application_no, actor=user.name, reason=data.reason,
                commission_bps=data.commission_bps, hold_days=data.hold_days)
            await record_action(session=session, actor=user.actor, action="merchant_application_approved",
                                object_type="merchant_application", object_id=application.application_no,
                                summary=f"merchant {merchant.code}, commission {data.commission_bps} bps: "
                                f"{data.reason}")
            code = merchant.code
    except DomainError as exc:
        return await _applications_page(request, ctx, user, message=forms.error(exc),
                                        status_code=forms.status_for(exc))
    return forms.back("/console/merchants/applications", "approved", no=application_no, code=code)


@router.post("/applications/{application_no}/reject", response_class=HTMLResponse)
async def reject_application(application_no: ApplicationNo, request: Request, ctx: ContextDep,
                             user: PlatformAdmin) -> Response:
    form = await request.form()
    try:
        data = forms.validated(ApplicationReject, {"reason": forms.text(form, "reason", max_length=500)})
        async with ctx.db.transaction() as session:
            application = await applications.reject_application(session=session, application_no=application_no,
                                                                actor=user.name, reason=data.reason)
            await record_action(session=session, actor=user.actor, action="merchant_application_rejected",
                                object_type="merchant_application", object_id=application.application_no,
                                summary=data.reason)
    except DomainError as exc:
        return await _applications_page(request, ctx, user, message=forms.error(exc),
                                        status_code=forms.status_for(exc))
    return forms.back("/console/merchants/applications", "rejected", no=application_no)


# ---------------------------------------------------------------- withdrawals (提现)

async def _withdrawals_page(request: Request, ctx: ContextDep, user: ConsoleUser, *,
                            message: forms.Message | None = None, status_code: int = 200) -> HTMLResponse:
    raw = request.query_params.get("status", "")
    status = raw if raw in WithdrawalStatus.__members__.values() else None
    async with ctx.db.read_session() as session:
        found = await settlement.list_withdrawals(session=session, status=status)
        codes = {m.id: m.code for m in await merchants_service.list_merchants(session=session)}
    return render_page(request, "console/merchant_withdrawals.html", {
        "withdrawals": found, "codes": codes, "status": status or "", "statuses": list(WithdrawalStatus),
        "message": message,
    }, user=user, active="merchants", status_code=status_code)


@router.get("/withdrawals", response_class=HTMLResponse)
async def withdrawal_list(request: Request, ctx: ContextDep, user: PlatformAdmin) -> HTMLResponse:
    return await _withdrawals_page(request, ctx, user, message=forms.flash(
        request, "mc", ("w_approved", "w_rejected", "w_paid"), values=("no",)))


@router.post("/withdrawals/{withdrawal_no}/{decision}", response_class=HTMLResponse)
async def decide_withdrawal(withdrawal_no: WithdrawalNo, decision: Decision, request: Request, ctx: ContextDep,
                            user: PlatformAdmin) -> Response:
    form = await request.form()
    try:
        async with ctx.db.transaction() as session:
            if decision == "pay":
                payout = forms.validated(WithdrawalPayout, {
                    "payout_reference": forms.text(form, "payout_reference", max_length=128)})
                withdrawal = await settlement.pay_withdrawal(session=session, withdrawal_no=withdrawal_no,
                                                             actor=user.name,
                                                             payout_reference=payout.payout_reference)
                summary = f"paid {withdrawal.amount_cents} {withdrawal.currency}: {payout.payout_reference}"
            else:
                reason = forms.validated(WithdrawalDecision, {"reason": forms.text(form, "reason",
                                                                                   max_length=500)}).reason
                decide = settlement.approve_withdrawal if decision == "approve" else settlement.reject_withdrawal
                withdrawal = await decide(session=session, withdrawal_no=withdrawal_no, actor=user.name,
                                          reason=reason)
                summary = f"{withdrawal.amount_cents} {withdrawal.currency}: {reason}"
            await record_action(session=session, actor=user.actor, action=f"merchant_withdrawal_{decision}",
                                object_type="merchant_withdrawal", object_id=withdrawal.withdrawal_no,
                                summary=summary)
    except DomainError as exc:
        return await _withdrawals_page(request, ctx, user, message=forms.error(exc),
                                       status_code=forms.status_for(exc))
    done = {"approve": "w_approved", "reject": "w_rejected", "pay": "w_paid"}[decision]
    return forms.back("/console/merchants/withdrawals", done, no=withdrawal_no)


# ---------------------------------------------------------------- one merchant: terms, commission, balance

async def _merchant_page(request: Request, ctx: ContextDep, user: ConsoleUser, code: str, *,
                         message: forms.Message | None = None, status_code: int = 200) -> HTMLResponse:
    await ledger_service.post_all_deferred(ctx.db)  # balances as of now
    try:
        async with ctx.db.read_session() as session:
            merchant = await merchants_service.get_merchant(session=session, code=code)
            rules = await commission.list_commission_rules(session=session, merchant_id=merchant.id)
            categories = await catalog_service.list_categories(session=session, active_only=False)
            balances = await settlement.balances(session=session, merchant=merchant,
                                                 default_hold_days=ctx.settings.merchant_hold_days)
            withdrawals = await settlement.list_withdrawals(session=session, merchant_id=merchant.id, limit=20)
    except NotFound:
        return forms.not_found(request, user, active="merchants")
    return render_page(request, "console/merchant.html", {
        "m": merchant, "rules": rules, "categories": {c.id: c for c in categories},
        "balances": list(balances.values()), "withdrawals": withdrawals, "message": message,
        "default_hold": ctx.settings.merchant_hold_days,
    }, user=user, active="merchants", status_code=status_code)


@router.get("/{merchant_code}", response_class=HTMLResponse)
async def merchant_detail(merchant_code: MerchantCode, request: Request, ctx: ContextDep,
                          user: PlatformAdmin) -> HTMLResponse:
    message = forms.flash(request, "mc", ("created", "terms_saved", "rule_saved", "rule_removed"), values=("code",))
    return await _merchant_page(request, ctx, user, merchant_code, message=message)


@router.post("/{merchant_code}/terms", response_class=HTMLResponse)
async def set_terms(merchant_code: MerchantCode, request: Request, ctx: ContextDep, user: PlatformAdmin) -> Response:
    form = await request.form()
    try:
        hold = forms.text(form, "hold_days", max_length=4)
        data = forms.validated(MerchantUpdate, {"commission_bps": forms.percent_bps(form, "commission"),
                                                **({"hold_days": hold} if hold else {})})
        async with ctx.db.transaction() as session:
            merchant = await merchants_service.update_merchant(session=session, code=merchant_code, data=data)
            await record_action(session=session, actor=user.actor, action="merchant_terms_set", object_type="merchant",
                                object_id=merchant.code, summary=f"commission {merchant.commission_bps} bps, "
                                f"hold {merchant.hold_days if merchant.hold_days is not None else 'default'} days")
            code = merchant.code
    except NotFound:
        return forms.not_found(request, user, active="merchants")
    except DomainError as exc:
        return await _merchant_page(request, ctx, user, merchant_code, message=forms.error(exc),
                                    status_code=forms.status_for(exc))
    return forms.back(f"/console/merchants/{code}", "terms_saved")


@router.post("/{merchant_code}/commission-rules", response_class=HTMLResponse)
async def set_commission_rule(merchant_code: MerchantCode, request: Request, ctx: ContextDep,
                              user: PlatformAdmin) -> Response:
    form = await request.form()
    try:
        category_id = forms.integer(form, "category_id", minimum=1, maximum=2_147_483_647)
        bps = forms.percent_bps(form, "commission")
        async with ctx.db.transaction() as session:
            merchant = await merchants_service.get_merchant(session=session, code=merchant_code)
            await commission.set_commission_rule(session=session, merchant_id=merchant.id, category_id=category_id,
                                                 commission_bps=bps, actor=user.name)
            await record_action(session=session, actor=user.actor, action="merchant_commission_rule_set",
                                object_type="merchant", object_id=merchant.code,
                                summary=f"category {category_id}: {bps} bps")
            code = merchant.code
    except DomainError as exc:
        return await _merchant_page(request, ctx, user, merchant_code, message=forms.error(exc),
                                    status_code=forms.status_for(exc))
    return forms.back(f"/console/merchants/{code}", "rule_saved")


@router.post("/{merchant_code}/commission-rules/{category_id}/remove", response_class=HTMLResponse)
async def remove_commission_rule(merchant_code: MerchantCode, category_id: CategoryId, request: Request,
                                 ctx: ContextDep, user: PlatformAdmin) -> Response:
    try:
        async with ctx.db.transaction() as session:
            merchant = await merchants_service.get_merchant(session=session, code=merchant_code)
            await commission.delete_commission_rule(session=session, merchant_id=merchant.id, category_id=category_id)
            await record_action(session=session, actor=user.actor, action="merchant_commission_rule_removed",
                                object_type="merchant", object_id=merchant.code, summary=f"category {category_id}")
            code = merchant.code
    except NotFound:
        return forms.not_found(request, user, active="merchants")
    return forms.back(f"/console/merchants/{code}", "rule_removed")
