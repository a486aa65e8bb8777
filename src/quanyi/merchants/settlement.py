"""Merchant settlement (商户结算): balances with the refund-window hold, withdrawals (提现) and their payout, and
statements (对账单) per closed period. Every number is read from the ledger (`merchant_payable:<code>`).

Available to withdraw = what the platform owes the merchant - earnings of orders delivered within the hold
period (they may still be refunded) - withdrawals requested or approved and not yet paid. A request takes the
merchant row lock, so two concurrent requests can never both spend the same available money.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from quanyi.db import utcnow
from quanyi.errors import Conflict, InvalidInput, NotFound
from quanyi.ledger import service as ledger_service
from quanyi.ledger.withdrawals import WithdrawalBook
from quanyi.merchants.models import Merchant, Withdrawal, WithdrawalStatus
from quanyi.scope import PLATFORM, Scope

__all__ = [
    "Balance", "WithdrawalNotFound", "InvalidWithdrawal", "WithdrawalExceedsBalance", "WithdrawalConflict",
    "balances", "request_withdrawal", "approve_withdrawal", "reject_withdrawal", "pay_withdrawal",
    "get_withdrawal", "list_withdrawals",
]


class WithdrawalNotFound(NotFound):
    code = "withdrawal_not_found"


class InvalidWithdrawal(InvalidInput):
    code = "invalid_withdrawal"


class WithdrawalExceedsBalance(Conflict):
    code = "withdrawal_exceeds_balance"


class WithdrawalConflict(Conflict):
    code = "withdrawal_conflict"


# The moves of a withdrawal and the decisions on its row (ledger/withdrawals.py, shared with promoters).
_BOOK: WithdrawalBook[Withdrawal] = WithdrawalBook(
    model=Withdrawal, owner=Withdrawal.merchant_id, status=WithdrawalStatus, prefix="WD", noun="withdrawal",
    not_found=WithdrawalNotFound, invalid=InvalidWithdrawal, conflict=WithdrawalConflict)


@dataclass(frozen=True, slots=True)
class Balance:
    currency: str
    balance_cents: int  # what the platform owes the merchant
    held_cents: int  # of it, earnings still inside the refund window
    reserved_cents: int  # withdrawals requested or approved, not yet paid
    available_cents: int  # what may be withdrawn now


def hold_days(merchant: Merchant, default_days: int) -> int:
    return merchant.hold_days if merchant.hold_days is not None else default_days


async def balances(*, session: AsyncSession, merchant: Merchant, default_hold_days: int,
                   now: dt.datetime | None = None) -> dict[str, Balance]:
    """The merchant's money at the platform per currency."""
    now = now or utcnow()
    owed = await ledger_service.payable_balances(session, merchant.code)
    held = await ledger_service.held_earnings(session, merchant.code,
                                              now - dt.timedelta(days=hold_days(merchant, default_hold_days)))
    reserved, _ = await _BOOK.totals(session, merchant.id)
    result = {}
    for currency in sorted(set(owed) | set(held) | set(reserved)):
        balance, hold, taken = owed.get(currency, 0), held.get(currency, 0), reserved.get(currency, 0)
        result[currency] = Balance(currency=currency, balance_cents=balance, held_cents=hold, reserved_cents=taken,
                                   available_cents=max(0, balance - hold - taken))
    return result


async def request_withdrawal(
    *, session: AsyncSession, merchant: Merchant, amount_cents: int, currency: str, note: str, actor: str,
    default_hold_days: int, request_key: str | None = None, now: dt.datetime | None = None,
) -> tuple[Withdrawal, bool]:
    """Ask to be paid `amount_cents` of the available balance. Returns (withdrawal, created); a repeated
    request_key returns the first request. The caller passes the merchant locked (FOR UPDATE): requests of one
    merchant take turns, so the available balance checked here cannot be spent twice."""
    now = now or utcnow()
    if merchant.self_operated:
        raise InvalidWithdrawal("the platform's own store has no merchant balance to withdraw")
    existing = await _BOOK.repeated(session, request_key=request_key, owner_id=merchant.id,
                                    amount_cents=amount_cents, currency=currency)
    if existing is not None:
        return existing, False
    if amount_cents <= 0:
        raise InvalidWithdrawal("the amount must be positive")
    available = (await balances(session=session, merchant=merchant, default_hold_days=default_hold_days,
                                now=now)).get(currency)
    if available is None or amount_cents > available.available_cents:
        raise WithdrawalExceedsBalance(
            "this is more than is available to withdraw (earnings inside the refund window are held)",
            available_cents=available.available_cents if available else 0,
            held_cents=available.held_cents if available else 0)
    withdrawal = Withdrawal(withdrawal_no=_BOOK.new_no(), merchant_id=merchant.id, request_key=request_key,
                            amount_cents=amount_cents, currency=currency, status=WithdrawalStatus.REQUESTED.value,
                            note=note[:500], requested_by=actor[:64], requested_at=now)
    session.add(withdrawal)
    await session.flush()
    return withdrawal, True


async def get_withdrawal(*, session: AsyncSession, withdrawal_no: str, scope: Scope = PLATFORM,
                         lock: bool = False) -> Withdrawal:
    return await _BOOK.get(session, withdrawal_no, lock=lock, where=scope.where(Withdrawal.merchant_id))


async def list_withdrawals(*, session: AsyncSession, scope: Scope = PLATFORM, status: str | None = None,
                           merchant_id: int | None = None, limit: int = 200) -> Sequence[Withdrawal]:
    stmt = select(Withdrawal).where(scope.where(Withdrawal.merchant_id)).order_by(Withdrawal.id.desc()).limit(limit)
    if status is not None:
        stmt = stmt.where(Withdrawal.status == status)
    if merchant_id is not None:
        stmt = stmt.where(Withdrawal.merchant_id == merchant_id)
    return (await session.scalars(stmt)).all()


async def approve_withdrawal(*, session: AsyncSession, withdrawal_no: str, actor: str, reason: str,
                             now: dt.datetime | None = None) -> Withdrawal:
    """The platform agrees to pay (审核通过); the money stays reserved until the payout is recorded."""
    return await _BOOK.review(session, withdrawal_no=withdrawal_no, approve=True, actor=actor, reason=reason,
                              now=now)


async def reject_withdrawal(*, session: AsyncSession, withdrawal_no: str, actor: str, reason: str,
                            now: dt.datetime | None = None) -> Withdrawal:
    """The platform refuses (with the reason the merchant sees); the amount is available again."""
    return await _BOOK.review(session, withdrawal_no=withdrawal_no, approve=False, actor=actor, reason=reason,
                              now=now)


async def pay_withdrawal(*, session: AsyncSession, withdrawal_no: str, actor: str, payout_reference: str,
                         now: dt.datetime | None = None) -> Withdrawal:
    """Record the payout (打款记录) of an approved withdrawal: the ledger moves it out of the merchant's payable."""
    now = now or utcnow()
    withdrawal, reference = await _BOOK.mark_paid(session, withdrawal_no=withdrawal_no, actor=actor,
                                                  payout_reference=payout_reference, now=now)
    merchant = await session.get(Merchant, withdrawal.merchant_id)
    assert merchant is not None
    await ledger_service.record_withdrawal_paid(
        session, merchant_code=merchant.code, withdrawal_no=withdrawal.withdrawal_no,
        amount_cents=withdrawal.amount_cents, currency=withdrawal.currency, actor=actor, payout_reference=reference,
        now=now)
    return withdrawal
