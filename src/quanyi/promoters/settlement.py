"""A promoter's commission (分销佣金): balance with the refund-window hold, withdrawals (提现) with the operator's
decision and payout record, and the statement (佣金明细). Every number is read from the ledger
(`distributor_commission:<code>`): delivery credits it, refunds take it back pro rata, a payout debits it.

Available to withdraw = balance - commission of orders delivered within the hold period (they may still be
refunded) - withdrawals requested or approved and not yet paid. A request takes the promoter's row lock, so two
concurrent requests can never both spend the same money. A refund after the hold can take back commission that
was already paid out: the balance then goes below zero and later commission pays it back first (shown as a
negative balance; nothing can be withdrawn until it is positive again).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from quanyi.db import utcnow
from quanyi.errors import Conflict, InvalidInput, NotFound
from quanyi.ledger import accounts
from quanyi.ledger import service as ledger_service
from quanyi.ledger.withdrawals import WithdrawalBook
from quanyi.promoters import service as promoters_service
from quanyi.promoters.models import Promoter, PromoterWithdrawal, PromoterWithdrawalStatus

__all__ = [
    "CommissionBalance", "StatementLine", "WithdrawalNotFound", "InvalidWithdrawal", "WithdrawalExceedsBalance",
    "WithdrawalConflict", "balances", "request_withdrawal", "approve_withdrawal", "reject_withdrawal",
    "pay_withdrawal", "get_withdrawal", "list_withdrawals", "statement",
]

class WithdrawalNotFound(NotFound):
    code = "commission_withdrawal_not_found"


class InvalidWithdrawal(InvalidInput):
    code = "invalid_commission_withdrawal"


class WithdrawalExceedsBalance(Conflict):
    code = "commission_withdrawal_exceeds_balance"


class WithdrawalConflict(Conflict):
    code = "commission_withdrawal_conflict"


# The moves of a withdrawal and the decisions on its row (ledger/withdrawals.py, shared with merchants).
_BOOK: WithdrawalBook[PromoterWithdrawal] = WithdrawalBook(
    model=PromoterWithdrawal, owner=PromoterWithdrawal.promoter_id, status=PromoterWithdrawalStatus, prefix="CW",
    noun="commission withdrawal", not_found=WithdrawalNotFound, invalid=InvalidWithdrawal,
    conflict=WithdrawalConflict)


@dataclass(frozen=True, slots=True)
class CommissionBalance:
    currency: str
    balance_cents: int  # commission owed to the promoter (may be negative after a late refund)
    held_cents: int  # of it, from orders still inside the refund window
    reserved_cents: int  # withdrawals requested or approved, not yet paid
    available_cents: int  # what may be withdrawn now
    paid_out_cents: int  # withdrawals paid so far


async def balances(*, session: AsyncSession, promoter: Promoter,
                   now: dt.datetime | None = None) -> dict[str, CommissionBalance]:
    """The promoter's commission per currency (CNY with nothing yet, so a page always has a line)."""
    now = now or utcnow()
    program = await promoters_service.get_program(session)
    account = accounts.distributor_commission(promoter.code)
    owed = await ledger_service.balances_of(session, account)
    held = await ledger_service.held_of(session, account, now - dt.timedelta(days=program.hold_days))
    reserved, paid = await _BOOK.totals(session, promoter.id)
    result = {}
    for currency in sorted(set(owed) | set(held) | set(reserved) | set(paid) or {"CNY"}):
        balance, hold, taken = owed.get(currency, 0), held.get(currency, 0), reserved.get(currency, 0)
        result[currency] = CommissionBalance(currency=currency, balance_cents=balance, held_cents=hold,
                                             reserved_cents=taken, available_cents=max(0, balance - hold - taken),
                                             paid_out_cents=paid.get(currency, 0))
    return result


async def request_withdrawal(
    *, session: AsyncSession, promoter_code: str, amount_cents: int, currency: str, payout_account: str,
    actor: str, request_key: str | None = None, now: dt.datetime | None = None,
) -> tuple[PromoterWithdrawal, bool]:
    """Ask to be paid `amount_cents` of the available commission to `payout_account`. Returns (withdrawal,
    created); a repeated request_key returns the first request."""
    now = now or utcnow()
    # Row lock: one promoter's requests take turns, so the available amount checked here is spent once.
    promoter = await promoters_service.get_promoter(session=session, code=promoter_code, lock=True)
    existing = await _BOOK.repeated(session, request_key=request_key, owner_id=promoter.id,
                                    amount_cents=amount_cents, currency=currency)
    if existing is not None:
        return existing, False
    account = " ".join(payout_account.split())
    if not 1 <= len(account) <= 200:
        raise InvalidWithdrawal("say where to pay it (e.g. an Alipay account), at most 200 characters",
                                field="payout_account")
    program = await promoters_service.get_program(session)
    if amount_cents < program.min_withdrawal_cents:
        raise InvalidWithdrawal(f"the smallest withdrawal is {program.min_withdrawal_cents} cents",
                                field="amount_cents", min_withdrawal_cents=program.min_withdrawal_cents)
    available = (await balances(session=session, promoter=promoter, now=now)).get(currency)
    if available is None or amount_cents > available.available_cents:
        raise WithdrawalExceedsBalance(
            "this is more than is available to withdraw (commission inside the refund window is held)",
            available_cents=available.available_cents if available else 0,
            held_cents=available.held_cents if available else 0)
    withdrawal = PromoterWithdrawal(withdrawal_no=_BOOK.new_no(), promoter_id=promoter.id, request_key=request_key,
                                    amount_cents=amount_cents, currency=currency, payout_account=account,
                                    status=PromoterWithdrawalStatus.REQUESTED.value, requested_by=actor[:64],
                                    requested_at=now)
    session.add(withdrawal)
    await session.flush()
    return withdrawal, True


async def get_withdrawal(*, session: AsyncSession, withdrawal_no: str, lock: bool = False) -> PromoterWithdrawal:
    return await _BOOK.get(session, withdrawal_no, lock=lock)


async def list_withdrawals(*, session: AsyncSession, status: str | None = None, promoter_id: int | None = None,
                           limit: int = 200) -> Sequence[tuple[PromoterWithdrawal, str]]:
    """Withdrawals, newest first, with their promoter's code."""
    stmt = (select(PromoterWithdrawal, Promoter.code).join(Promoter, Promoter.id == PromoterWithdrawal.promoter_id)
            .order_by(PromoterWithdrawal.id.desc()).limit(limit))
    if status is not None:
        stmt = stmt.where(PromoterWithdrawal.status == status)
    if promoter_id is not None:
        stmt = stmt.where(PromoterWithdrawal.promoter_id == promoter_id)
    return [(w, code) for w, code in (await session.execute(stmt)).all()]


async def approve_withdrawal(*, session: AsyncSession, withdrawal_no: str, actor: str, reason: str,
                             now: dt.datetime | None = None) -> PromoterWithdrawal:
    """The operator agrees to pay (审核通过); the money stays reserved until the payout is recorded."""
    return await _BOOK.review(session, withdrawal_no=withdrawal_no, approve=True, actor=actor, reason=reason,
                              now=now)


async def reject_withdrawal(*, session: AsyncSession, withdrawal_no: str, actor: str, reason: str,
                            now: dt.datetime | None = None) -> PromoterWithdrawal:
    """The operator refuses (with the reason the promoter sees); the amount is available again."""
    return await _BOOK.review(session, withdrawal_no=withdrawal_no, approve=False, actor=actor, reason=reason,
                              now=now)


async def pay_withdrawal(*, session: AsyncSession, withdrawal_no: str, actor: str, payout_reference: str,
                         now: dt.datetime | None = None) -> PromoterWithdrawal:
    """Record the payout (打款记录) of an approved withdrawal; the ledger moves it out of the promoter's
    commission into platform cash."""
    now = now or utcnow()
    withdrawal, reference = await _BOOK.mark_paid(session, withdrawal_no=withdrawal_no, actor=actor,
                                                  payout_reference=payout_reference, now=now)
    promoter = await session.get(Promoter, withdrawal.promoter_id)
    assert promoter is not None
    await ledger_service.record_commission_paid(
        session, promoter_code=promoter.code, withdrawal_no=withdrawal.withdrawal_no,
        amount_cents=withdrawal.amount_cents, currency=withdrawal.currency, actor=actor, payout_reference=reference,
        now=now)
    return withdrawal


@dataclass(frozen=True, slots=True)
class StatementLine:
    at: dt.datetime
    kind: str  # order_delivered | refund_requested | refund_refused | commission_withdrawal
    order_no: str | None
    currency: str
    amount_cents: int  # credited (+) or taken back / paid out (-)
    order_paid_cents: int  # delivered orders: what the buyer paid
    balance_after_cents: int


async def statement(*, session: AsyncSession, promoter: Promoter, start: dt.datetime, end: dt.datetime,
                    currency: str = "CNY") -> tuple[int, list[StatementLine]]:
    """The promoter's commission statement for [start, end) in one currency: the opening balance and every
    movement, oldest first."""
    account = accounts.distributor_commission(promoter.code)
    opening = (await ledger_service.balances_of(session, account, until=start)).get(currency, 0)
    running = opening
    lines = []
    for movement in await ledger_service.movements_of(session, account, start, end):
        if movement.currency != currency:
            continue
        running += movement.amount_cents
        lines.append(StatementLine(at=movement.at, kind=movement.kind, order_no=movement.order_no,
                                   currency=movement.currency, amount_cents=movement.amount_cents,
                                   order_paid_cents=movement.gross_cents, balance_after_cents=running))
    return opening, lines
