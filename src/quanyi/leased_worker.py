"""The loop shared by the shop's background workers (notification outbox, supplier fulfilment): each round
claims a batch of due rows under a lease (SKIP LOCKED) and works them; a worker drains until nothing is due,
sleeps, and survives a failed round. Subclasses give `run_once` and the names below."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid

__all__ = ["LeasedWorker", "worker_owner"]

logger = logging.getLogger(__name__)


def worker_owner() -> str:
    """A name for this worker that no other worker shares: host, process, random part."""
    return f"{socket.gethostname()[:30]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class LeasedWorker:
    kind = "worker"  # for the log: "notification worker", "fulfilment worker"
    max_batches = 1000

    async def run_once(self) -> int:
        """Claim one batch and work it; returns how many rows were claimed."""
        raise NotImplementedError

    def poll_seconds(self) -> float:
        raise NotImplementedError

    def started_message(self) -> str:
        return f"{self.kind} started"

    async def drain(self, *, max_batches: int | None = None) -> int:
        """Work until nothing is due (rows due again at once included)."""
        total = 0
        for _ in range(max_batches or self.max_batches):
            count = await self.run_once()
            if count == 0:
                break
            total += count
        return total

    async def run_forever(self) -> None:
        logger.info("%s", self.started_message())
        while True:
            try:
                await self.drain()
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("%s round failed; will retry", self.kind)
            await asyncio.sleep(self.poll_seconds())
