"""Supplier settlement (结算): statements per supplier per cycle, and reconciliation (对账) of our charges
against what the supplier says about each purchase.

A statement is read from the supplier's prepaid account in the ledger: the opening balance is the account
before the period, every purchase, release and top-up inside it is a line, the closing balance follows.
Periods are days or weeks (Monday first) in the shop's timezone (`shop_timezone`).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import logging
from dataclasses import dataclass, field

import httpx
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from quanyi.errors import Conflict, InvalidInput, NotFound
from quanyi.inventory.crypto import CardKeyCipher
from quanyi.ledger import accounts
from quanyi.ledger.models import LedgerAccount, LedgerEntry, LedgerPosting, SupplierCharge, SupplierChargeStatus
from quanyi.money import format_money
from quanyi.orders.models import Order
from quanyi.scope import PLATFORM, Scope
from quanyi.shoptime import day_bounds, shop_zone
from quanyi.suppliers import service as suppliers_service
from quanyi.suppliers.adapter import ProductKind, QueryState, SupplierError
from quanyi.suppliers.credentials import CredentialsUnreadable
from quanyi.suppliers.models import SettlementCycle, Supplier

__all__ = [
    "UnknownSupplierCode", "InvalidPeriod", "SupplierNotQueryable",
    "Period", "StatementLine", "Statement", "period_for", "get_supplier",
    "supplier_statement", "statement_csv", "ReconciliationItem", "Reconciliation", "reconcile_supplier",
]

logger = logging.getLogger(__name__)
# A cost adjustment gives back part of a debit (the supplier took less than the synced cost): a partial release.
_LINE_KINDS = {"supplier_charge": "purchase", "supplier_release": "release", "supplier_adjust": "release",
               "supplier_top_up": "top_up"}


class UnknownSupplierCode(NotFound):
    code = "supplier_not_found"


class InvalidPeriod(InvalidInput):
    code = "invalid_period"


class SupplierNotQueryable(Conflict):
    code = "supplier_not_queryable"


@dataclass(frozen=True, slots=True)
class Period:
    cycle: SettlementCycle
    first_day: dt.date
    start: dt.datetime  # aware, UTC
    end: dt.datetime  # exclusive

    @property
    def label(self) -> str:
        if self.cycle is SettlementCycle.WEEKLY:
            return f"{self.first_day.isoformat()}..{(self.first_day + dt.timedelta(days=6)).isoformat()}"
        return self.first_day.isoformat()


def period_for(day: dt.date, cycle: SettlementCycle, timezone: str) -> Period:
    """The settlement period of `cycle` containing `day`, as UTC instants of the shop's local midnights.
    Per-order suppliers settle each purchase on its own; their statement lists one day of them."""
    first = day - dt.timedelta(days=day.weekday()) if cycle is SettlementCycle.WEEKLY else day
    start, end = day_bounds(first, shop_zone(timezone), days=7 if cycle is SettlementCycle.WEEKLY else 1)
    return Period(cycle=cycle, first_day=first, start=start, end=end)


@dataclass(frozen=True, slots=True)
class StatementLine:
    at: dt.datetime
    kind: str  # purchase | release | top_up
    reference: str
    order_no: str | None
    amount_cents: int  # signed: what it did to the prepaid balance
    balance_after_cents: int
    memo: str


@dataclass(frozen=True, slots=True)
class Statement:
    supplier_code: str
    supplier_name: str
    currency: str
    period: Period
    timezone: str
    opening_cents: int
    purchases_cents: int  # money out (positive figure)
    releases_cents: int
    top_ups_cents: int
    closing_cents: int
    lines: list[StatementLine] = field(default_factory=list)
    # Supplier balance now minus its ledger account now: non-zero means it was changed outside the ledger.
    untracked_cents: int = 0


async def get_supplier(*, session: AsyncSession, code: str, scope: Scope = PLATFORM) -> Supplier:
    supplier = await session.scalar(select(Supplier).where(Supplier.code == code))
    if supplier is None or not scope.sees(supplier.merchant_id):
        raise UnknownSupplierCode(f"no supplier with code {code!r}")
    return supplier


async def _prepaid_before(session: AsyncSession, supplier_id: int, before: dt.datetime | None) -> int:
    stmt = (select(func.coalesce(func.sum(LedgerEntry.amount_cents), 0))
            .join(LedgerAccount, LedgerAccount.id == LedgerEntry.account_id)
            .join(LedgerPosting, LedgerPosting.id == LedgerEntry.posting_id)
            .where(LedgerAccount.code == accounts.supplier_prepaid(supplier_id)))
    if before is not None:
        stmt = stmt.where(LedgerPosting.created_at < before)
    return int(await session.scalar(stmt) or 0)


async def supplier_statement(
    *, session: AsyncSession, supplier_code: str, day: dt.date, timezone: str, cycle: SettlementCycle | None = None,
    scope: Scope = PLATFORM,
) -> Statement:
    """The settlement statement (对账单) of one supplier for the period containing `day`."""
    supplier = await get_supplier(session=session, code=supplier_code, scope=scope)
    period = period_for(day, cycle or supplier.settlement_cycle, timezone)
    opening = await _prepaid_before(session, supplier.id, period.start)
    rows = (await session.execute(
        select(LedgerPosting, LedgerEntry.amount_cents, Order.order_no)
        .join(LedgerEntry, LedgerEntry.posting_id == LedgerPosting.id)
        .join(LedgerAccount, LedgerAccount.id == LedgerEntry.account_id)
        .outerjoin(Order, Order.id == LedgerPosting.order_id)
        .where(LedgerAccount.code == accounts.supplier_prepaid(supplier.id),
               LedgerPosting.created_at >= period.start, LedgerPosting.created_at < period.end)
        .order_by(LedgerPosting.created_at, LedgerPosting.id))).all()
    balance, lines = opening, []
    totals = {"purchase": 0, "release": 0, "top_up": 0}
    for posting, amount, order_no in rows:
        kind = _LINE_KINDS.get(posting.kind, posting.kind)
        balance += int(amount)
        totals[kind] = totals.get(kind, 0) + abs(int(amount))
        lines.append(StatementLine(at=posting.created_at, kind=kind,
                                   reference=posting.attempt_key or posting.reference, order_no=order_no,
                                   amount_cents=int(amount), balance_after_cents=balance, memo=posting.memo))
    untracked = supplier.balance_cents - await _prepaid_before(session, supplier.id, None)
    return Statement(supplier_code=supplier.code, supplier_name=supplier.name, currency=supplier.currency,
                     period=period, timezone=timezone, opening_cents=opening, purchases_cents=totals["purchase"],
                     releases_cents=totals["release"], top_ups_cents=totals["top_up"], closing_cents=balance,
                     lines=lines, untracked_cents=untracked)


def statement_csv(statement: Statement) -> str:
    """The statement as CSV: an opening row, one row per movement, a closing row; times in the shop's zone."""
    zone = shop_zone(statement.timezone)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(["supplier", "period", "time", "kind", "reference", "order_no", "amount_cents", "amount",
                     "balance_cents", "currency"])
    head = [statement.supplier_code, statement.period.label]

    def money(cents: int) -> str:
        return format_money(cents, statement.currency)

    writer.writerow([*head, statement.period.start.astimezone(zone).isoformat(), "opening", "", "", "", "",
                     statement.opening_cents, statement.currency])
    for line in statement.lines:
        writer.writerow([*head, line.at.astimezone(zone).isoformat(), line.kind, _safe(line.reference),
                         line.order_no or "", line.amount_cents, money(line.amount_cents), line.balance_after_cents,
                         statement.currency])
    writer.writerow([*head, statement.period.end.astimezone(zone).isoformat(), "closing", "", "", "", "",
                     statement.closing_cents, statement.currency])
    return out.getvalue()


def _safe(text: str) -> str:
    # A cell starting with = + - @ is a formula to spreadsheet apps; references come from outside.
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


# ---------------------------------------------------------------- reconciliation (对账)

@dataclass(frozen=True, slots=True)
class ReconciliationItem:
    reference: str
    order_no: str | None
    our_status: str  # charged | released
    amount_cents: int
    supplier_state: str  # succeeded | processing | failed | not_found | query_failed
    supplier_amount_cents: int | None
    problem: str | None  # None when both sides agree
    detail: str = ""


@dataclass(frozen=True, slots=True)
class Reconciliation:
    supplier_code: str
    period: Period
    checked: int
    items: list[ReconciliationItem]

    @property
    def mismatches(self) -> list[ReconciliationItem]:
        return [item for item in self.items if item.problem is not None]


def _judge(charge: SupplierCharge, state: QueryState, amount: int | None) -> str | None:
    if charge.status == SupplierChargeStatus.CHARGED:
        if state in (QueryState.NOT_FOUND, QueryState.FAILED):
            return "charged_but_supplier_has_no_purchase"
        if state is QueryState.SUCCEEDED and amount is not None and amount != charge.amount_cents:
            return "amount_differs"
        return None
    if state is QueryState.SUCCEEDED:
        return "released_but_supplier_completed"
    return None


async def reconcile_supplier(
    *,
    session: AsyncSession,
    cipher: CardKeyCipher,
    http: httpx.AsyncClient,
    supplier_code: str,
    day: dt.date,
    timezone: str,
    cycle: SettlementCycle | None = None,
    scope: Scope = PLATFORM,
) -> Reconciliation:
    """Ask the supplier about every charge of the period (query_order by its reference) and report where
    the two sides disagree: we paid but the supplier has no (successful) purchase, the amount differs, or we
    released a charge the supplier completed. Read-only; the session is used only to read."""
    supplier = await get_supplier(session=session, code=supplier_code, scope=scope)
    period = period_for(day, cycle or supplier.settlement_cycle, timezone)
    rows = (await session.execute(
        select(SupplierCharge, Order.order_no, Order.delivery_type)
        .outerjoin(Order, Order.id == SupplierCharge.order_id)
        .where(SupplierCharge.supplier_id == supplier.id, SupplierCharge.created_at >= period.start,
               SupplierCharge.created_at < period.end)
        .order_by(SupplierCharge.created_at, SupplierCharge.id))).all()
    try:
        adapter = suppliers_service.adapter_for(supplier, cipher=cipher, http=http)
    except (SupplierError, CredentialsUnreadable) as exc:
        raise SupplierNotQueryable(f"cannot talk to supplier {supplier.code}: {exc}") from None
    items = []
    for charge, order_no, delivery_type in rows:
        kind = ProductKind.DIRECT_RECHARGE if delivery_type == ProductKind.DIRECT_RECHARGE else ProductKind.CARD_KEY
        try:
            answer = await adapter.query_order(charge.reference, kind=kind)
        except (SupplierError, httpx.HTTPError) as exc:
            logger.warning("reconciliation: %s query of %s failed: %s", supplier.code, charge.reference, exc)
            items.append(ReconciliationItem(
                reference=charge.reference, order_no=order_no, our_status=charge.status,
                amount_cents=charge.amount_cents, supplier_state="query_failed", supplier_amount_cents=None,
                problem="query_failed", detail=str(exc)[:300]))
            continue
        amount = (answer.unit_cost_cents * (answer.quantity or 1)) if answer.unit_cost_cents is not None else None
        items.append(ReconciliationItem(
            reference=charge.reference, order_no=order_no, our_status=charge.status,
            amount_cents=charge.amount_cents, supplier_state=answer.state.value, supplier_amount_cents=amount,
            problem=_judge(charge, answer.state, amount), detail=answer.message[:300]))
    return Reconciliation(supplier_code=supplier.code, period=period, checked=len(items), items=items)
