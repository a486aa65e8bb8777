"""Ledger admin API: trial balance, accounts, an order's postings, supplier top-ups, statements (JSON and
CSV), reconciliation against the supplier, profit-sharing rules, gateway settlements (payouts) and what each
gateway still owes."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Header, Path, Query, Response

from quanyi.deps import AdminDep, ContextDep, PlatformAdminDep, ReadSessionDep, ScopeDep, SessionDep
from quanyi.ledger import service as ledger_service
from quanyi.ledger.schemas import (
    GatewayClearingRead,
    GatewayPayoutCreate,
    GatewayPayoutRead,
    PostingRead,
    ReconciliationRead,
    ShareRuleRead,
    ShareRuleWrite,
    StatementRead,
    TopUpCreate,
    TopUpRead,
    TrialBalanceRead,
    clearing_read,
    payout_read,
    reconciliation_read,
    statement_read,
    trial_balance_read,
)
from quanyi.orders import service as orders_service
from quanyi.payments.configuration import known_gateway_names
from quanyi.shoptime import shop_day, shop_zone
from quanyi.suppliers.models import SettlementCycle

router = APIRouter(prefix="/api/admin/ledger", tags=["admin: ledger"])

SupplierCode = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.\-]+$")]
PeriodDay = Annotated[dt.date, Query(alias="period", description="A day of the period, e.g. 2026-12-01")]
CycleQuery = Annotated[SettlementCycle | None, Query(description="Default: the supplier's settlement cycle")]
IdempotencyKey = Annotated[str | None, Header(alias="Idempotency-Key", min_length=8, max_length=64,
                                              pattern=r"^[A-Za-z0-9_.:-]+$")]


@router.get("/trial-balance", response_model=TrialBalanceRead, summary="Every account's balance; totals must be 0")
async def trial_balance(session: ReadSessionDep, ctx: ContextDep, _: PlatformAdminDep) -> TrialBalanceRead:
    await ledger_service.post_all_deferred(ctx.db)  # the books as of now: payments' deferred postings first
    trial = await ledger_service.trial_balance(session=session)
    return trial_balance_read(trial, await ledger_service.prepaid_drift(session=session))


@router.get("/orders/{order_no}/postings", response_model=list[PostingRead], summary="Postings of one order")
async def order_postings(order_no: Annotated[str, Path(min_length=1, max_length=64)], session: ReadSessionDep,
                         ctx: ContextDep, _: AdminDep, scope: ScopeDep) -> list[PostingRead]:
    await ledger_service.post_all_deferred(ctx.db)
    order = await orders_service.get_order(session=session, order_no=order_no, scope=scope)
    postings = await ledger_service.order_postings(session=session, order_id=order.id)
    return [PostingRead(reference=p.reference, kind=p.kind, created_at=p.created_at, memo=p.memo,
                        entries=[{"account": a, "amount_cents": c, "currency": cur} for a, c, cur in p.entries])
            for p in postings]


@router.post("/suppliers/{code}/top-ups", response_model=TopUpRead, status_code=201,
             summary="Record money paid into a supplier's prepaid balance (预付充值)")
async def top_up(code: SupplierCode, data: TopUpCreate, session: SessionDep, admin: AdminDep, scope: ScopeDep,
                 idempotency_key: IdempotencyKey = None) -> TopUpRead:
    supplier = await ledger_service.get_supplier(session=session, code=code, scope=scope)
    posting = await ledger_service.top_up_supplier(session=session, supplier_id=supplier.id,
                                                   amount_cents=data.amount_cents, note=data.note, actor=admin,
                                                   reference=idempotency_key)
    await session.refresh(supplier)
    return TopUpRead(supplier_code=supplier.code, reference=posting.reference, amount_cents=data.amount_cents,
                     balance_cents=supplier.balance_cents, created_at=posting.created_at)


@router.get("/suppliers/{code}/statement", response_model=StatementRead, summary="Settlement statement (对账单)")
async def statement(code: SupplierCode, day: PeriodDay, ctx: ContextDep, session: ReadSessionDep, _: AdminDep,
                    scope: ScopeDep, cycle: CycleQuery = None) -> StatementRead:
    await ledger_service.post_all_deferred(ctx.db)
    found = await ledger_service.supplier_statement(session=session, supplier_code=code, day=day, cycle=cycle,
                                                    timezone=ctx.settings.shop_timezone, scope=scope)
    return statement_read(found)


@router.get("/suppliers/{code}/statement.csv", summary="Settlement statement as CSV",
            response_class=Response, responses={200: {"content": {"text/csv": {}}}})
async def statement_csv(code: SupplierCode, day: PeriodDay, ctx: ContextDep, session: ReadSessionDep, _: AdminDep,
                        scope: ScopeDep, cycle: CycleQuery = None) -> Response:
    await ledger_service.post_all_deferred(ctx.db)
    found = await ledger_service.supplier_statement(session=session, supplier_code=code, day=day, cycle=cycle,
                                                    timezone=ctx.settings.shop_timezone, scope=scope)
    filename = f"statement-{found.supplier_code}-{found.period.cycle.value}-{found.period.first_day.isoformat()}.csv"
    return Response(content=ledger_service.statement_csv(found).encode("utf-8-sig"),
                    media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})


@router.get("/suppliers/{code}/reconciliation", response_model=ReconciliationRead,
            summary="Check every charge of a period against the supplier's order query (对账)")
async def reconciliation(code: SupplierCode, day: PeriodDay, ctx: ContextDep, session: ReadSessionDep, _: AdminDep,
                         scope: ScopeDep, cycle: CycleQuery = None) -> ReconciliationRead:
    await ledger_service.post_all_deferred(ctx.db)
    result = await ledger_service.reconcile_supplier(session=session, cipher=ctx.cipher, http=ctx.http,
                                                     supplier_code=code, day=day, cycle=cycle,
                                                     timezone=ctx.settings.shop_timezone, scope=scope)
    return reconciliation_read(result)


@router.get("/share-rules", response_model=list[ShareRuleRead], summary="Profit-sharing rules (分润规则)")
async def share_rules(session: ReadSessionDep, _: PlatformAdminDep) -> list[ShareRuleRead]:
    return [ShareRuleRead.model_validate(rule) for rule in await ledger_service.list_share_rules(session=session)]


@router.put("/share-rules", response_model=ShareRuleRead, summary="Set the default rule or one SKU's rule")
async def set_share_rule(data: ShareRuleWrite, session: SessionDep, admin: PlatformAdminDep) -> ShareRuleRead:
    rule = await ledger_service.set_share_rule(session=session, sku_id=data.sku_id, merchant_code=data.merchant_code,
                                               merchant_bps=data.merchant_bps, distributor_bps=data.distributor_bps,
                                               distributor_l2_bps=data.distributor_l2_bps, actor=admin)
    return ShareRuleRead.model_validate(rule)


@router.delete("/share-rules", status_code=204, summary="Remove the default rule (no sku_id) or one SKU's rule")
async def delete_share_rule(session: SessionDep, _: PlatformAdminDep,
                            sku_id: Annotated[int | None, Query(ge=1, le=2_147_483_647)] = None) -> Response:
    await ledger_service.delete_share_rule(session=session, sku_id=sku_id)
    return Response(status_code=204)


@router.post("/gateway-payouts", response_model=GatewayPayoutRead, status_code=201,
             summary="Record a gateway's settlement paid into the bank (渠道结算/打款)",
             description="Books D platform_cash net, D gateway_fees:<gateway> fee, C gateway_clearing:<gateway> "
                         "net + fee, once per (gateway, settlement_no): a repeat is 409 gateway_payout_exists. "
                         "422 payout_gateway_unknown / invalid_gateway_payout, 409 payout_exceeds_clearing when "
                         "net + fee is more than the gateway owes.")
async def record_gateway_payout(data: GatewayPayoutCreate, ctx: ContextDep,
                                admin: PlatformAdminDep) -> GatewayPayoutRead:
    await ledger_service.post_all_deferred(ctx.db)  # every payment's postings in clearing before its balance is read
    zone = ctx.settings.shop_timezone
    async with ctx.db.transaction() as session:  # opened after the deferred postings' own (one writer on SQLite)
        payout = await ledger_service.record_gateway_payout(
            session, gateway=data.gateway, settlement_no=data.settlement_no, period_from=data.period_from,
            period_to=data.period_to, net_cents=data.net_cents, fee_cents=data.fee_cents,
            refunds_cents=data.refunds_cents, currency=data.currency, note=data.note, actor=admin,
            configured=known_gateway_names(ctx.gateways), today=shop_day(dt.datetime.now(dt.UTC), shop_zone(zone)))
        return payout_read(await ledger_service.period_movements(session, payout, zone))


@router.get("/gateway-payouts", response_model=list[GatewayPayoutRead],
            summary="Recorded gateway settlements, newest first, with the books' figures for each period")
async def gateway_payouts(session: ReadSessionDep, ctx: ContextDep, _: PlatformAdminDep,
                          gateway: Annotated[str | None, Query(pattern=r"^[a-z0-9_]{1,32}$")] = None,
                          limit: Annotated[int, Query(ge=1, le=500)] = 50) -> list[GatewayPayoutRead]:
    await ledger_service.post_all_deferred(ctx.db)
    views = await ledger_service.list_gateway_payouts(session, timezone=ctx.settings.shop_timezone, gateway=gateway,
                                                      limit=limit)
    return [payout_read(view) for view in views]


@router.get("/gateway-clearing", response_model=list[GatewayClearingRead],
            summary="Each gateway's clearing balance: what it still owes the shop, and its payouts' totals")
async def gateway_clearing(session: ReadSessionDep, ctx: ContextDep, _: PlatformAdminDep) -> list[GatewayClearingRead]:
    await ledger_service.post_all_deferred(ctx.db)
    rows = await ledger_service.gateway_clearing_balances(session, configured=ctx.gateways.names())
    return [clearing_read(row) for row in rows]
