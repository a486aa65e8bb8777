"""Merchant statements (商户对账单): per closed period (a shop day, a week from Monday, a calendar month in
QUANYI_SHOP_TIMEZONE), what the platform owed the merchant at the start, every sale (gross, platform fees, net),
refund and payout in it, and what it owed at the end. Issued once per merchant, period and currency, and kept as
issued; the lines are read from the ledger, whose entries for a closed period never change.
"""

from __future__ import annotations

import calendar
import csv
import datetime as dt
import io
import secrets
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from quanyi.db import utcnow
from quanyi.errors import InvalidInput, NotFound
from quanyi.ledger import service as ledger_service
from quanyi.merchants.models import Merchant, MerchantStatement
from quanyi.scope import PLATFORM, Scope
from quanyi.shoptime import day_bounds, zone_of

__all__ = ["CYCLES", "StatementNotFound", "InvalidStatementPeriod", "Period", "period_of", "issue_statements",
           "get_statement", "list_statements", "statement_lines", "statement_csv"]

CYCLES = ("daily", "weekly", "monthly")
_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_REFUND_KINDS = ("refund_requested", "refund_refused")


class StatementNotFound(NotFound):
    code = "statement_not_found"


class InvalidStatementPeriod(InvalidInput):
    code = "invalid_statement_period"


@dataclass(frozen=True, slots=True)
class Period:
    cycle: str
    first_day: dt.date
    end_day: dt.date  # exclusive
    start: dt.datetime  # UTC
    end: dt.datetime


def period_of(day: dt.date, cycle: str, zone) -> Period:  # type: ignore[no-untyped-def]
    """The `cycle` period containing `day`, as the UTC instants of the shop's local midnights."""
    if cycle == "daily":
        first, days = day, 1
    elif cycle == "weekly":
        first, days = day - dt.timedelta(days=day.weekday()), 7
    elif cycle == "monthly":
        first, days = day.replace(day=1), calendar.monthrange(day.year, day.month)[1]
    else:
        raise InvalidStatementPeriod(f"cycle must be one of {', '.join(CYCLES)}")
    start, end = day_bounds(first, zone, days=days)
    return Period(cycle=cycle, first_day=first, end_day=first + dt.timedelta(days=days), start=start, end=end)


def _totals(movements: Sequence[ledger_service.PayableMovement]) -> dict[str, int]:
    totals = {"gross": 0, "net": 0, "refunds": 0, "withdrawals": 0, "other": 0, "orders": 0}
    for m in movements:
        if m.kind == "order_delivered":
            totals["gross"] += m.gross_cents
            totals["net"] += m.amount_cents
            totals["orders"] += 1
        elif m.kind in _REFUND_KINDS:
            totals["refunds"] -= m.amount_cents
        elif m.kind == "merchant_withdrawal":
            totals["withdrawals"] -= m.amount_cents
        else:
            totals["other"] += m.amount_cents
    return totals


async def issue_statements(*, session: AsyncSession, merchant: Merchant, day: dt.date, cycle: str, actor: str,
                           now: dt.datetime | None = None) -> list[MerchantStatement]:
    """Issue the merchant's statement(s) of the closed period containing `day`, one per currency it moved or held
    money in. Issuing again returns the statements already issued."""
    now = now or utcnow()
    period = period_of(day, cycle, zone_of(session))
    if period.end > now:
        raise InvalidStatementPeriod(f"the period {period.first_day}..{period.end_day} is not over yet",
                                     period_end=period.end.isoformat())
    opening = await ledger_service.payable_balances(session, merchant.code, until=period.start)
    movements = await ledger_service.payable_movements(session, merchant.code, period.start, period.end)
    issued = []
    for currency in sorted(set(opening) | {m.currency for m in movements}):
        existing = await session.scalar(select(MerchantStatement).where(
            MerchantStatement.merchant_id == merchant.id, MerchantStatement.cycle == cycle,
            MerchantStatement.period_start == period.first_day, MerchantStatement.currency == currency))
        if existing is not None:
            issued.append(existing)
            continue
        mine = [m for m in movements if m.currency == currency]
        totals = _totals(mine)
        start = opening.get(currency, 0)
        statement = MerchantStatement(
            statement_no="ST" + "".join(secrets.choice(_ALPHABET) for _ in range(14)), merchant_id=merchant.id,
            cycle=cycle, period_start=period.first_day, period_end=period.end_day, currency=currency,
            opening_cents=start, gross_cents=totals["gross"], fees_cents=totals["gross"] - totals["net"],
            net_sales_cents=totals["net"], refunds_cents=totals["refunds"], withdrawals_cents=totals["withdrawals"],
            closing_cents=start + sum(m.amount_cents for m in mine), orders=totals["orders"],
            created_by=actor[:64], created_at=now)
        session.add(statement)
        issued.append(statement)
    await session.flush()
    return issued


async def get_statement(*, session: AsyncSession, statement_no: str, scope: Scope = PLATFORM) -> MerchantStatement:
    statement = await session.scalar(select(MerchantStatement).where(
        MerchantStatement.statement_no == statement_no, scope.where(MerchantStatement.merchant_id)))
    if statement is None:
        raise StatementNotFound(f"statement {statement_no!r} does not exist")
    return statement


async def list_statements(*, session: AsyncSession, scope: Scope = PLATFORM, merchant_id: int | None = None,
                          limit: int = 200) -> Sequence[MerchantStatement]:
    stmt = (select(MerchantStatement).where(scope.where(MerchantStatement.merchant_id))
            .order_by(MerchantStatement.period_start.desc(), MerchantStatement.id.desc()).limit(limit))
    if merchant_id is not None:
        stmt = stmt.where(MerchantStatement.merchant_id == merchant_id)
    return (await session.scalars(stmt)).all()


async def statement_lines(*, session: AsyncSession, statement: MerchantStatement,
                          merchant_code: str) -> list[ledger_service.PayableMovement]:
    """The ledger movements behind an issued statement (its period, its currency)."""
    zone = zone_of(session)
    days = (statement.period_end - statement.period_start).days
    start, end = day_bounds(statement.period_start, zone, days=days)
    return [m for m in await ledger_service.payable_movements(session, merchant_code, start, end)
            if m.currency == statement.currency]


def statement_csv(statement: MerchantStatement, merchant_code: str,
                  lines: Sequence[ledger_service.PayableMovement], zone) -> str:  # type: ignore[no-untyped-def]
    """An opening row, one row per movement, a closing row; times in the shop's zone; amounts in cents."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    head = [merchant_code, statement.statement_no, statement.currency]
    writer.writerow(["merchant", "statement", "currency", "time", "kind", "reference", "order_no", "gross_cents",
                     "amount_cents"])
    writer.writerow([*head, statement.period_start.isoformat(), "opening", "", "", "", statement.opening_cents])
    for line in lines:
        writer.writerow([*head, line.at.astimezone(zone).isoformat(), line.kind, line.reference, line.order_no or "",
                         line.gross_cents or "", line.amount_cents])
    writer.writerow([*head, statement.period_end.isoformat(), "closing", "", "", "", statement.closing_cents])
    return out.getvalue()
