"""Staff login: sessions, permissions on the admin API, and the brute-force limit."""

from __future__ import annotations

import datetime as dt
import time

import pytest

from quanyi.staff import service as staff_service
from staff.staff_helpers import PASSWORD, login, make_staff, staff_headers


async def test_login_gives_a_token_that_identifies_the_staff_member_and_logout_ends_it(shop):
    headers = await staff_headers(shop, "alice", "card_keys.reveal")
    me = await shop.client.get("/api/staff/me", headers=headers)
    assert me.json() == {"username": "alice", "merchant_id": None, "permissions": ["card_keys.reveal"], "roles": []}
    assert (await shop.client.post("/api/staff/logout", headers=headers)).status_code == 204
    assert (await shop.client.get("/api/staff/me", headers=headers)).status_code == 401


async def test_admin_endpoints_take_the_admin_token_or_staff_with_the_admin_permission(shop, sku):
    url = f"/api/admin/skus/{sku.id}/stock"
    assert (await shop.client.get(url, headers=shop.admin)).status_code == 200
    assert (await shop.client.get(url)).status_code == 401
    assert (await shop.client.get(url, headers={"Authorization": "Bearer qs_not-a-session"})).status_code == 401
    narrow = await staff_headers(shop, "bob", "leaks.trace")
    denied = await shop.client.get(url, headers=narrow)
    assert denied.status_code == 403 and denied.json()["code"] == "permission_denied"
    boss = await staff_headers(shop, "carol", "admin")
    assert (await shop.client.get(url, headers=boss)).status_code == 200


async def test_expired_sessions_and_disabled_staff_are_refused(shop):
    await make_staff(shop, "dave", "admin")
    limits = staff_service.LoginLimits(window_seconds=60, max_failures_per_ip=10, max_failures_per_user=10,
                                       session_hours=1)
    long_ago = dt.datetime.now(dt.UTC) - dt.timedelta(hours=2)
    token, _, _ = await staff_service.login(db=shop.ctx.db, limiter=shop.ctx.limiter, limits=limits,
                                            username="dave", password=PASSWORD, ip="", user_agent="", now=long_ago)
    assert (await shop.client.get("/api/staff/me", headers={"Authorization": f"Bearer {token}"})).status_code == 401

    fresh = await login(shop, "dave")
    async with shop.ctx.db.transaction() as session:
        await staff_service.set_active(session=session, username="dave", active=False)
    assert (await shop.client.get("/api/staff/me", headers=fresh)).status_code == 401
    refused = await shop.client.post("/api/staff/login", json={"username": "dave", "password": PASSWORD})
    assert refused.status_code == 401 and refused.json()["detail"] == "wrong username or password"


async def _timed_login(shop, username: str, password: str) -> tuple[float, int, dict]:
    started = time.perf_counter()
    response = await shop.client.post("/api/staff/login", json={"username": username, "password": password})
    return time.perf_counter() - started, response.status_code, response.json()


@pytest.mark.real_password_hashing  # the time of one real argon2 check is what must not differ
@pytest.mark.serial  # compares timings: no other test competes for the CPU meanwhile
async def test_unknown_user_and_wrong_password_get_the_same_answer_in_the_same_time(shop):
    await make_staff(shop, "erin", "admin")
    shop.ctx.settings.staff_login_max_failures_per_user = 100
    shop.ctx.settings.staff_login_max_failures_per_ip = 100
    wrong, unknown = [], []
    for _ in range(5):
        wrong.append(await _timed_login(shop, "erin", "not the password"))
        unknown.append(await _timed_login(shop, "nobody-here", "not the password"))
    assert {(status, body["code"], body["detail"]) for _, status, body in wrong + unknown} == {
        (401, "login_failed", "wrong username or password")}
    # The fastest of each: a stall of a loaded machine only ever adds time, so the minimum is what the work costs.
    wrong_time = min(t for t, _, _ in wrong)
    unknown_time = min(t for t, _, _ in unknown)
    # Both verify one argon2 hash; without the dummy hash an unknown user answers ~100x faster.
    assert 0.33 < unknown_time / wrong_time < 3, (unknown_time, wrong_time)


async def test_brute_force_on_one_username_gets_429_with_retry_after_even_for_the_right_password(shop):
    await make_staff(shop, "frank", "admin")
    shop.ctx.settings.staff_login_max_failures_per_user = 3
    for _ in range(3):
        assert (await _timed_login(shop, "frank", "guess"))[1] == 401
    limited = await shop.client.post("/api/staff/login", json={"username": "frank", "password": PASSWORD})
    assert limited.status_code == 429
    assert limited.json()["code"] == "too_many_attempts"
    assert int(limited.headers["Retry-After"]) == shop.ctx.settings.staff_login_window_seconds
    # Unknown usernames are limited the same way (nothing tells them apart).
    for _ in range(3):
        assert (await _timed_login(shop, "ghost", "guess"))[1] == 401
    assert (await _timed_login(shop, "ghost", "guess"))[1] == 429


async def test_brute_force_from_one_ip_across_usernames_gets_429(shop):
    await make_staff(shop, "grace", "admin")
    shop.ctx.settings.staff_login_max_failures_per_ip = 4
    for n in range(4):
        assert (await _timed_login(shop, f"user{n}", "guess"))[1] == 401
    limited = await shop.client.post("/api/staff/login", json={"username": "grace", "password": PASSWORD})
    assert limited.status_code == 429 and "Retry-After" in limited.headers


async def test_bad_login_bodies_are_4xx(shop):
    for body in ({}, {"username": "x"}, {"username": "", "password": "p"}, {"username": "x" * 65, "password": "p"},
                 {"username": "x", "password": "p", "extra": 1}):
        assert (await shop.client.post("/api/staff/login", json=body)).status_code == 422
