"""Starts of one order's payment that run at the same time, on separate connections, all answer its one open payment.

On PostgreSQL a start is one statement that locks the order and reads its open payment; its snapshot is taken before
it waits for the lock, so a start that waited behind another one (or behind any writer of the order) cannot see the
payment the other one committed meanwhile: the open payment's unique index makes it answer that one instead of
inserting a second. The tests hold the order's lock from a connection of their own while the starts queue up behind
it, so every start takes its snapshot before any of them has inserted (without the index: one payment each).
SQLite serializes writers (BEGIN IMMEDIATE reads after taking the lock): the same tests hold there too.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select, text
from sqlalchemy.engine import make_url

import quanyi
from faults.support import QuanyiProcess, pg_connect, traceback_lines
from helpers import make_settings
from quanyi.migrate import downgrade, upgrade
from quanyi.orders.access import order_access_token
from quanyi.payments import service as payments_service
from quanyi.payments.models import Payment, PaymentStatus
from quanyi.testpeers.runner import free_port

STARTS = 8
ORDERS = 40


async def _payments(shop) -> list[tuple[str, int, str]]:
    async with shop.ctx.db.read_session() as session:
        return [tuple(row) for row in (await session.execute(
            select(Payment.payment_no, Payment.order_id, Payment.status).order_by(Payment.id))).all()]


@asynccontextmanager
async def _order_locked(database_url: str, order_no: str) -> AsyncIterator[Callable[[int], Awaitable[None]]]:
    """Hold the order's row lock (PostgreSQL) or the database's writer lock (SQLite) from another connection until the
    block ends; yields `queued(n)`, which returns once n statements wait for that lock (PostgreSQL) or at once."""
    if make_url(database_url).get_backend_name() == "sqlite":
        holder = sqlite3.connect(Path(make_url(database_url).database or ""), isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")

        async def queued(n: int) -> None:
            await asyncio.sleep(0.3)  # SQLite shows no waiters: give the starts time to reach the lock

        try:
            yield queued
        finally:
            holder.execute("COMMIT")
            holder.close()
        return
    holder = await pg_connect(database_url)
    transaction = holder.transaction()
    await transaction.start()
    await holder.execute("SELECT id FROM orders_order WHERE order_no = $1 FOR UPDATE", order_no)

    async def waiting(n: int) -> None:
        for _ in range(600):
            await holder.execute("SELECT pg_stat_clear_snapshot()")  # else read once per transaction
            waiters = await holder.fetchval("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                                            "AND wait_event_type = 'Lock'")
            if waiters >= n:
                return
            await asyncio.sleep(0.05)
        raise AssertionError(f"only {waiters} of {n} statements wait for the order's lock")

    try:
        yield waiting
    finally:
        await transaction.commit()
        await holder.close()


async def test_starts_queued_behind_the_orders_lock_all_answer_its_one_open_payment(shop, order, database_url):
    async with _order_locked(database_url, order["order_no"]) as queued:
        starts = [asyncio.create_task(shop.client.post(
            f"/api/orders/{order['order_no']}/payments", headers=shop.auth(order), json={"gateway": "sandbox"}))
            for _ in range(STARTS)]
        await queued(STARTS)
    answers = await asyncio.gather(*starts)
    assert [answer.status_code for answer in answers] == [201] * STARTS, [answer.text for answer in answers]
    payments = await _payments(shop)
    assert len(payments) == 1, payments
    [payment] = payments
    assert {answer.json()["payment_no"] for answer in answers} == {payment[0]}
    assert payment[2] == PaymentStatus.CREATED
    # And the payment they share pays the order once.
    notified = await shop.notify(shop.notification(answers[0].json()))
    assert notified.text == "success"
    assert (await shop.get_order(order))["status"] == "delivered"


async def test_starts_racing_a_checkout_with_pay_all_answer_its_one_open_payment(shop, stocked_sku, database_url,
                                                                                 monkeypatch):
    """`POST /api/orders` with `pay` commits the order, then starts its payment: separate starts of that order arriving
    in between (the order's number known) share that payment with the checkout's answer."""
    placed, go = asyncio.Event(), asyncio.Event()
    start_payment = payments_service.start_payment
    order_no: list[str] = []

    async def checkout_pauses_once_placed(**kwargs):
        if not order_no:  # the checkout's own start: the order is committed, hold on until the others queue up
            order_no.append(kwargs["order_no"])
            placed.set()
            await go.wait()
        return await start_payment(**kwargs)

    monkeypatch.setattr(payments_service, "start_payment", checkout_pauses_once_placed)
    checkout = asyncio.create_task(shop.client.post("/api/orders", json={
        "sku_id": stocked_sku.id, "quantity": 1, "contact": "buyer@example.com", "pay": {"gateway": "sandbox"}}))
    await asyncio.wait_for(placed.wait(), 60)
    async with _order_locked(database_url, order_no[0]) as queued:
        token = {"X-Order-Token": order_access_token(shop.ctx.settings.app_secret.get_secret_value(), order_no[0])}
        starts = [asyncio.create_task(shop.client.post(f"/api/orders/{order_no[0]}/payments", headers=token,
                                                       json={"gateway": "sandbox"})) for _ in range(STARTS)]
        await queued(STARTS)
        go.set()
        await queued(STARTS + 1)
    answers = await asyncio.gather(*starts)
    placed_answer = await checkout
    assert placed_answer.status_code == 201, placed_answer.text
    assert [answer.status_code for answer in answers] == [201] * STARTS, [answer.text for answer in answers]
    payments = await _payments(shop)
    assert len(payments) == 1, payments
    [payment] = payments
    assert placed_answer.json()["payment"]["payment_no"] == payment[0]
    assert {answer.json()["payment_no"] for answer in answers} == {payment[0]}


@pytest.mark.slow
async def test_starts_racing_through_two_server_processes_make_one_payment_per_order(shop, backend, settings,
                                                                                    tmp_path):
    """No lock held by the test: the plain race, many orders, each started by several requests at once through
    `quanyi serve --workers 2` (separate processes, each with its own connections)."""
    if backend != "postgresql":
        pytest.skip("SQLite serializes writers across processes (BEGIN IMMEDIATE); the tests above cover it")
    sku = await shop.make_sku()
    await shop.stock(sku, ORDERS)
    orders = [await shop.create_order(sku.id) for _ in range(ORDERS)]
    port = free_port()
    server = QuanyiProcess(settings, tmp_path, "serve", "--port", str(port), "--workers", "2", name="server",
                           env={"PYTHONPATH": str(Path(quanyi.__file__).parents[1])})  # the code this test imports
    server.url = f"http://127.0.0.1:{port}"
    try:
        server.wait_healthy()
        limits = httpx.Limits(max_connections=STARTS, max_keepalive_connections=STARTS)
        async with httpx.AsyncClient(base_url=server.url, limits=limits, timeout=60) as client:
            for order in orders:
                answers = await asyncio.gather(*[client.post(
                    f"/api/orders/{order['order_no']}/payments", headers=shop.auth(order),
                    json={"gateway": "sandbox"}) for _ in range(STARTS)])
                assert [answer.status_code for answer in answers] == [201] * STARTS, answers[0].text
                order["started"] = {answer.json()["payment_no"] for answer in answers}
    finally:
        server.stop()
    assert traceback_lines(server.log()) == []
    by_order: dict[int, list[str]] = {}
    for payment_no, order_id, _status in await _payments(shop):
        by_order.setdefault(order_id, []).append(payment_no)
    assert sorted(len(payment_nos) for payment_nos in by_order.values()) == [1] * ORDERS, by_order
    assert sorted(order["started"] == {payment_nos[0]} for order, payment_nos in zip(
        orders, [by_order[order_id] for order_id in sorted(by_order)], strict=True)) == [True] * ORDERS


@pytest.fixture
def settings(database_url: str):  # type: ignore[no-untyped-def]
    return make_settings(database_url, database_pool_size=STARTS)  # every start on a connection of its own


@pytest.fixture(autouse=True)
def _many_connections(settings) -> None:
    assert settings.database_pool_size * 2 > STARTS + 1  # every start on a connection of its own


async def test_open_payments_that_raced_before_the_index_stay_payable_after_the_upgrade(shop, order, database_url):
    """Migration 5b0c3f1e9a27 finds the open payments that racing starts made before it (same order, gateway and
    amount): the oldest stays the one start payment answers, the others are marked `raced_with` it, and any of them
    can still pay the order."""
    first = await shop.start_payment(order)
    await shop.ctx.db.dispose()  # the schema changes under the pool: no connection keeps its prepared statements
    await asyncio.to_thread(downgrade, database_url, "5b0c3f1e9a27-1")  # to just before it
    async with shop.ctx.db.transaction() as session:
        for raced in ("PYRACED0000000000001", "PYRACED0000000000002"):
            await session.execute(text(
                "INSERT INTO payments_payment (payment_no, order_id, gateway, amount_cents, currency, status, "
                "created_at, updated_at, query_count) SELECT :raced, order_id, gateway, amount_cents, currency, "
                "status, created_at, updated_at, 0 FROM payments_payment WHERE payment_no = :first"),
                {"raced": raced, "first": first["payment_no"]})
    await shop.ctx.db.dispose()
    await asyncio.to_thread(upgrade, database_url)
    async with shop.ctx.db.read_session() as session:
        marked = (await session.execute(select(Payment.payment_no, Payment.raced_with).order_by(Payment.id))).all()
    assert [tuple(row) for row in marked] == [(first["payment_no"], None),
                                              ("PYRACED0000000000001", first["payment_no"]),
                                              ("PYRACED0000000000002", first["payment_no"])]
    assert (await shop.start_payment(order))["payment_no"] == first["payment_no"]
    raced = {**first, "payment_no": "PYRACED0000000000002"}
    assert (await shop.notify(shop.notification(raced))).text == "success"
    assert (await shop.get_order(order))["status"] == "delivered"
