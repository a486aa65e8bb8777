"""Sold-out memo (售罄标记): a process remembers for a moment which SKUs it just found sold out.

In a flash sale most checkouts arrive after the last key is gone; without the memo each of them costs a
risk screening and a transaction only to learn that again. Only "sold out" is remembered, never "in stock",
so the memo can refuse a buyer for at most `ttl` seconds after stock comes back (a released reservation,
an import, a supplier push in another process), and can never sell what is not there. Stock changes this
process makes through `forget` end the memo at once.
"""

from __future__ import annotations

import time
from collections.abc import Callable

__all__ = ["SoldOutMemo"]


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
