"""TEST PEER — how a supplier simulator delivers callbacks (not production code): recharge results to the order's
notify URL, retried until the receiver answers the dialect's ack, and stock/price pushes on demand; each
message sent as many times as the duplicates knob says, and every delivery recorded.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from dataclasses import replace
from typing import Literal

import httpx

from quanyi.testpeers.suppliers.records import CallbackRecord, Outgoing, SimOrder, SimProduct

__all__ = ["CallbackSender"]


class CallbackSender:
    """Mixin of SupplierSimulator; the dialect provides recharge_callback, stock_push and ack_accepted."""

    products: dict[str, SimProduct]
    push_url: str | None
    callbacks: list[CallbackRecord]
    _lock: threading.RLock
    _stopping: threading.Event
    _duplicates: int
    _callbacks_enabled: bool
    _ack_retries: int

    def recharge_callback(self, order: SimOrder) -> Outgoing:
        raise NotImplementedError

    def stock_push(self, products: Sequence[SimProduct]) -> list[Outgoing]:
        raise NotImplementedError

    def ack_accepted(self, status_code: int, body: bytes) -> bool:
        raise NotImplementedError

    async def _sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)

    def push_stock(self, product_codes: Sequence[str] | None = None, *, url: str | None = None) -> list[CallbackRecord]:
        """Push current stock and cost of these products (default: all) to the push URL; blocking."""
        target, outgoing = self._push_plan(product_codes, url)
        records = []
        with httpx.Client(timeout=30) as client:
            for message in outgoing:
                for _ in range(self._duplicates):
                    try:
                        response = client.post(target, content=message.content, headers=message.headers)
                        records.append(self._note(target, "stock", message, response.status_code, response.content))
                    except httpx.HTTPError:
                        records.append(self._note(target, "stock", message, None, b""))
        return records

    async def apush_stock(self, product_codes: Sequence[str] | None = None, *,
                          url: str | None = None) -> list[CallbackRecord]:
        """push_stock for async tests whose receiving app runs in the caller's event loop."""
        target, outgoing = self._push_plan(product_codes, url)
        records = []
        async with httpx.AsyncClient(timeout=30) as client:
            for message in outgoing:
                for _ in range(self._duplicates):
                    try:
                        response = await client.post(target, content=message.content, headers=message.headers)
                        records.append(self._note(target, "stock", message, response.status_code, response.content))
                    except httpx.HTTPError:
                        records.append(self._note(target, "stock", message, None, b""))
        return records

    async def _deliver_recharge(self, order: SimOrder) -> None:
        if not self._callbacks_enabled or not order.notify_url:
            return
        # Generous: a shop under load (CI) may take seconds to answer; a timeout here would look like a
        # lost callback and only polling could finish the recharge.
        async with httpx.AsyncClient(timeout=20) as client:
            for _ in range(self._duplicates):
                for _attempt in range(1 + self._ack_retries):  # the platform retries until it hears its ack
                    if self._stopping.is_set():
                        return
                    message = self.recharge_callback(order)
                    try:
                        response = await client.post(order.notify_url, content=message.content,
                                                     headers=message.headers)
                        record = self._note(order.notify_url, "recharge", message, response.status_code,
                                            response.content)
                    except httpx.HTTPError:
                        record = self._note(order.notify_url, "recharge", message, None, b"")
                    if record.accepted:
                        break
                    await self._sleep(0.05)

    def _push_plan(self, product_codes: Sequence[str] | None, url: str | None) -> tuple[str, list[Outgoing]]:
        target = url or self.push_url
        if not target:
            raise RuntimeError("no push URL: call set_push_url() or pass url=")
        with self._lock:
            chosen = [replace(self.products[c]) for c in (product_codes or list(self.products))]
        return target, self.stock_push(chosen)

    def _note(self, url: str, topic: Literal["recharge", "stock"], message: Outgoing, status: int | None,
              answer: bytes) -> CallbackRecord:
        accepted = status is not None and self.ack_accepted(status, answer)
        record = CallbackRecord(url=url, topic=topic, body=message.content, headers=dict(message.headers),
                                status_code=status, answer=answer, accepted=accepted)
        self.callbacks.append(record)
        return record
