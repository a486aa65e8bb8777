"""Rate-limit counters are exact under concurrency, on the database and on Redis, and so are the attempt slots
that the guess limits reserve with them."""

from __future__ import annotations

import asyncio
import os
import time
import uuid

import pytest

from quanyi.risk.service import DatabaseRateLimiter, RedisRateLimiter, reserve_attempt

REDIS_URL = os.environ.get("QUANYI_TEST_REDIS_URL")


async def test_database_counter_counts_every_concurrent_hit(ctx):
    limiter = DatabaseRateLimiter(ctx.db)
    at = time.time() // 60 * 60 + 30  # one window for all: "now" could cross a minute while 40 hits queue
    counts = await asyncio.gather(*[limiter.hit("t:concurrent", 60, at=at) for _ in range(40)])
    assert sorted(counts) == list(range(1, 41))
    assert await limiter.count("t:concurrent", 60, at=at) == 40
    assert await limiter.count("t:other", 60, at=at) == 0


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
        at = time.time() // 60 * 60 + 30  # one window for all (see the database counter's test)
        counts = await asyncio.gather(*[limiter.hit("t:concurrent", 60, at=at) for _ in range(40)])
        assert sorted(counts) == list(range(1, 41))
        assert await limiter.count("t:concurrent", 60, at=at) == 40
    finally:
        await limiter.close()


async def _slots_are_exact(limiter) -> None:
    limits = [("t:ip", 12), ("t:user", 5)]
    slots = await asyncio.gather(*[reserve_attempt(limiter, limits, window_seconds=60) for _ in range(30)])
    taken = [slot for slot in slots if slot is not None]
    assert len(taken) == 5
    # Refused attempts gave their places back; the taken ones hold theirs.
    assert (await limiter.count("t:ip", 60), await limiter.count("t:user", 60)) == (5, 5)
    await asyncio.gather(*[slot.give_back() for slot in taken])
    assert (await limiter.count("t:ip", 60), await limiter.count("t:user", 60)) == (0, 0)
    # A release goes to the window its hit was counted in, and never below zero (nor creates a counter).
    long_ago = time.time() - 3600
    await limiter.hit("t:old", 60, at=long_ago)
    await limiter.release("t:old", 60, at=long_ago)
    await limiter.release("t:old", 60, at=long_ago)
    await limiter.release("t:never", 60, at=time.time())
    assert await limiter.count("t:old", 60, at=long_ago) == 0
    assert await limiter.count("t:never", 60) == 0
    assert await limiter.hit("t:never", 60) == 1


async def test_database_attempt_slots_are_exact_under_concurrency(ctx):
    await _slots_are_exact(DatabaseRateLimiter(ctx.db))


@pytest.mark.skipif(not REDIS_URL, reason="QUANYI_TEST_REDIS_URL not set")
async def test_redis_attempt_slots_are_exact_under_concurrency():
    limiter = RedisRateLimiter(REDIS_URL, prefix=f"quanyi-test:{uuid.uuid4().hex}:")  # type: ignore[arg-type]
    try:
        await _slots_are_exact(limiter)
    finally:
        await limiter.close()
