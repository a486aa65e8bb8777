"""Rate limits (频率限制) as fixed-window counters, shared across processes.

The database backend works on SQLite and PostgreSQL with an atomic upsert; with QUANYI_REDIS_URL set,
counters live in Redis instead (INCR + EXPIRE), which takes the write load off the database. Each
counter operation commits on its own, so a refused request still leaves its mark.

Guess limits (staff login, order lookup) go through `reserve_attempt`: an attempt takes its place in the
count before it is checked, so concurrent guesses cannot all pass a count read before any of them failed.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy import delete, select, update
from sqlalchemy.dialects import postgresql, sqlite

from quanyi.db import Database
from quanyi.risk.models import RateCounter

__all__ = ["RateLimiter", "DatabaseRateLimiter", "RedisRateLimiter", "build_rate_limiter", "AttemptSlot",
           "reserve_attempt"]


class RateLimiter(Protocol):
    async def count(self, key: str, window_seconds: int, *, at: float | None = None) -> int:
        """Hits recorded for `key` in the window of `at` (default: now)."""
        ...

    async def hit(self, key: str, window_seconds: int, *, at: float | None = None) -> int:
        """Record one hit in the window of `at` (default: now); return the count including it, atomically."""
        ...

    async def release(self, key: str, window_seconds: int, *, at: float) -> None:
        """Take back one hit made at `at` (counted in that window), never going below zero."""
        ...


def _window(window_seconds: int, now: float | None = None) -> int:
    now = time.time() if now is None else now
    return int(now // window_seconds) * window_seconds


class DatabaseRateLimiter:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def count(self, key: str, window_seconds: int, *, at: float | None = None) -> int:
        async with self._db.read_session() as session:
            value = await session.scalar(
                select(RateCounter.count).where(
                    RateCounter.key == key, RateCounter.window_start == _window(window_seconds, at)
                )
            )
        return int(value or 0)

    async def hit(self, key: str, window_seconds: int, *, at: float | None = None) -> int:
        dialect = postgresql if self._db.dialect == "postgresql" else sqlite
        stmt = (
            dialect.insert(RateCounter)
            .values(key=key, window_start=_window(window_seconds, at), count=1)
            # Atomic increment: concurrent hits from many processes never lose a count.
            .on_conflict_do_update(
                index_elements=["key", "window_start"], set_={"count": RateCounter.count + 1}
            )
            .returning(RateCounter.count)
        )
        async with self._db.transaction() as session:
            return int((await session.execute(stmt)).scalar_one())

    async def release(self, key: str, window_seconds: int, *, at: float) -> None:
        async with self._db.transaction() as session:
            # One row update, atomic against concurrent hits like the upsert above.
            await session.execute(
                update(RateCounter)
                .where(RateCounter.key == key, RateCounter.window_start == _window(window_seconds, at),
                       RateCounter.count > 0)
                .values(count=RateCounter.count - 1)
            )

    async def purge(self, older_than_seconds: int) -> int:
        async with self._db.transaction() as session:
            result = await session.execute(
                delete(RateCounter).where(RateCounter.window_start < time.time() - older_than_seconds)
            )
        return int(result.rowcount or 0)  # type: ignore[attr-defined]


# KEYS[1] counter. Decrement a live counter only: DECR on an expired key would create -1 without a TTL.
_RELEASE = """
local value = tonumber(redis.call('GET', KEYS[1]) or '0')
if value > 0 then return redis.call('DECR', KEYS[1]) end
return 0
"""


class RedisRateLimiter:
    def __init__(self, url: str, *, prefix: str = "quanyi:rl:") -> None:
        from redis.asyncio import Redis  # optional dependency: quanyi[redis]

        self._redis = Redis.from_url(url)
        self._prefix = prefix
        self._release = self._redis.register_script(_RELEASE)

    def _key(self, key: str, window_seconds: int, at: float | None = None) -> str:
        return f"{self._prefix}{key}:{_window(window_seconds, at)}"

    async def count(self, key: str, window_seconds: int, *, at: float | None = None) -> int:
        value = await self._redis.get(self._key(key, window_seconds, at))
        return int(value or 0)

    async def hit(self, key: str, window_seconds: int, *, at: float | None = None) -> int:
        redis_key = self._key(key, window_seconds, at)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.incr(redis_key)
            pipe.expire(redis_key, window_seconds * 2)
            count, _ = await pipe.execute()
        return int(count)

    async def release(self, key: str, window_seconds: int, *, at: float) -> None:
        await self._release(keys=[self._key(key, window_seconds, at)])

    async def purge(self, older_than_seconds: int) -> int:
        return 0  # keys expire by themselves

    async def close(self) -> None:
        await self._redis.aclose()


def build_rate_limiter(db: Database, redis_url: str | None, *,
                       prefix: str = "quanyi:rl:") -> DatabaseRateLimiter | RedisRateLimiter:
    """`prefix`: the shop's own Redis namespace (Settings.redis_prefix), so shops sharing a Redis never mix limits."""
    return RedisRateLimiter(redis_url, prefix=prefix) if redis_url else DatabaseRateLimiter(db)


@dataclass(frozen=True)
class AttemptSlot:
    """An attempt's place in the failure counts, taken before the attempt is checked."""

    limiter: RateLimiter
    keys: tuple[str, ...]
    window_seconds: int
    at: float

    async def give_back(self) -> None:
        """The attempt succeeded: it is no failure, so it leaves the counts as they were."""
        for key in self.keys:
            await self.limiter.release(key, self.window_seconds, at=self.at)


async def reserve_attempt(
    limiter: RateLimiter, limits: Sequence[tuple[str, int]], *, window_seconds: int
) -> AttemptSlot | None:
    """Count one attempt against each (key, max failures) before checking it; None when a count would pass
    its limit (then nothing stays counted). A failed attempt keeps its slot: that is its failure recorded.

    Each hit is one atomic increment that returns the new count, so however many attempts run at once, in
    one process or many, at most `max failures` of them hold a slot per key: an attempt in flight counts
    until it succeeds and gives its place back. An attempt that dies on an unexpected error keeps its slot
    (fails closed)."""
    at = time.time()
    taken: list[str] = []
    for key, max_failures in limits:
        count = await limiter.hit(key, window_seconds, at=at)
        taken.append(key)
        if count > max_failures:
            await AttemptSlot(limiter, tuple(taken), window_seconds, at).give_back()
            return None
    return AttemptSlot(limiter, tuple(taken), window_seconds, at)
