"""Distribution API (分销): the programme, promoters and their review, commission balances, statements and
withdrawals (platform staff: promoters are the platform's), and the public promotion link with its QR code."""

from __future__ import annotations

import datetime as dt
import io
from typing import Annotated, Any

import segno
from fastapi import APIRouter, Header, Path, Query, Request, Response
from fastapi.responses import RedirectResponse
from pydantic import BaseModel, ConfigDict, StringConstraints
from sqlalchemy.ext.asyncio import AsyncSession

from quanyi.context import ShopContext
from quanyi.db import utcnow
from quanyi.deps import ContextDep, PlatformAdminDep, ReadSessionDep, SessionDep
from quanyi.ledger import service as ledger_service
from quanyi.members.dependencies import CurrentMemberDep, OptionalMemberDep
from quanyi.promoters import attribution as promoters_attribution
from quanyi.promoters import service as promoters_service
from quanyi.promoters import settlement
from quanyi.promoters.models import Promoter, PromoterStatus, PromoterWithdrawal, PromoterWithdrawalStatus
from quanyi.promoters.referral import REFERRAL_COOKIE, code_from_cookie, referral_cookie
from quanyi.promoters.schemas import (
    CommissionBalanceRead,
    ProgramRead,
    ProgramWrite,
    PromoterCreate,
    PromoterDecision,
    PromoterDetail,
    PromoterRead,
    StatementLineRead,
    StatementRead,
    WithdrawalCreate,
    WithdrawalDecision,
    WithdrawalPayout,
    WithdrawalRead,
)
from quanyi.urls import shop_base_url

__all__ = ["admin_router", "member_router", "link_router", "promoter_read", "withdrawal_read"]

admin_router = APIRouter(prefix="/api/admin", tags=["admin: promoters"])
member_router = APIRouter(prefix="/api/members/me", tags=["members"])
link_router = APIRouter(include_in_schema=False)

CodePath = Annotated[str, Path(min_length=1, max_length=32, pattern=promoters_service.CODE_PATTERN)]
WithdrawalNoPath = Annotated[str, Path(pattern=r"^CW[0-9A-Z]{16}$")]
IdempotencyKey = Annotated[str | None, Header(alias="Idempotency-Key", min_length=8, max_length=64,
                                              pattern=r"^[A-Za-z0-9_.:-]+$")]


async def _fields(session: AsyncSession, ctx: ShopContext, promoter: Promoter) -> dict[str, Any]:
    parent = await session.get(Promoter, promoter.parent_id) if promoter.parent_id else None
    return {**{f: getattr(promoter, f) for f in (
        "code", "name", "status", "member_id", "applied_at", "reviewed_by", "reviewed_at", "review_reason")},
        "link": promoters_service.promotion_link(shop_base_url(ctx.settings), promoter.code),
        "parent_code": parent.code if parent else None}


async def promoter_read(session: AsyncSession, ctx: ShopContext, promoter: Promoter) -> PromoterRead:
    return PromoterRead(**await _fields(session, ctx, promoter))


def withdrawal_read(withdrawal: PromoterWithdrawal, code: str) -> WithdrawalRead:
    read = WithdrawalRead.model_validate(withdrawal)
    read.promoter_code = code
    return read


# ---------------------------------------------------------------- the programme

@admin_router.get("/promoter-program", response_model=ProgramRead, summary="The distribution programme's rules")
async def get_program(session: ReadSessionDep, _: PlatformAdminDep) -> ProgramRead:
    return ProgramRead.model_validate(await promoters_service.get_program(session))


@admin_router.put("/promoter-program", response_model=ProgramRead,
                  summary="Change the programme: auto-approve, levels, attribution window, hold, margin rule")
async def put_program(data: ProgramWrite, session: SessionDep, admin: PlatformAdminDep) -> ProgramRead:
    program = await promoters_service.update_program(
        session=session, data=promoters_service.ProgramUpdate(**data.model_dump()), actor=admin)
    return ProgramRead.model_validate(program)


# ---------------------------------------------------------------- promoters

@admin_router.get("/promoters", response_model=list[PromoterRead], summary="Promoters (推广员), newest first")
async def list_promoters(session: ReadSessionDep, ctx: ContextDep, _: PlatformAdminDep,
                         status: Annotated[PromoterStatus | None, Query()] = None) -> list[PromoterRead]:
    found = await promoters_service.list_promoters(session=session, status=status.value if status else None)
    return [await promoter_read(session, ctx, p) for p in found]


@admin_router.post("/promoters", response_model=PromoterRead, status_code=201,
                   summary="Add a promoter (a partner), approved at once")
async def add_promoter(data: PromoterCreate, session: SessionDep, ctx: ContextDep,
                       admin: PlatformAdminDep) -> PromoterRead:
    promoter = await promoters_service.add_promoter(session=session, name=data.name, contact=data.contact,
                                                    code=data.code, parent_code=data.parent_code, actor=admin)
    return await promoter_read(session, ctx, promoter)


@admin_router.get("/promoters/{code}", response_model=PromoterDetail,
                  summary="A promoter with its commission: balance, held for refunds, reserved, available")
async def get_promoter(code: CodePath, session: ReadSessionDep, ctx: ContextDep,
                       _: PlatformAdminDep) -> PromoterDetail:
    await ledger_service.post_all_deferred(ctx.db)  # the books as of now
    promoter = await promoters_service.get_promoter(session=session, code=code)
    found = await settlement.balances(session=session, promoter=promoter)
    orders = await promoters_attribution.attributed_orders(session=session, promoter=promoter)
    return PromoterDetail(**await _fields(session, ctx, promoter), orders=orders, balances=[
        CommissionBalanceRead.model_validate(b, from_attributes=True) for b in found.values()])


async def _decide(action: Any, code: str, data: PromoterDecision, session: AsyncSession, ctx: ShopContext,
                  admin: str) -> PromoterRead:
    promoter = await action(session=session, code=code, actor=admin, reason=data.reason)
    return await promoter_read(session, ctx, promoter)


@admin_router.post("/promoters/{code}/approve", response_model=PromoterRead, summary="Approve an application")
async def approve(code: CodePath, data: PromoterDecision, session: SessionDep, ctx: ContextDep,
                  admin: PlatformAdminDep) -> PromoterRead:
    return await _decide(promoters_service.approve, code, data, session, ctx, admin)


@admin_router.post("/promoters/{code}/reject", response_model=PromoterRead,
                   summary="Reject an application with the reason the applicant sees")
async def reject(code: CodePath, data: PromoterDecision, session: SessionDep, ctx: ContextDep,
                 admin: PlatformAdminDep) -> PromoterRead:
    return await _decide(promoters_service.reject, code, data, session, ctx, admin)


@admin_router.post("/promoters/{code}/suspend", response_model=PromoterRead,
                   summary="Stop a promoter: no new attributions, no commission on orders delivered from now")
async def suspend(code: CodePath, data: PromoterDecision, session: SessionDep, ctx: ContextDep,
                  admin: PlatformAdminDep) -> PromoterRead:
    return await _decide(promoters_service.suspend, code, data, session, ctx, admin)


@admin_router.post("/promoters/{code}/reinstate", response_model=PromoterRead, summary="Let a suspended one earn")
async def reinstate(code: CodePath, data: PromoterDecision, session: SessionDep, ctx: ContextDep,
                    admin: PlatformAdminDep) -> PromoterRead:
    return await _decide(promoters_service.reinstate, code, data, session, ctx, admin)


@admin_router.get("/promoters/{code}/statement", response_model=StatementRead,
                  summary="A promoter's commission statement (佣金明细): opening balance and every movement")
async def statement(code: CodePath, session: ReadSessionDep, ctx: ContextDep, _: PlatformAdminDep,
                    start: Annotated[dt.date, Query(description="First day (UTC), inclusive")],
                    end: Annotated[dt.date, Query(description="Last day (UTC), inclusive")],
                    currency: Annotated[str, Query(pattern=r"^[A-Z]{3}$")] = "CNY") -> StatementRead:
    return await statement_read(session, ctx, code, start, end, currency)


async def statement_read(session: AsyncSession, ctx: ShopContext, code: str, start: dt.date, end: dt.date,
                         currency: str) -> StatementRead:
    if end < start or (end - start).days > 366:
        raise settlement.InvalidWithdrawal("the statement period is start..end, at most a year", field="end")
    await ledger_service.post_all_deferred(ctx.db)
    promoter = await promoters_service.get_promoter(session=session, code=code)
    since = dt.datetime.combine(start, dt.time(), dt.UTC)
    until = dt.datetime.combine(end + dt.timedelta(days=1), dt.time(), dt.UTC)
    opening, lines = await settlement.statement(session=session, promoter=promoter, start=since, end=until,
                                                currency=currency)
    return StatementRead(promoter_code=promoter.code, currency=currency, start=since, end=until,
                         opening_cents=opening, closing_cents=lines[-1].balance_after_cents if lines else opening,
                         lines=[StatementLineRead.model_validate(line) for line in lines])


# ---------------------------------------------------------------- withdrawals (佣金提现)

@admin_router.post("/promoters/{code}/withdrawals", response_model=WithdrawalRead, status_code=201,
                   summary="Record a promoter's request to be paid (on its behalf)",
                   responses={200: {"description": "Repeated Idempotency-Key: the request it made"},
                              409: {"description": "More than is available"}})
async def request_withdrawal(code: CodePath, data: WithdrawalCreate, ctx: ContextDep, admin: PlatformAdminDep,
                             response: Response, idempotency_key: IdempotencyKey = None) -> WithdrawalRead:
    await ledger_service.post_all_deferred(ctx.db)
    async with ctx.db.transaction() as session:
        withdrawal, created = await settlement.request_withdrawal(
            session=session, promoter_code=code, amount_cents=data.amount_cents, currency=data.currency,
            payout_account=data.payout_account, actor=admin,
            request_key=f"admin:{idempotency_key}" if idempotency_key else None)
        promoter = await session.get(Promoter, withdrawal.promoter_id)
        read = withdrawal_read(withdrawal, promoter.code if promoter else "")
    if not created:
        response.status_code = 200
    return read


@admin_router.get("/promoter-withdrawals", response_model=list[WithdrawalRead],
                  summary="Commission withdrawals, newest first")
async def list_withdrawals(session: ReadSessionDep, _: PlatformAdminDep,
                           status: Annotated[PromoterWithdrawalStatus | None, Query()] = None
                           ) -> list[WithdrawalRead]:
    found = await settlement.list_withdrawals(session=session, status=status.value if status else None)
    return [withdrawal_read(w, code) for w, code in found]


async def _withdrawal(session: AsyncSession, withdrawal: PromoterWithdrawal) -> WithdrawalRead:
    promoter = await session.get(Promoter, withdrawal.promoter_id)
    return withdrawal_read(withdrawal, promoter.code if promoter else "")


@admin_router.post("/promoter-withdrawals/{withdrawal_no}/approve", response_model=WithdrawalRead,
                   summary="Approve a commission withdrawal")
async def approve_withdrawal(withdrawal_no: WithdrawalNoPath, data: WithdrawalDecision, session: SessionDep,
                             admin: PlatformAdminDep) -> WithdrawalRead:
    return await _withdrawal(session, await settlement.approve_withdrawal(
        session=session, withdrawal_no=withdrawal_no, actor=admin, reason=data.reason))


@admin_router.post("/promoter-withdrawals/{withdrawal_no}/reject", response_model=WithdrawalRead,
                   summary="Reject a commission withdrawal with a reason")
async def reject_withdrawal(withdrawal_no: WithdrawalNoPath, data: WithdrawalDecision, session: SessionDep,
                            admin: PlatformAdminDep) -> WithdrawalRead:
    return await _withdrawal(session, await settlement.reject_withdrawal(
        session=session, withdrawal_no=withdrawal_no, actor=admin, reason=data.reason))


@admin_router.post("/promoter-withdrawals/{withdrawal_no}/pay", response_model=WithdrawalRead,
                   summary="Record the payout of an approved withdrawal (posts it to the ledger)")
async def pay_withdrawal(withdrawal_no: WithdrawalNoPath, data: WithdrawalPayout, session: SessionDep,
                         admin: PlatformAdminDep) -> WithdrawalRead:
    return await _withdrawal(session, await settlement.pay_withdrawal(
        session=session, withdrawal_no=withdrawal_no, actor=admin, payout_reference=data.payout_reference))


# ---------------------------------------------------------------- the promotion link (推广链接) and its QR code

def _safe_next(value: str | None) -> str:
    """Only a path on this shop (never //host or a scheme): the link cannot be an open redirect."""
    if value and value.startswith("/") and not value.startswith(("//", "/\\")) and len(value) <= 300 \
            and all(32 < ord(c) < 127 for c in value):
        return value
    return "/"


@link_router.get("/r/{code}")
async def follow_link(code: Annotated[str, Path(max_length=32)], request: Request, ctx: ContextDep,
                      member: OptionalMemberDep, next: Annotated[str | None, Query(max_length=300)] = None) -> Response:  # noqa: A002
    """A promoter's link: remember it in the browser for the attribution window, then go to the shop."""
    response = RedirectResponse(_safe_next(next), status_code=303)
    now = utcnow()
    async with ctx.db.read_session() as session:
        program = await promoters_service.get_program(session)
        try:
            promoter = await promoters_service.get_promoter(session=session, code=code)
        except promoters_service.PromoterNotFound:
            return response  # an unknown or mistyped link still opens the shop
    if program.enabled and promoter.status == PromoterStatus.APPROVED:
        if member is not None:  # a signed-in member is bound to the promoter (锁粉): first promoter wins
            async with ctx.db.transaction() as session:
                await promoters_attribution.bind_member(session=session, member_id=member.member_id, code=promoter.code,
                                                    now=now)
        response.set_cookie(REFERRAL_COOKIE, referral_cookie(ctx.settings.app_secret.get_secret_value(),
                                                             promoter.code, now),
                            max_age=program.attribution_days * 86400, httponly=True, samesite="lax",
                            secure=request.url.scheme == "https")
    return response


@link_router.get("/r/{code}/qr.svg")
async def link_qr(code: Annotated[str, Path(max_length=32)], ctx: ContextDep) -> Response:
    """The QR code of an approved promoter's link, drawn here (no third-party service sees the link)."""
    async with ctx.db.read_session() as session:
        promoter = await promoters_service.get_promoter(session=session, code=code)
    if promoter.status != PromoterStatus.APPROVED:
        raise promoters_service.PromoterNotFound(f"no promoter {code!r}")
    link = promoters_service.promotion_link(shop_base_url(ctx.settings), promoter.code)
    svg = io.BytesIO()
    # A standalone image (with its namespace), white behind: readable on a dark page or printed.
    segno.make(link, error="m").save(svg, kind="svg", scale=6, border=2, xmldecl=False, light="#fff")
    return Response(content=svg.getvalue(), media_type="image/svg+xml",
                    headers={"Cache-Control": "public, max-age=3600"})


# ---------------------------------------------------------------- a member's own promoter centre (API)

class MemberApply(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
    note: Annotated[str, StringConstraints(strip_whitespace=True, max_length=500)] = ""


class MyPromoterRead(PromoterRead):
    balances: list[CommissionBalanceRead]
    orders: int
    withdrawals: list[WithdrawalRead]


async def _mine(session: AsyncSession, ctx: ShopContext, member_id: int) -> MyPromoterRead:
    promoter = await promoters_service.promoter_for_member(session=session, member_id=member_id)
    if promoter is None:
        raise promoters_service.PromoterNotFound("you are not a promoter: apply first")
    found = await settlement.balances(session=session, promoter=promoter)
    withdrawals = await settlement.list_withdrawals(session=session, promoter_id=promoter.id, limit=50)
    return MyPromoterRead(**await _fields(session, ctx, promoter),
                          orders=await promoters_attribution.attributed_orders(session=session, promoter=promoter),
                          balances=[CommissionBalanceRead.model_validate(b, from_attributes=True)
                                    for b in found.values()],
                          withdrawals=[withdrawal_read(w, code) for w, code in withdrawals])


@member_router.get("/promoter", response_model=MyPromoterRead, summary="My promoter status, link and commission")
async def my_promoter(member: CurrentMemberDep, ctx: ContextDep) -> MyPromoterRead:
    await ledger_service.post_all_deferred(ctx.db)
    async with ctx.db.read_session() as session:
        return await _mine(session, ctx, member.member_id)


@member_router.post("/promoter", response_model=MyPromoterRead, status_code=201,
                    summary="Apply to become a promoter (approved at once when the programme auto-approves)")
async def apply_promoter(data: MemberApply, member: CurrentMemberDep, request: Request, ctx: ContextDep,
                         session: SessionDep) -> MyPromoterRead:
    now = utcnow()
    program = await promoters_service.get_program(session)
    referrer = code_from_cookie(ctx.settings.app_secret.get_secret_value(), request.cookies.get(REFERRAL_COOKIE),
                                now, program.attribution_days)
    bound = await promoters_attribution.active_binding(session=session, member_id=member.member_id, now=now)
    await promoters_service.apply(session=session, member_id=member.member_id, name=data.name,
                                  contact=member.email or member.phone or "", note=data.note,
                                  referrer_code=bound.code if bound is not None else referrer, now=now)
    return await _mine(session, ctx, member.member_id)


@member_router.post("/promoter/withdrawals", response_model=WithdrawalRead, status_code=201,
                    summary="Ask to be paid commission (reserved until the operator decides)",
                    responses={409: {"description": "More than is available"}})
async def my_withdrawal(data: WithdrawalCreate, member: CurrentMemberDep, ctx: ContextDep, response: Response,
                        idempotency_key: IdempotencyKey = None) -> WithdrawalRead:
    await ledger_service.post_all_deferred(ctx.db)
    async with ctx.db.transaction() as session:
        promoter = await promoters_service.promoter_for_member(session=session, member_id=member.member_id)
        if promoter is None:
            raise promoters_service.PromoterNotFound("you are not a promoter: apply first")
        withdrawal, created = await settlement.request_withdrawal(
            session=session, promoter_code=promoter.code, amount_cents=data.amount_cents, currency=data.currency,
            payout_account=data.payout_account, actor=f"member:{member.member_id}",
            request_key=f"member:{member.member_id}:{idempotency_key}" if idempotency_key else None)
        read = withdrawal_read(withdrawal, promoter.code)
    if not created:
        response.status_code = 200
    return read
