"""Rate-limit counters are exact under concurrency, on the database and on Redis."""

from __future__ import annotations

import asyncio
import os
import uuid

import pytest

from quanyi.risk.service import DatabaseRateLimiter, RedisRateLimiter

REDIS_URL = os.environ.get("QUANYI_TEST_REDIS_URL")


async def test_database_counter_counts_every_concurrent_hit(ctx):
    limiter = DatabaseRateLimiter(ctx.db)
    counts = await asyncio.gather(*[limiter.hit("t:concurrent", 60) for _ in range(40)])
    assert sorted(counts) == list(range(1, 41))
    assert await limiter.count("t:concurrent", 60) == 40
    assert await limiter.count("t:other", 60) == 0


async def test_database_counters_are_purged_after_their_window(ctx):
    limiter = DatabaseRateLimiter(ctx.db)
    await limiter.hit("t:purge", 1)
    await asyncio.sleep(1.1)
    assert await limiter.purge(older_than_seconds=1) >= 1
    assert await limiter.count("t:purge", 1) == 0


@pytest.mark.skipif(not REDIS_URL, reason="QUANYI_TEST_REDIS_URL not set")
async def test_redis_counter_counts_every_concurrent_hit():
    limiter = RedisRateLimiter(REDIS_URL, prefix=f"quanyi-test:{uuid.uuid4().hex}:")  # type: ignore[arg-type]
    try:
        counts = await asyncio.gather(*[limiter.hit("t:concurrent", 60) for _ in range(40)])
        assert sorted(counts) == list(range(1, 41))
        assert await limiter.count("t:concurrent", 60) == 40
    finally:
        await limiter.close()
