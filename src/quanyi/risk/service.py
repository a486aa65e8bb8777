"""Rate limits (频率限制) as fixed-window counters, shared across processes.

The database backend works on SQLite and PostgreSQL with an atomic upsert; with QUANYI_REDIS_URL set,
counters live in Redis instead (INCR + EXPIRE), which takes the write load off the database. Each
counter operation commits on its own, so a refused request still leaves its mark.
"""

from __future__ import annotations

import time
from typing import Protocol

from sqlalchemy import delete, select
from sqlalchemy.dialects import postgresql, sqlite

from quanyi.db import Database
from quanyi.risk.models import RateCounter

__all__ = ["RateLimiter", "DatabaseRateLimiter", "RedisRateLimiter", "build_rate_limiter"]


class RateLimiter(Protocol):
    async def count(self, key: str, window_seconds: int) -> int:
        """Hits recorded for `key` in the current window."""
        ...

    async def hit(self, key: str, window_seconds: int) -> int:
        """Record one hit; return the count including it."""
        ...


def _window(window_seconds: int, now: float | None = None) -> int:
    now = time.time() if now is None else now
    return int(now // window_seconds) * window_seconds


class DatabaseRateLimiter:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def count(self, key: str, window_seconds: int) -> int:
        async with self._db.read_session() as session:
            value = await session.scalar(
                select(RateCounter.count).where(
                    RateCounter.key == key, RateCounter.window_start == _window(window_seconds)
                )
            )
        return int(value or 0)

    async def hit(self, key: str, window_seconds: int) -> int:
        dialect = postgresql if self._db.dialect == "postgresql" else sqlite
        stmt = (
            dialect.insert(RateCounter)
            .values(key=key, window_start=_window(window_seconds), count=1)
            # Atomic increment: concurrent hits from many processes never lose a count.
            .on_conflict_do_update(
                index_elements=["key", "window_start"], set_={"count": RateCounter.count + 1}
            )
            .returning(RateCounter.count)
        )
        async with self._db.transaction() as session:
            return int((await session.execute(stmt)).scalar_one())

    async def purge(self, older_than_seconds: int) -> int:
        async with self._db.transaction() as session:
            result = await session.execute(
                delete(RateCounter).where(RateCounter.window_start < time.time() - older_than_seconds)
            )
        return int(result.rowcount or 0)  # type: ignore[attr-defined]


class RedisRateLimiter:
    def __init__(self, url: str, *, prefix: str = "quanyi:rl:") -> None:
        from redis.asyncio import Redis  # optional dependency: quanyi[redis]

        self._redis = Redis.from_url(url)
        self._prefix = prefix

    def _key(self, key: str, window_seconds: int) -> str:
        return f"{self._prefix}{key}:{_window(window_seconds)}"

    async def count(self, key: str, window_seconds: int) -> int:
        value = await self._redis.get(self._key(key, window_seconds))
        return int(value or 0)

    async def hit(self, key: str, window_seconds: int) -> int:
        redis_key = self._key(key, window_seconds)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.incr(redis_key)
            pipe.expire(redis_key, window_seconds * 2)
            count, _ = await pipe.execute()
        return int(count)

    async def purge(self, older_than_seconds: int) -> int:
        return 0  # keys expire by themselves

    async def close(self) -> None:
        await self._redis.aclose()


def build_rate_limiter(db: Database, redis_url: str | None) -> DatabaseRateLimiter | RedisRateLimiter:
    return RedisRateLimiter(redis_url) if redis_url else DatabaseRateLimiter(db)
