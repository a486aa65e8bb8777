"""The staff-login and order-lookup guess limits hold when the guesses arrive all at once: each attempt takes
its place in the count before it is checked, so `limit` wrong answers are heard and the rest get 429."""

from __future__ import annotations

import asyncio
import os
import secrets
import uuid
from collections import Counter

import httpx
import pytest

from faults.support import QuanyiProcess
from quanyi.risk.service import RedisRateLimiter
from staff.staff_helpers import PASSWORD, make_staff

REDIS_URL = os.environ.get("QUANYI_TEST_REDIS_URL")
needs_redis = pytest.mark.skipif(not REDIS_URL, reason="QUANYI_TEST_REDIS_URL not set")
LIMIT = 5
GUESSES = 30


@pytest.fixture
def limits(shop):
    s = shop.ctx.settings
    s.staff_login_max_failures_per_user = LIMIT
    s.staff_login_max_failures_per_ip = 1_000_000  # the two-process test shares 127.0.0.1
    s.lookup_max_failures_per_order = LIMIT
    s.lookup_max_failures_per_ip = 1_000_000
    return s


@pytest.fixture
async def redis_limiter(shop):
    if not REDIS_URL:
        pytest.skip("QUANYI_TEST_REDIS_URL not set")
    database_limiter = shop.ctx.limiter
    shop.ctx.limiter = RedisRateLimiter(REDIS_URL, prefix=f"quanyi-test:{uuid.uuid4().hex}:")
    yield shop.ctx.limiter
    await shop.ctx.limiter.close()
    shop.ctx.limiter = database_limiter


async def _login(shop, username: str, password: str) -> int:
    response = await shop.client.post("/api/staff/login", json={"username": username, "password": password})
    if response.status_code == 429:
        assert int(response.headers["Retry-After"]) == shop.ctx.settings.staff_login_window_seconds
        assert response.json()["code"] == "too_many_attempts"
    return response.status_code


async def _lookup(shop, order_no: str, contact: str) -> int:
    response = await shop.client.post("/api/orders/lookup", json={"order_no": order_no, "contact": contact})
    if response.status_code == 429:
        assert int(response.headers["Retry-After"]) == shop.ctx.settings.lookup_window_seconds
    return response.status_code


async def _concurrent_wrong_logins_are_capped(shop) -> None:
    await make_staff(shop, "heidi", "admin")
    statuses = await asyncio.gather(*[_login(shop, "heidi", f"wrong-guess-{i}") for i in range(GUESSES)])
    assert Counter(statuses) == {401: LIMIT, 429: GUESSES - LIMIT}
    # The limit is used up: even the right password waits for the window.
    assert await _login(shop, "heidi", PASSWORD) == 429


async def _concurrent_lookup_guesses_are_capped(shop, order) -> None:
    statuses = await asyncio.gather(*[_lookup(shop, order["order_no"], f"guess{i}@example.com")
                                      for i in range(GUESSES)])
    assert Counter(statuses) == {404: LIMIT, 429: GUESSES - LIMIT}
    assert await _lookup(shop, order["order_no"], "buyer@example.com") == 429


async def test_concurrent_wrong_logins_for_one_user_get_at_most_the_limit_of_401s(shop, limits):
    await _concurrent_wrong_logins_are_capped(shop)


async def test_concurrent_lookup_guesses_on_one_order_get_at_most_the_limit_of_404s(shop, limits, order):
    await _concurrent_lookup_guesses_are_capped(shop, order)


async def test_concurrent_wrong_logins_are_capped_with_redis_counters(shop, limits, redis_limiter):
    await _concurrent_wrong_logins_are_capped(shop)


async def test_concurrent_lookup_guesses_are_capped_with_redis_counters(shop, limits, redis_limiter, order):
    await _concurrent_lookup_guesses_are_capped(shop, order)


async def test_successful_logins_leave_the_failure_limit_untouched(shop, limits):
    await make_staff(shop, "ivan", "admin")
    shop.ctx.settings.staff_login_max_failures_per_user = 2
    for _ in range(4):
        assert await _login(shop, "ivan", PASSWORD) == 200
    assert [await _login(shop, "ivan", "guess") for _ in range(3)] == [401, 401, 429]


async def test_concurrent_right_answers_amid_guesses_never_add_failures(shop, limits, order):
    """Right and wrong lookups at once: the right ones give their place back, so exactly `limit` guesses are
    heard in all, however the two kinds interleave."""
    right = [_lookup(shop, order["order_no"], "buyer@example.com") for _ in range(10)]
    wrong = [_lookup(shop, order["order_no"], f"guess{i}@example.com") for i in range(20)]
    statuses = await asyncio.gather(*right, *wrong)
    assert statuses.count(404) <= LIMIT
    # Whatever was refused while answers were in flight, the count settles at the wrong answers heard.
    heard = statuses.count(404)
    more = [await _lookup(shop, order["order_no"], "again@example.com") for _ in range(LIMIT - heard + 1)]
    assert more == [404] * (LIMIT - heard) + [429]


@pytest.mark.parametrize("counters", ["database", pytest.param("redis", marks=needs_redis)])
async def test_guesses_spread_over_two_server_processes_are_capped(shop, limits, order, settings, tmp_path,
                                                                   counters):
    """Each process runs its own argon2 threads and connections: the count is shared only through the
    database or Redis."""
    username = f"judy{secrets.token_hex(4)}"  # Redis counters outlive the test: a name no other run uses
    await make_staff(shop, username, "admin")
    env = {"QUANYI_NOTIFICATION_WORKER_IN_SERVE": "false",
           "QUANYI_REDIS_URL": REDIS_URL if counters == "redis" else ""}
    servers = []
    try:
        for i in range(2):
            servers.append(QuanyiProcess.server(settings, tmp_path, name=f"server{i}", env=env))
        async with httpx.AsyncClient(timeout=60) as http:
            logins = await asyncio.gather(*[
                http.post(f"{servers[i % 2].url}/api/staff/login",
                          json={"username": username, "password": f"wrong-guess-{i}"}) for i in range(GUESSES)])
            lookups = await asyncio.gather(*[
                http.post(f"{servers[i % 2].url}/api/orders/lookup",
                          json={"order_no": order["order_no"], "contact": f"guess{i}@example.com"})
                for i in range(GUESSES)])
            right = await http.post(f"{servers[0].url}/api/staff/login",
                                    json={"username": username, "password": PASSWORD})
    finally:
        for server in servers:
            server.stop()
    assert Counter(r.status_code for r in logins) == {401: LIMIT, 429: GUESSES - LIMIT}
    assert Counter(r.status_code for r in lookups) == {404: LIMIT, 429: GUESSES - LIMIT}
    assert right.status_code == 429
