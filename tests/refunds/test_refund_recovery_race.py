"""An operator withdrawing a refused refund, another retrying it, and the worker's refund loop sending what is due,
all at once on PostgreSQL (real connections, real row locks): the two actions are made to wait together behind a
transaction holding the order, then let go. One of them wins; the refund is never both withdrawn and paid, the card
key never both handed back and refunded, and the gateway is asked at most once."""

from __future__ import annotations

import asyncio
import datetime as dt
import time

import pytest
from sqlalchemy import select

from faults.support import pg_connect
from quanyi.inventory.models import CardKey, CardKeyStatus
from quanyi.payments.gateway import RefundRequest, RefundResult
from quanyi.payments.sandbox.gateway import SandboxGateway
from quanyi.payments.sandbox.models import SandboxRefund
from quanyi.refunds import service as refunds_service
from quanyi.refunds.models import Refund
from refund_helpers import ask_refund, cashier_pay

ROUNDS = 6


class _Gateway(SandboxGateway):
    """The sandbox, refusing until told otherwise, slow enough to overlap, and counting what it was asked."""

    refusing = True
    calls: list[str] = []

    async def refund(self, request: RefundRequest) -> RefundResult:
        type(self).calls.append(request.refund_no)
        if type(self).refusing:
            return RefundResult(refund_no=request.refund_no, state="failed", amount_cents=request.amount_cents,
                                detail="ACQ.SELLER_BALANCE_NOT_ENOUGH: balance too low")
        await asyncio.sleep(0.02)
        return await super().refund(request)


async def _both_waiting(watcher) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        await watcher.execute("SELECT pg_stat_clear_snapshot()")
        if await watcher.fetchval("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                                  " AND wait_event_type = 'Lock'") >= 2:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the withdrawal and the retry never waited together on the order")


async def _worker(shop, stop: asyncio.Event) -> None:  # type: ignore[no-untyped-def]
    while not stop.is_set():  # on the real clock: a retried refund is due at once, a lease is a lease
        await refunds_service.execute_due_refunds(db=shop.ctx.db, gateways=shop.ctx.gateways)
        await asyncio.sleep(0.005)


async def test_withdraw_retry_and_the_worker_racing_settle_a_refused_refund_once(backend, shop, app, stocked_sku,
                                                                                  database_url):
    if backend == "sqlite":
        pytest.skip("SQLite writers never overlap; the PostgreSQL run is the race")
    gateway = _Gateway(secret=shop.sandbox_secret, http=shop.ctx.http, api_base_url="http://127.0.0.1:8000")
    shop.ctx.gateways.register(gateway)
    _Gateway.calls = []
    outcomes = []
    for _ in range(ROUNDS):
        started = time.monotonic()
        _Gateway.refusing = True
        order = await shop.create_order(stocked_sku.id)
        await cashier_pay(shop, order)
        refused = (await ask_refund(shop, order, quantity=1)).json()
        assert refused["status"] == "failed", refused
        no = refused["refund_no"]
        _Gateway.refusing = False

        holder, watcher = await pg_connect(database_url), await pg_connect(database_url)
        transaction = holder.transaction()
        await transaction.start()
        await holder.execute("SELECT id FROM orders_order WHERE order_no = $1 FOR UPDATE", order["order_no"])
        stop = asyncio.Event()
        worker = asyncio.create_task(_worker(shop, stop))
        withdraw = asyncio.create_task(shop.client.post(f"/api/admin/refunds/{no}/withdraw", headers=shop.admin,
                                                        json={"reason": "buyer keeps it"}))
        retry = asyncio.create_task(shop.client.post(f"/api/admin/refunds/{no}/retry", headers=shop.admin))
        try:
            await _both_waiting(watcher)
        finally:
            await transaction.rollback()
            await holder.close()
            await watcher.close()
        answers = {"withdraw": await withdraw, "retry": await retry}
        await asyncio.sleep(0.1)  # the worker's passes while the winner settles
        stop.set()
        await worker
        await refunds_service.execute_due_refunds(db=shop.ctx.db, gateways=shop.ctx.gateways,
                                                  now=dt.datetime.now(dt.UTC) + dt.timedelta(days=1))

        codes = {name: response.status_code for name, response in answers.items()}
        assert sorted(codes.values()) == [200, 409], {k: r.text for k, r in answers.items()}
        loser = next(r for r in answers.values() if r.status_code == 409)
        assert loser.json()["code"] == "illegal_refund_transition"
        refund = await shop.scalar(select(Refund).where(Refund.refund_no == no)
                                   .execution_options(populate_existing=True))
        key = await shop.scalar(select(CardKey.status).where(CardKey.order_id == (await shop.scalar(
            select(Refund.order_id).where(Refund.refund_no == no)))))
        paid_back = await shop.count(SandboxRefund, SandboxRefund.refund_no == no)
        view = await shop.get_order(order)
        if codes["withdraw"] == 200:
            assert (refund.status, key, paid_back) == ("withdrawn", CardKeyStatus.SOLD, 0)
            assert (view["status"], view["refunded_cents"], view["delivered_keys"]) == ("delivered", 0, 1)
        else:
            assert (refund.status, key, paid_back) == ("succeeded", CardKeyStatus.REFUNDED, 1)
            assert (view["status"], view["refunded_cents"]) == ("refunded", stocked_sku.price_cents)
        # Asked once when refused, and at most once more (the retry's own call or the worker's, never both).
        assert _Gateway.calls.count(no) == (1 if codes["withdraw"] == 200 else 2)
        outcomes.append(("withdrawn" if codes["withdraw"] == 200 else "retried", round(time.monotonic() - started, 1)))
    print("outcomes:", outcomes)
