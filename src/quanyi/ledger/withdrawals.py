"""A withdrawal's life (提现), the same for a merchant's earnings (merchants.settlement) and a promoter's commission
(promoters.settlement): requested -> approved -> paid, or rejected, by one table of moves; every decision is
recorded on the row (who, when, why) under the row's lock. Each owner keeps its own table, error codes, checks of
the amount and ledger posting; this is the part that is theirs alike."""

from __future__ import annotations

import datetime as dt
import enum
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from quanyi.db import utcnow
from quanyi.errors import Conflict, InvalidInput, NotFound

__all__ = ["WithdrawalRow", "WithdrawalBook"]

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


class WithdrawalRow(Protocol):
    withdrawal_no: str
    request_key: str | None
    amount_cents: int
    currency: str
    status: str
    reviewed_by: str | None
    reviewed_at: dt.datetime | None
    review_reason: str | None
    paid_by: str | None
    paid_at: dt.datetime | None
    payout_reference: str | None


W = TypeVar("W", bound=WithdrawalRow)


@dataclass(frozen=True)
class WithdrawalBook(Generic[W]):
    """One owner's withdrawals: its table (`model`, owned through the `owner` column), its status enum (values
    requested / approved / paid / rejected), number prefix, the noun its messages use and its error classes."""

    model: Any  # the mapped class of W
    owner: Any  # its owner id column (merchant_id, promoter_id)
    status: type[enum.StrEnum]
    prefix: str
    noun: str
    not_found: type[NotFound]
    invalid: type[InvalidInput]
    conflict: type[Conflict]

    @property
    def moves(self) -> Mapping[str, set[str]]:
        """The allowed moves of a withdrawal: the one table."""
        s = self.status
        return {s.REQUESTED: {s.APPROVED, s.REJECTED}, s.APPROVED: {s.PAID, s.REJECTED}}  # type: ignore[attr-defined]

    @property
    def open(self) -> tuple[str, str]:
        """Requested or approved: the amount stays reserved from what is available."""
        return self.status.REQUESTED.value, self.status.APPROVED.value  # type: ignore[attr-defined]

    def new_no(self) -> str:
        return self.prefix + "".join(secrets.choice(_ALPHABET) for _ in range(16))

    async def repeated(self, session: AsyncSession, *, request_key: str | None, owner_id: int, amount_cents: int,
                       currency: str) -> W | None:
        """The withdrawal an earlier request with this Idempotency-Key made (None: a new request); the key used
        for a different withdrawal is a conflict."""
        if request_key is None:
            return None
        existing: W | None = await session.scalar(select(self.model).where(self.model.request_key == request_key))
        if existing is not None and (getattr(existing, self.owner.key) != owner_id
                                     or existing.amount_cents != amount_cents or existing.currency != currency):
            raise self.conflict("this Idempotency-Key was already used for a different withdrawal")
        return existing

    async def totals(self, session: AsyncSession, owner_id: int) -> tuple[dict[str, int], dict[str, int]]:
        """(reserved, paid out) per currency: withdrawals requested or approved, and those paid."""
        rows = (await session.execute(
            select(self.model.currency, self.model.status, func.sum(self.model.amount_cents))
            .where(self.owner == owner_id).group_by(self.model.currency, self.model.status))).all()
        reserved: dict[str, int] = {}
        paid: dict[str, int] = {}
        for currency, status, total in rows:
            into = reserved if status in self.open else paid if status == self.status.PAID else None  # type: ignore[attr-defined]
            if into is not None:
                into[currency] = into.get(currency, 0) + int(total)
        return reserved, paid

    async def get(self, session: AsyncSession, withdrawal_no: str, *, lock: bool = False,
                  where: ColumnElement[bool] | None = None) -> W:
        stmt = select(self.model).where(self.model.withdrawal_no == withdrawal_no)
        if where is not None:
            stmt = stmt.where(where)
        if lock:
            stmt = stmt.with_for_update().execution_options(populate_existing=True)
        withdrawal: W | None = await session.scalar(stmt)
        if withdrawal is None:
            raise self.not_found(f"{self.noun} {withdrawal_no!r} does not exist")
        return withdrawal

    async def _decide(self, session: AsyncSession, withdrawal_no: str, target: str) -> W:
        # Row lock: two reviewers (or a double click) decide once; the second sees the first one's status.
        withdrawal = await self.get(session, withdrawal_no, lock=True)
        if target not in self.moves.get(withdrawal.status, set()):
            raise self.conflict(f"withdrawal {withdrawal_no} is {withdrawal.status}; it cannot become {target}",
                                withdrawal_status=withdrawal.status)
        return withdrawal

    def _reason(self, reason: str) -> str:
        reason = reason.strip()
        if not reason:
            raise self.invalid("a reason is required", field="reason")
        return reason[:500]

    async def review(self, session: AsyncSession, *, withdrawal_no: str, approve: bool, actor: str, reason: str,
                     now: dt.datetime | None = None) -> W:
        """Approve (审核通过: the money stays reserved until paid) or reject (available again), with the reason."""
        reason = self._reason(reason)
        target = self.status.APPROVED if approve else self.status.REJECTED  # type: ignore[attr-defined]
        withdrawal = await self._decide(session, withdrawal_no, target)
        withdrawal.status, withdrawal.reviewed_by = target.value, actor[:64]
        withdrawal.reviewed_at, withdrawal.review_reason = now or utcnow(), reason
        return withdrawal

    async def mark_paid(self, session: AsyncSession, *, withdrawal_no: str, actor: str, payout_reference: str,
                        now: dt.datetime) -> tuple[W, str]:
        """Record the payout (打款记录) of an approved withdrawal on its row; returns it and the reference. The
        owner then posts it in the ledger, in the same transaction."""
        reference = payout_reference.strip()
        if not reference:
            raise self.invalid("the payout reference (transfer number) is required", field="payout_reference")
        withdrawal = await self._decide(session, withdrawal_no, self.status.PAID)  # type: ignore[attr-defined]
        withdrawal.status, withdrawal.paid_by, withdrawal.paid_at = self.status.PAID.value, actor[:64], now  # type: ignore[attr-defined]
        withdrawal.payout_reference = reference[:128]
        return withdrawal, reference
