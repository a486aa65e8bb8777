"""Money a gateway took that the shop owes back (重复付款 of an enterprise's online top-up: a second payment of a
request another trade already credited). Booked like a duplicate order payment, so the gateway's clearing account
holds every trade the gateway's statement lists:
- seen:      D gateway_clearing:<gw>   C refunds_payable   (`record_duplicate_receipt`)
- refunded:  D refunds_payable         C gateway_clearing:<gw>   (`record_duplicate_refunded`, when an operator
             records that it was refunded at the gateway)
Once per (gateway, trade no): the posting references are unique.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from quanyi.ledger import accounts
from quanyi.ledger.models import LedgerEntry
from quanyi.ledger.postings import Line, post, posting_by_reference

__all__ = ["duplicate_receipt_reference", "record_duplicate_receipt", "record_duplicate_refunded"]


def duplicate_receipt_reference(gateway: str, trade_no: str) -> str:
    return f"top_up_duplicate:{gateway}:{trade_no}"


async def record_duplicate_receipt(session: AsyncSession, *, gateway: str, trade_no: str, amount_cents: int,
                                   currency: str, memo: str, now: dt.datetime | None = None) -> bool:
    """The gateway took `amount_cents` in trade `trade_no` that the shop must give back: True when this call booked
    it (a repeat books nothing)."""
    _, created = await post(session, reference=duplicate_receipt_reference(gateway, trade_no),
                            kind="top_up_duplicate", memo=memo, now=now,
                            lines=[Line(accounts.gateway_clearing(gateway), amount_cents, currency),
                                   Line(accounts.REFUNDS_PAYABLE, -amount_cents, currency)])
    return created


async def record_duplicate_refunded(session: AsyncSession, *, gateway: str, trade_no: str, memo: str, actor: str,
                                    now: dt.datetime | None = None) -> bool:
    """The duplicate receipt of `trade_no` was refunded at the gateway: its booking reversed, once. A receipt never
    booked (seen before receipts were booked) has nothing to reverse: False."""
    receipt = await posting_by_reference(session, duplicate_receipt_reference(gateway, trade_no))
    if receipt is None:
        return False
    clearing = (await session.execute(select(LedgerEntry.amount_cents, LedgerEntry.currency).where(
        LedgerEntry.posting_id == receipt.id, LedgerEntry.amount_cents > 0))).one()  # the clearing debit
    amount, currency = int(clearing[0]), str(clearing[1])
    _, created = await post(session, reference=f"top_up_duplicate_refunded:{gateway}:{trade_no}",
                            kind="top_up_duplicate_refund", memo=memo, actor=actor, now=now,
                            lines=[Line(accounts.REFUNDS_PAYABLE, amount, currency),
                                   Line(accounts.gateway_clearing(gateway), -amount, currency)])
    return created
