"""Sliding-window counters: exact under concurrency on the database and Redis, and shared by separate
server processes through Redis."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import subprocess
import sys
import time
import uuid

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy import select

from quanyi.orders import service as orders_service
from quanyi.orders.models import Order
from quanyi.risk import engine as risk_engine
from quanyi.risk.counters import DatabaseCounters, RedisCounters, fresh_member
from quanyi.testpeers.runner import free_port

REDIS_URL = os.environ.get("QUANYI_TEST_REDIS_URL")
needs_redis = pytest.mark.skipif(not REDIS_URL, reason="QUANYI_TEST_REDIS_URL not set")


async def _exact(counters) -> None:
    at = time.time()
    counts = await asyncio.gather(*[counters.hit("t:hits", window_seconds=60, at=at) for _ in range(40)])
    assert sorted(counts) == list(range(1, 41))
    assert await counters.count("t:hits", window_seconds=60, at=at) == 40
    await asyncio.gather(*[counters.record([("t:distinct", f"c{i % 7}")], at=at) for i in range(30)])
    assert await counters.count("t:distinct", window_seconds=60, at=at) == 7
    await counters.record([("t:slide", fresh_member())], at=at - 100)
    await counters.record([("t:slide", fresh_member())], at=at - 10)
    assert await counters.count("t:slide", window_seconds=60, at=at) == 1
    assert await counters.count("t:slide", window_seconds=120, at=at) == 2
    assert await counters.count("t:slide", window_seconds=120, at=at, until=at - 50) == 1
    # Several keys at once, concurrently and in both orders (the checkout flood limit: IP and device): each
    # key's counts are still exactly 1..n, and callers taking the keys crosswise never deadlock.
    pairs = await asyncio.gather(*[counters.hit_many(["t:a", "t:b"] if i % 2 else ["t:b", "t:a"],
                                                     window_seconds=60, at=at) for i in range(30)])
    a_counts = [p[0] if i % 2 else p[1] for i, p in enumerate(pairs)]
    b_counts = [p[1] if i % 2 else p[0] for i, p in enumerate(pairs)]
    assert sorted(a_counts) == sorted(b_counts) == list(range(1, 31))
    assert await counters.hit_many(["t:a", "t:fresh"], window_seconds=60, at=at) == [31, 1]


async def test_database_counters_are_exact_under_concurrency(ctx):
    await _exact(DatabaseCounters(ctx.db, retention_seconds=3600))


async def test_database_counters_prune_past_the_retention(ctx):
    counters = DatabaseCounters(ctx.db, retention_seconds=60)
    await counters.record([("t:old", fresh_member())], at=time.time() - 120)
    assert await counters.purge(at=time.time()) == 1


@needs_redis
async def test_redis_counters_are_exact_under_concurrency():
    counters = RedisCounters(REDIS_URL, retention_seconds=3600, prefix=f"quanyi-test:{uuid.uuid4().hex}:")
    try:
        await _exact(counters)
    finally:
        await counters.close()


def _env(settings, prefix: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("QUANYI_")}
    for name in ("database_url", "admin_token", "app_secret", "card_keys", "card_key_active_id",
                 "card_key_hash_key", "sandbox_secret", "sandbox_enabled"):
        value = getattr(settings, name)
        env[f"QUANYI_{name.upper()}"] = value.get_secret_value() if isinstance(value, SecretStr) else str(value)
    env.update({"QUANYI_REDIS_URL": REDIS_URL or "", "QUANYI_RISK_REDIS_PREFIX": prefix,
                "QUANYI_CHECKOUT_LIMIT_PER_IP": "0", "QUANYI_CHECKOUT_LIMIT_PER_DEVICE": "0",
                "QUANYI_NOTIFICATION_WORKER_IN_SERVE": "false"})
    return env


def _wait_up(base: str, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"{base} did not come up")


@needs_redis
async def test_two_server_processes_share_redis_counters(shop, settings, tmp_path):
    sku = await shop.make_sku(code="TWO-PROC")
    await shop.stock(sku, 10)
    response = await shop.client.post("/api/admin/risk/rules", headers=shop.admin, json={
        "name": "device limit", "kind": "velocity", "action": "deny", "reason_code": "device_velocity",
        "params": {"dimension": "device", "window_seconds": 600, "max_count": 3}})
    assert response.status_code == 201
    await shop.ctx.db.dispose()

    prefix = f"quanyi-test:{uuid.uuid4().hex}:"
    servers, bases = [], []
    try:
        for i in range(2):
            port = free_port()
            log = (tmp_path / f"server{i}.log").open("w")
            servers.append(subprocess.Popen(
                [sys.executable, "-m", "quanyi.cli", "serve", "--port", str(port)], cwd=tmp_path,
                env=_env(settings, prefix), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL))
            bases.append(f"http://127.0.0.1:{port}")
        for i, base in enumerate(bases):
            try:
                _wait_up(base)
            except AssertionError:
                raise AssertionError((tmp_path / f"server{i}.log").read_text()[-3000:]) from None
        statuses = []
        async with httpx.AsyncClient(timeout=60) as http:
            for i in range(5):  # alternate between the two processes
                r = await http.post(f"{bases[i % 2]}/api/orders", headers={"X-Device-Id": "shared-device-1"},
                                    json={"sku_id": sku.id, "contact": f"p{i}@example.com"})
                statuses.append(r.status_code)
                http.cookies.clear()  # an app without a cookie jar: its header stays its device
        # Three checkouts in total pass, wherever they landed; with per-process counters all five would.
        assert statuses == [201, 201, 201, 403, 403]
        counters = RedisCounters(REDIS_URL, retention_seconds=3600, prefix=prefix)
        try:
            assert await counters.count("att:device:shared-device-1", window_seconds=600, at=time.time()) == 5
        finally:
            await counters.close()
    finally:
        for server in servers:
            server.terminate()
        for server in servers:
            try:
                server.wait(timeout=60)
            except subprocess.TimeoutExpired:
                server.kill()


class _RolledBack(Exception):
    pass


@needs_redis
async def test_redis_counts_an_order_only_once_its_transaction_commits(shop):
    """A rolled-back order (or payment) leaves no placed (paid) event in Redis; until the commit, counts
    through the order's own session see its events, as on the database backend."""
    counters = RedisCounters(REDIS_URL, retention_seconds=3600, prefix=f"quanyi-test:{uuid.uuid4().hex}:")
    shop.ctx.risk.counters = counters
    sku = await shop.make_sku()
    await shop.stock(sku, 2)
    signals = risk_engine.checkout_signals(shop.ctx.risk, ip="198.51.100.9", device="", contact_kind="email",
                                           contact="phantom@example.com", sku_id=sku.id, quantity=1,
                                           amount_cents=sku.price_cents)
    placed, at = "placed:contact:phantom@example.com", signals.at

    async def place(session):
        order = await orders_service.create_order(session=session, sku_id=sku.id, quantity=1,
                                                  contact="phantom@example.com", ip="198.51.100.9",
                                                  reservation_ttl=dt.timedelta(minutes=15))
        await risk_engine.remember_order(session=session, order=order, signals=signals,
                                         screening=risk_engine.Screening())
        return order

    try:
        with pytest.raises(_RolledBack):
            async with shop.ctx.db.transaction() as session:
                await place(session)
                assert await counters.count(placed, window_seconds=60, at=at, session=session) == 1
                assert await counters.count(placed, window_seconds=60, at=at) == 0  # not in Redis yet
                raise _RolledBack
        assert await counters.count(placed, window_seconds=60, at=at) == 0

        async with shop.ctx.db.transaction() as session:
            order_id = (await place(session)).id
        assert await counters.count(placed, window_seconds=60, at=at) == 1

        # A payment whose transaction rolls back is not counted either.
        with pytest.raises(_RolledBack):
            async with shop.ctx.db.transaction() as session:
                await orders_service.apply_payment(session=session, order=await session.get(Order, order_id))
                raise _RolledBack
        assert await counters.count("paid:contact:phantom@example.com", window_seconds=3600, at=time.time()) == 0

        # A member already in the window is not counted twice by a session that records it again.
        await counters.record([("t:seen", "m1")], at=at)
        async with shop.ctx.db.transaction() as session:
            await counters.record([("t:seen", "m1"), ("t:seen", "m2")], at=at, session=session)
            assert await counters.count("t:seen", window_seconds=60, at=at, session=session) == 2
        assert await counters.count("t:seen", window_seconds=60, at=at) == 2
    finally:
        await counters.close()


async def test_a_redis_that_never_answers_holds_a_committing_transaction_only_briefly(shop):
    """Events are written to Redis just before the COMMIT, under the transaction's locks: a Redis that accepts the
    connection and never answers must not hold those locks for the client's timeout (seconds), only for
    COMMITTING_WRITE_SECONDS; the transaction still commits (its events are lost, as when Redis is down)."""
    import socket
    import threading

    from quanyi.catalog.models import Category
    from quanyi.risk.counters import COMMITTING_WRITE_SECONDS

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:  # a black hole: accept, read nothing, answer nothing
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    counters = RedisCounters(f"redis://127.0.0.1:{listener.getsockname()[1]}/0", retention_seconds=3600)
    try:
        started = time.monotonic()
        async with shop.ctx.db.transaction() as session:
            session.add(Category(slug="black-hole", name="Black hole"))
            await counters.record([("paid:ip:203.0.113.9", "order-1")], at=time.time(), session=session)
        took = time.monotonic() - started
        assert took < COMMITTING_WRITE_SECONDS + 1.0, took
        async with shop.ctx.db.read_session() as session:
            assert await session.scalar(select(Category.id).where(Category.slug == "black-hole")) is not None
    finally:
        stop.set()
        thread.join()
        for conn in held:
            conn.close()
        listener.close()
