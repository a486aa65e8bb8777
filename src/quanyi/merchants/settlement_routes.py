"""Merchant money API: commission rules, balances, withdrawals and their review/payout, statements.

A merchant's staff see and request for their own merchant (ScopeDep); commission rules, withdrawal decisions
and payouts are the platform's (PlatformAdminDep).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Path, Query, Response

from quanyi.deps import AdminDep, ContextDep, PlatformAdminDep, ReadSessionDep, ScopeDep, SessionDep, require_permission
from quanyi.ledger import service as ledger_service
from quanyi.merchants import commission, settlement, statements
from quanyi.merchants import service as merchants_service
from quanyi.merchants.models import MerchantStatement, WithdrawalStatus
from quanyi.merchants.schemas import (
    BalanceRead,
    CommissionRuleRead,
    CommissionRuleWrite,
    StatementIssue,
    StatementLineRead,
    StatementRead,
    WithdrawalCreate,
    WithdrawalDecision,
    WithdrawalPayout,
    WithdrawalRead,
)
from quanyi.shoptime import zone_of

__all__ = ["admin_router"]

admin_router = APIRouter(prefix="/api/admin", tags=["admin: merchants"])

MerchantCodePath = Annotated[str, Path(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9-]+$")]
WithdrawalNoPath = Annotated[str, Path(pattern=r"^WD[0-9A-Z]{16}$")]
StatementNoPath = Annotated[str, Path(pattern=r"^ST[0-9A-Z]{14}$")]
CategoryPath = Annotated[int, Path(ge=1, le=2_147_483_647)]
# A merchant's money: its finance staff (merchant_finance role) and owners; platform staff with the permission.
FinanceDep = Annotated[str, require_permission("merchant.finance")]
IdempotencyKey = Annotated[str | None, Header(alias="Idempotency-Key", min_length=8, max_length=64,
                                              pattern=r"^[A-Za-z0-9_.:-]+$")]


# ---------------------------------------------------------------- commission (佣金)

@admin_router.get("/merchants/{code}/commission-rules", response_model=list[CommissionRuleRead],
                  summary="A merchant's commission per category (its own rate applies to other categories)")
async def commission_rules(code: MerchantCodePath, session: ReadSessionDep, _: AdminDep,
                           scope: ScopeDep) -> list[CommissionRuleRead]:
    merchant = await merchants_service.get_merchant(session=session, code=code, scope=scope)
    return [CommissionRuleRead.model_validate(r)
            for r in await commission.list_commission_rules(session=session, merchant_id=merchant.id)]


@admin_router.put("/merchants/{code}/commission-rules", response_model=CommissionRuleRead,
                  summary="Set a merchant's commission for one category (platform staff)")
async def set_commission_rule(code: MerchantCodePath, data: CommissionRuleWrite, session: SessionDep,
                              admin: PlatformAdminDep) -> CommissionRuleRead:
    merchant = await merchants_service.get_merchant(session=session, code=code)
    rule = await commission.set_commission_rule(session=session, merchant_id=merchant.id,
                                                category_id=data.category_id, commission_bps=data.commission_bps,
                                                actor=admin)
    return CommissionRuleRead.model_validate(rule)


@admin_router.delete("/merchants/{code}/commission-rules/{category_id}", status_code=204,
                     summary="Remove a category rule: the merchant's own rate applies again (platform staff)")
async def delete_commission_rule(code: MerchantCodePath, category_id: CategoryPath, session: SessionDep,
                                 _: PlatformAdminDep) -> Response:
    merchant = await merchants_service.get_merchant(session=session, code=code)
    await commission.delete_commission_rule(session=session, merchant_id=merchant.id, category_id=category_id)
    return Response(status_code=204)


# ---------------------------------------------------------------- balance and withdrawals (提现)

@admin_router.get("/merchants/{code}/balance", response_model=list[BalanceRead],
                  summary="What the platform owes the merchant, held for refunds, reserved and available")
async def balance(code: MerchantCodePath, session: ReadSessionDep, ctx: ContextDep, _: FinanceDep,
                  scope: ScopeDep) -> list[BalanceRead]:
    await ledger_service.post_all_deferred(ctx.db)  # the books as of now: payments' deferred postings first
    merchant = await merchants_service.get_merchant(session=session, code=code, scope=scope)
    found = await settlement.balances(session=session, merchant=merchant,
                                      default_hold_days=ctx.settings.merchant_hold_days)
    return [BalanceRead.model_validate(b, from_attributes=True) for b in found.values()]


@admin_router.post("/merchants/{code}/withdrawals", response_model=WithdrawalRead, status_code=201,
                   summary="Ask to be paid out of the available balance",
                   responses={200: {"description": "Repeated Idempotency-Key: the request it made"},
                              409: {"description": "More than is available"}})
async def request_withdrawal(code: MerchantCodePath, data: WithdrawalCreate, ctx: ContextDep,
                             admin: FinanceDep, scope: ScopeDep, response: Response,
                             idempotency_key: IdempotencyKey = None) -> WithdrawalRead:
    await ledger_service.post_all_deferred(ctx.db)  # the balance includes every payment posted so far
    async with ctx.db.transaction() as session:
        # The merchant row lock makes this merchant's requests take turns (no double spending of the balance).
        merchant = await merchants_service.get_merchant(session=session, code=code, scope=scope, lock=True)
        withdrawal, created = await settlement.request_withdrawal(
            session=session, merchant=merchant, amount_cents=data.amount_cents, currency=data.currency,
            note=data.note, actor=admin, default_hold_days=ctx.settings.merchant_hold_days,
            request_key=f"{merchant.id}:{idempotency_key}" if idempotency_key else None)
        read = WithdrawalRead.model_validate(withdrawal)
    if not created:
        response.status_code = 200
    return read


@admin_router.get("/merchant-withdrawals", response_model=list[WithdrawalRead],
                  summary="Withdrawals, newest first (a merchant's staff: their own)")
async def list_withdrawals(session: ReadSessionDep, _: FinanceDep, scope: ScopeDep,
                           status: Annotated[WithdrawalStatus | None, Query()] = None) -> list[WithdrawalRead]:
    found = await settlement.list_withdrawals(session=session, scope=scope, status=status.value if status else None)
    return [WithdrawalRead.model_validate(w) for w in found]


@admin_router.get("/merchant-withdrawals/{withdrawal_no}", response_model=WithdrawalRead, summary="One withdrawal")
async def get_withdrawal(withdrawal_no: WithdrawalNoPath, session: ReadSessionDep, _: FinanceDep,
                         scope: ScopeDep) -> WithdrawalRead:
    return WithdrawalRead.model_validate(await settlement.get_withdrawal(session=session, withdrawal_no=withdrawal_no,
                                                                         scope=scope))


@admin_router.post("/merchant-withdrawals/{withdrawal_no}/approve", response_model=WithdrawalRead,
                   summary="Approve a withdrawal (platform staff; audited)")
async def approve_withdrawal(withdrawal_no: WithdrawalNoPath, data: WithdrawalDecision, session: SessionDep,
                             admin: PlatformAdminDep) -> WithdrawalRead:
    return WithdrawalRead.model_validate(await settlement.approve_withdrawal(
        session=session, withdrawal_no=withdrawal_no, actor=admin, reason=data.reason))


@admin_router.post("/merchant-withdrawals/{withdrawal_no}/reject", response_model=WithdrawalRead,
                   summary="Reject a withdrawal with a reason (platform staff; audited)")
async def reject_withdrawal(withdrawal_no: WithdrawalNoPath, data: WithdrawalDecision, session: SessionDep,
                            admin: PlatformAdminDep) -> WithdrawalRead:
    return WithdrawalRead.model_validate(await settlement.reject_withdrawal(
        session=session, withdrawal_no=withdrawal_no, actor=admin, reason=data.reason))


@admin_router.post("/merchant-withdrawals/{withdrawal_no}/pay", response_model=WithdrawalRead,
                   summary="Record the payout of an approved withdrawal (platform staff; booked in the ledger)")
async def pay_withdrawal(withdrawal_no: WithdrawalNoPath, data: WithdrawalPayout, session: SessionDep,
                         admin: PlatformAdminDep) -> WithdrawalRead:
    return WithdrawalRead.model_validate(await settlement.pay_withdrawal(
        session=session, withdrawal_no=withdrawal_no, actor=admin, payout_reference=data.payout_reference))


# ---------------------------------------------------------------- statements (对账单)

async def _read(session: ReadSessionDep, statement: MerchantStatement, *, with_lines: bool) -> StatementRead:
    read = StatementRead.model_validate(statement)
    if with_lines:
        merchant = await merchants_service.get_merchant_by_id(session=session, merchant_id=statement.merchant_id)
        lines = await statements.statement_lines(session=session, statement=statement, merchant_code=merchant.code)
        read.lines = [StatementLineRead(at=m.at, kind=m.kind, reference=m.reference, order_no=m.order_no,
                                        gross_cents=m.gross_cents, amount_cents=m.amount_cents) for m in lines]
    return read


@admin_router.post("/merchants/{code}/statements", response_model=list[StatementRead], status_code=201,
                   summary="Issue the merchant's statement(s) of a closed period (one per currency; idempotent)")
async def issue_statements(code: MerchantCodePath, data: StatementIssue, ctx: ContextDep, admin: FinanceDep,
                           scope: ScopeDep) -> list[StatementRead]:
    await ledger_service.post_all_deferred(ctx.db)  # every posting of the period is in the books first
    async with ctx.db.transaction() as session:
        merchant = await merchants_service.get_merchant(session=session, code=code, scope=scope)
        issued = await statements.issue_statements(session=session, merchant=merchant, day=data.period,
                                                   cycle=data.cycle, actor=admin)
        return [await _read(session, s, with_lines=False) for s in issued]


@admin_router.get("/merchant-statements", response_model=list[StatementRead],
                  summary="Issued statements, latest period first (a merchant's staff: their own)")
async def list_statements(session: ReadSessionDep, _: FinanceDep, scope: ScopeDep) -> list[StatementRead]:
    return [await _read(session, s, with_lines=False)
            for s in await statements.list_statements(session=session, scope=scope)]


@admin_router.get("/merchant-statements/{statement_no}", response_model=StatementRead,
                  summary="One statement with its lines")
async def get_statement(statement_no: StatementNoPath, session: ReadSessionDep, _: FinanceDep,
                        scope: ScopeDep) -> StatementRead:
    statement = await statements.get_statement(session=session, statement_no=statement_no, scope=scope)
    return await _read(session, statement, with_lines=True)


@admin_router.get("/merchant-statements/{statement_no}/csv", summary="One statement as CSV",
                  response_class=Response, responses={200: {"content": {"text/csv": {}}}})
async def statement_csv(statement_no: StatementNoPath, session: ReadSessionDep, _: FinanceDep,
                        scope: ScopeDep) -> Response:
    statement = await statements.get_statement(session=session, statement_no=statement_no, scope=scope)
    merchant = await merchants_service.get_merchant_by_id(session=session, merchant_id=statement.merchant_id)
    lines = await statements.statement_lines(session=session, statement=statement, merchant_code=merchant.code)
    body = statements.statement_csv(statement, merchant.code, lines, zone_of(session))
    return Response(content=body.encode("utf-8-sig"), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{statement.statement_no}.csv"'})
