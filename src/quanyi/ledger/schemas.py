"""Request and response shapes of the ledger admin API."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, Strict

from quanyi.ledger.gateway_payouts import GatewayClearing, PayoutView
from quanyi.ledger.reports import TrialBalance
from quanyi.ledger.settlement import Reconciliation, Statement
from quanyi.schema_types import DbId, reject_control_chars

__all__ = ["AccountRead", "TrialBalanceRead", "EntryRead", "PostingRead", "TopUpCreate", "TopUpRead",
           "ShareRuleWrite", "ShareRuleRead", "StatementLineRead", "StatementRead", "ReconciliationItemRead",
           "ReconciliationRead", "statement_read", "reconciliation_read", "trial_balance_read",
           "GatewayPayoutCreate", "GatewayPayoutRead", "GatewayClearingRead", "payout_read", "clearing_read"]

Code = Annotated[str, Field(pattern=r"^[A-Za-z0-9_.\-]{1,64}$")]
# Strict: money is a JSON integer of cents, never "100" or 1.0.
Cents = Annotated[int, Strict(), Field(ge=1, le=10_000_000_000, description="Integer cents (fen)")]


class AccountRead(BaseModel):
    code: str
    kind: str
    name: str
    currency: str
    balance_cents: int = Field(description="Debits minus credits")


class TrialBalanceRead(BaseModel):
    balanced: bool
    totals: dict[str, int] = Field(description="Sum of every account per currency: 0 when the books balance")
    postings: int
    accounts: list[AccountRead]
    prepaid_drift: dict[str, int] = Field(
        description="Suppliers whose balance differs from their ledger prepaid account (changed outside the ledger)")


class EntryRead(BaseModel):
    account: str
    amount_cents: int
    currency: str


class PostingRead(BaseModel):
    reference: str
    kind: str
    created_at: dt.datetime
    memo: str
    entries: list[EntryRead]


class TopUpCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    amount_cents: Cents
    note: Annotated[str, Field(max_length=500), AfterValidator(reject_control_chars)] = ""

FeeCents = Annotated[int, Strict(), Field(ge=0, le=10_000_000_000, description="Integer cents (fen), 0 allowed")]


class GatewayPayoutCreate(BaseModel):
    """A gateway's settlement statement (结算单): net + fee leave the gateway's clearing account."""

    model_config = ConfigDict(extra="forbid")
    gateway: Annotated[str, Field(pattern=r"^[a-z0-9_]{1,32}$", description="alipay, wechat, stripe, sandbox ...")]
    settlement_no: Annotated[str, Field(
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:/\-]{0,63}$",
        description="The gateway's settlement id / statement reference; recorded once per gateway (409 again)")]
    period_from: dt.date = Field(description="First shop day the settlement covers")
    period_to: dt.date = Field(description="Last shop day it covers (included)")
    net_cents: Cents = Field(description="Paid into the shop's bank account")
    fee_cents: FeeCents = Field(description="Kept by the gateway (手续费)")
    refunds_cents: FeeCents = Field(0, description="Refunds the gateway netted out (already booked as each was "
                                                   "paid; recorded for the statement, not posted again)")
    currency: Annotated[str, Field(pattern=r"^[A-Z]{3}$")] = "CNY"
    note: Annotated[str, Field(max_length=500)] = ""


class GatewayPayoutRead(BaseModel):
    gateway: str
    settlement_no: str
    period_from: dt.date
    period_to: dt.date
    currency: str
    net_cents: int
    fee_cents: int
    refunds_cents: int
    gross_cents: int = Field(description="net + fee + refunds: the statement's gross takings")
    cleared_cents: int = Field(description="net + fee: credited to gateway_clearing:<gateway>")
    book_receipts_cents: int = Field(description="Debited to the clearing account in the period (payments)")
    book_refunds_cents: int = Field(description="Credited to the clearing account in the period (refunds paid)")
    difference_cents: int = Field(description="cleared - (book receipts - book refunds): 0 when the statement "
                                              "matches the books")
    note: str
    posting_reference: str
    recorded_by: str
    recorded_at: dt.datetime


class GatewayClearingRead(BaseModel):
    gateway: str
    currency: str
    balance_cents: int = Field(description="What the gateway still owes the shop (clearing account balance)")
    paid_out_cents: int = Field(description="Net paid into the bank by the recorded payouts")
    fees_cents: int
    payouts: int
    last_period_to: dt.date | None


class TopUpRead(BaseModel):
    supplier_code: str
    reference: str
    amount_cents: int
    balance_cents: int
    created_at: dt.datetime


class ShareRuleWrite(BaseModel):
    model_config = ConfigDict(extra="forbid")
    sku_id: DbId | None = Field(default=None, description="The SKU this rule is for; null = the default rule")
    merchant_code: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.\-]{0,64}$")] = ""
    merchant_bps: Annotated[int, Field(ge=0, le=10_000)] = 0
    distributor_bps: Annotated[int, Field(ge=0, le=10_000, description="Commission of the promoter who brought "
                                                                         "the order (分销一级)")] = 0
    distributor_l2_bps: Annotated[int, Field(ge=0, le=10_000, description="Commission of the promoter who "
                                                                            "recruited them (二级; two-level "
                                                                            "programme only)")] = 0


class ShareRuleRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    scope: str
    sku_id: int | None
    merchant_code: str
    merchant_bps: int
    distributor_bps: int
    distributor_l2_bps: int
    updated_by: str
    updated_at: dt.datetime


class StatementLineRead(BaseModel):
    at: dt.datetime
    kind: str
    reference: str
    order_no: str | None
    amount_cents: int
    balance_after_cents: int
    memo: str


class StatementRead(BaseModel):
    supplier_code: str
    supplier_name: str
    currency: str
    cycle: str
    period: str
    period_start: dt.datetime
    period_end: dt.datetime
    timezone: str
    opening_cents: int
    purchases_cents: int
    releases_cents: int
    top_ups_cents: int
    closing_cents: int
    untracked_cents: int
    lines: list[StatementLineRead]


class ReconciliationItemRead(BaseModel):
    reference: str
    order_no: str | None
    our_status: str
    amount_cents: int
    supplier_state: str
    supplier_amount_cents: int | None
    problem: str | None
    detail: str


class ReconciliationRead(BaseModel):
    supplier_code: str
    period: str
    checked: int
    mismatches: int
    items: list[ReconciliationItemRead]


def statement_read(statement: Statement) -> StatementRead:
    return StatementRead(
        supplier_code=statement.supplier_code, supplier_name=statement.supplier_name, currency=statement.currency,
        cycle=statement.period.cycle.value, period=statement.period.label, period_start=statement.period.start,
        period_end=statement.period.end, timezone=statement.timezone, opening_cents=statement.opening_cents,
        purchases_cents=statement.purchases_cents, releases_cents=statement.releases_cents,
        top_ups_cents=statement.top_ups_cents, closing_cents=statement.closing_cents,
        untracked_cents=statement.untracked_cents,
        lines=[StatementLineRead(at=line.at, kind=line.kind, reference=line.reference, order_no=line.order_no,
                                 amount_cents=line.amount_cents, balance_after_cents=line.balance_after_cents,
                                 memo=line.memo) for line in statement.lines])


def reconciliation_read(result: Reconciliation) -> ReconciliationRead:
    return ReconciliationRead(
        supplier_code=result.supplier_code, period=result.period.label, checked=result.checked,
        mismatches=len(result.mismatches),
        items=[ReconciliationItemRead(reference=i.reference, order_no=i.order_no, our_status=i.our_status,
                                      amount_cents=i.amount_cents, supplier_state=i.supplier_state,
                                      supplier_amount_cents=i.supplier_amount_cents, problem=i.problem,
                                      detail=i.detail) for i in result.items])


def trial_balance_read(trial: TrialBalance, drift: dict[str, int]) -> TrialBalanceRead:
    return TrialBalanceRead(
        balanced=trial.balanced, totals=trial.totals, postings=trial.postings, prepaid_drift=drift,
        accounts=[AccountRead(code=a.code, kind=a.kind, name=a.name, currency=a.currency,
                              balance_cents=a.balance_cents) for a in trial.accounts])


def payout_read(view: PayoutView) -> GatewayPayoutRead:
    p = view.payout
    return GatewayPayoutRead(
        gateway=p.gateway, settlement_no=p.settlement_no, period_from=p.period_from, period_to=p.period_to,
        currency=p.currency, net_cents=p.net_cents, fee_cents=p.fee_cents, refunds_cents=p.refunds_cents,
        gross_cents=view.gross_cents, cleared_cents=view.cleared_cents, book_receipts_cents=view.book_receipts_cents,
        book_refunds_cents=view.book_refunds_cents, difference_cents=view.difference_cents, note=p.note,
        posting_reference=view.posting_reference, recorded_by=p.recorded_by, recorded_at=p.recorded_at)


def clearing_read(row: GatewayClearing) -> GatewayClearingRead:
    return GatewayClearingRead(gateway=row.gateway, currency=row.currency, balance_cents=row.balance_cents,
                               paid_out_cents=row.paid_out_cents, fees_cents=row.fees_cents, payouts=row.payouts,
                               last_period_to=row.last_period_to)
