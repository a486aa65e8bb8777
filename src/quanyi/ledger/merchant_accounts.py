"""A merchant's account at the platform (商户应付): what the ledger says the platform owes it, how much of that
is still held for the refund window, its movements per period, and the payout of a withdrawal. The same for a
promoter's commission (`distributor_commission:<code>`, 分销佣金): the `*_of` functions take any such account.

Amounts here are from the payee's side: positive = owed to them (a credit of their liability account).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from quanyi.ledger import accounts
from quanyi.ledger.models import LedgerAccount, LedgerEntry, LedgerPosting
from quanyi.ledger.postings import Line, post
from quanyi.orders.models import Order

__all__ = ["PayableMovement", "payable_balances", "held_earnings", "payable_movements", "record_withdrawal_paid",
           "balances_of", "held_of", "movements_of", "record_commission_paid"]


@dataclass(frozen=True, slots=True)
class PayableMovement:
    at: dt.datetime
    kind: str  # order_delivered | refund_requested | refund_refused | merchant_withdrawal | ...
    reference: str
    order_no: str | None
    currency: str
    amount_cents: int  # to the merchant (+) or taken from it (-)
    gross_cents: int  # delivered orders: what the buyer paid in; else 0


def _payable(code: str):  # type: ignore[no-untyped-def]
    return select(LedgerAccount.id).where(LedgerAccount.code == code).scalar_subquery()


async def payable_balances(session: AsyncSession, merchant_code: str,
                           until: dt.datetime | None = None) -> dict[str, int]:
    """Per currency, what the platform owes the merchant (before `until` when given)."""
    return await balances_of(session, accounts.merchant_payable(merchant_code), until)


async def held_earnings(session: AsyncSession, merchant_code: str, delivered_since: dt.datetime) -> dict[str, int]:
    """Per currency, the merchant's net earnings from orders delivered since `delivered_since` (their refunds
    included): held for the refund window, not yet withdrawable. Never below zero."""
    return await held_of(session, accounts.merchant_payable(merchant_code), delivered_since)


async def payable_movements(session: AsyncSession, merchant_code: str, start: dt.datetime,
                            end: dt.datetime) -> list[PayableMovement]:
    """Every movement of the merchant's account in [start, end), oldest first, with the buyer's payment of each
    delivered order (so a statement shows gross, fees and net)."""
    return await movements_of(session, accounts.merchant_payable(merchant_code), start, end)


async def balances_of(session: AsyncSession, code: str, until: dt.datetime | None = None) -> dict[str, int]:
    """Per currency, what the platform owes on this liability account (before `until` when given)."""
    stmt = (select(LedgerEntry.currency, func.sum(LedgerEntry.amount_cents))
            .where(LedgerEntry.account_id == _payable(code)).group_by(LedgerEntry.currency))
    if until is not None:
        stmt = stmt.join(LedgerPosting, LedgerPosting.id == LedgerEntry.posting_id) \
            .where(LedgerPosting.created_at < until)
    return {currency: -int(total) for currency, total in (await session.execute(stmt)).all()}


async def held_of(session: AsyncSession, code: str, delivered_since: dt.datetime) -> dict[str, int]:
    """Per currency, what this account earned from orders delivered since `delivered_since` (their refunds
    included): held for the refund window. Never below zero."""
    rows = await session.execute(
        select(LedgerEntry.currency, func.sum(LedgerEntry.amount_cents))
        .join(LedgerPosting, LedgerPosting.id == LedgerEntry.posting_id)
        .join(Order, Order.id == LedgerPosting.order_id)
        .where(LedgerEntry.account_id == _payable(code), Order.delivered_at >= delivered_since)
        .group_by(LedgerEntry.currency))
    return {currency: max(0, -int(total)) for currency, total in rows.all()}


async def movements_of(session: AsyncSession, code: str, start: dt.datetime,
                       end: dt.datetime) -> list[PayableMovement]:
    """Every movement of this account in [start, end), oldest first, with the buyer's payment of each delivered
    order."""
    rows = (await session.execute(
        select(LedgerPosting.id, LedgerPosting.created_at, LedgerPosting.kind, LedgerPosting.reference,
               Order.order_no, LedgerEntry.currency, LedgerEntry.amount_cents)
        .join(LedgerEntry, LedgerEntry.posting_id == LedgerPosting.id)
        .outerjoin(Order, Order.id == LedgerPosting.order_id)
        .where(LedgerEntry.account_id == _payable(code), LedgerPosting.created_at >= start,
               LedgerPosting.created_at < end)
        .order_by(LedgerPosting.created_at, LedgerPosting.id))).all()
    delivered = [row[0] for row in rows if row[2] == "order_delivered"]
    gross: dict[int, int] = defaultdict(int)
    if delivered:
        paid_in = await session.execute(
            select(LedgerEntry.posting_id, func.sum(LedgerEntry.amount_cents))
            .where(LedgerEntry.posting_id.in_(delivered),
                   LedgerEntry.account_id == select(LedgerAccount.id).where(
                       LedgerAccount.code == accounts.CUSTOMER_LIABILITY).scalar_subquery())
            .group_by(LedgerEntry.posting_id))
        gross.update({posting_id: int(total) for posting_id, total in paid_in.all()})
    return [PayableMovement(at=at, kind=kind, reference=reference, order_no=order_no, currency=currency,
                            amount_cents=-int(amount), gross_cents=gross.get(posting_id, 0))
            for posting_id, at, kind, reference, order_no, currency, amount in rows]


async def record_withdrawal_paid(session: AsyncSession, *, merchant_code: str, withdrawal_no: str, amount_cents: int,
                                 currency: str, actor: str, payout_reference: str,
                                 now: dt.datetime | None = None) -> None:
    """The platform paid a merchant's withdrawal out of its bank (打款): D merchant_payable C platform_cash.
    Idempotent per withdrawal."""
    await post(session, reference=f"merchant_withdrawal:{withdrawal_no}", kind="merchant_withdrawal", now=now,
               actor=actor, memo=f"withdrawal {withdrawal_no} of {merchant_code} paid ({payout_reference})"[:500],
               lines=[Line(accounts.merchant_payable(merchant_code), amount_cents, currency),
                      Line(accounts.PLATFORM_CASH, -amount_cents, currency)])


async def record_commission_paid(session: AsyncSession, *, promoter_code: str, withdrawal_no: str, amount_cents: int,
                                 currency: str, actor: str, payout_reference: str,
                                 now: dt.datetime | None = None) -> None:
    """The platform paid a promoter's commission withdrawal (佣金打款): D distributor_commission C platform_cash.
    Idempotent per withdrawal."""
    await post(session, reference=f"commission_withdrawal:{withdrawal_no}", kind="commission_withdrawal", now=now,
               actor=actor, memo=f"commission withdrawal {withdrawal_no} of {promoter_code} paid "
                                 f"({payout_reference})"[:500],
               lines=[Line(accounts.distributor_commission(promoter_code), amount_cents, currency),
                      Line(accounts.PLATFORM_CASH, -amount_cents, currency)])
