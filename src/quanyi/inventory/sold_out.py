"""Sold-out memo (售罄标记), the stock gate: a process remembers for a moment which SKUs it just found sold out.

In a flash sale most checkouts arrive after the last key is gone; without the memo each of them costs a
risk screening and a transaction only to learn that again. Only "sold out" is remembered, never "in stock",
so the memo can refuse a buyer for at most `ttl` seconds after stock comes back in another process, and can
never sell what is not there: the database stays the truth, the memo only refuses early. Stock coming back
through this process re-arms it at once: every service that returns stock (an import, supplier codes, a
released reservation of an expired, cancelled or refused order, a supplier's stock report) calls
`stock_returned` in its transaction, which clears the memo when that transaction commits.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from sqlalchemy.ext.asyncio import AsyncSession

from quanyi.db import Database, after_commit

__all__ = ["SoldOutMemo", "install_stock_gate", "stock_returned"]

_GATE = "quanyi.inventory.stock_gate"


class SoldOutMemo:
    def __init__(self, ttl_seconds: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl_seconds
        self._clock = clock
        self._until: dict[int, float] = {}

    def any_sold_out(self) -> bool:
        """Whether any SKU may be remembered: a dict lookup, so the checkout lane skips reading bodies otherwise."""
        return bool(self._until)

    def is_sold_out(self, sku_id: int) -> bool:
        until = self._until.get(sku_id)
        if until is None:
            return False
        if self._clock() < until:
            return True
        self._until.pop(sku_id, None)
        return False

    def remember(self, sku_id: int) -> None:
        if self.ttl > 0:
            self._until[sku_id] = self._clock() + self.ttl

    def forget(self, sku_id: int | None = None) -> None:
        if sku_id is None:
            self._until.clear()
        else:
            self._until.pop(sku_id, None)


def install_stock_gate(db: Database, memo: SoldOutMemo) -> None:
    """Let services re-arm this process's memo through any session of `db` (`stock_returned`)."""
    db.session_info[_GATE] = memo


def stock_returned(session: AsyncSession, sku_id: int | None = None) -> None:
    """Keys of `sku_id` (None: of some SKU) may be for sale again once this transaction commits."""
    memo = session.info.get(_GATE)
    if not isinstance(memo, SoldOutMemo) or not memo.any_sold_out():
        return

    async def rearm() -> None:
        memo.forget(sku_id)

    after_commit(session, rearm)
