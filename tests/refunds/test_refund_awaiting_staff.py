"""No new refund of a payment while one of its refunds waits for staff (退款待处理): refused by the gateway (retry or
withdraw it) or stalled after its automatic attempts (retry it). The API answers 409 refund_awaiting_staff naming
that refund and changes nothing; once staff settle it, refunds are requested as before. On PostgreSQL, requests
that arrive while the worker records the stall wait for the order and are refused too (never both passed)."""

from __future__ import annotations

import asyncio
import datetime as dt

import httpx
import pytest
from sqlalchemy import select

from faults.support import await_until, pg_connect
from quanyi.inventory.models import CardKey, CardKeyStatus
from quanyi.payments.gateway import RefundRequest, RefundResult
from quanyi.payments.sandbox.gateway import SandboxGateway
from quanyi.refunds import service as refunds_service
from quanyi.refunds.models import Refund
from refund_helpers import Unreachable, ask_refund, delivered_order


class Refusing(SandboxGateway):
    async def refund(self, request: RefundRequest) -> RefundResult:
        return RefundResult(refund_no=request.refund_no, state="failed", amount_cents=request.amount_cents,
                            detail="ACQ.SELLER_BALANCE_NOT_ENOUGH: balance too low")


def _use(shop, kind: type[SandboxGateway] = SandboxGateway, http: httpx.AsyncClient | None = None) -> None:  # type: ignore[no-untyped-def]
    shop.ctx.gateways.register(kind(secret=shop.sandbox_secret, http=http or shop.ctx.http,
                                    api_base_url="http://127.0.0.1:8000"))


async def _state(shop) -> tuple[list[tuple[str, str]], int]:  # type: ignore[no-untyped-def]
    """The refunds (number, status) and the card keys taken back: what a refused request must leave as it was."""
    async with shop.ctx.db.read_session() as session:
        refunds = [tuple(row) for row in (await session.execute(
            select(Refund.refund_no, Refund.status).order_by(Refund.id))).all()]
    return refunds, await shop.count(CardKey, CardKey.status == CardKeyStatus.REFUNDED)


async def _stall(shop, refund_no: str) -> None:  # type: ignore[no-untyped-def]
    """The worker's passes while the gateway stays unreachable, until it stops retrying by itself."""
    for _ in range(refunds_service.AUTOMATIC_ATTEMPTS):
        due = await shop.scalar(select(Refund.next_attempt_at).where(Refund.refund_no == refund_no)
                                .execution_options(populate_existing=True))
        if due is None:
            return
        due = due if due.tzinfo else due.replace(tzinfo=dt.UTC)
        await refunds_service.execute_due_refunds(db=shop.ctx.db, gateways=shop.ctx.gateways, now=due)
    raise AssertionError("the refund never stalled")


async def test_a_refused_refund_must_be_retried_or_withdrawn_before_another_refund(shop, app, stocked_sku):
    order = await delivered_order(shop, stocked_sku, quantity=2)
    _use(shop, Refusing)
    refused = (await ask_refund(shop, order, quantity=1, key="first-ask")).json()
    assert refused["status"] == "failed" and refused["actions"] == ["retry", "withdraw"]
    before = await _state(shop)

    _use(shop)  # the gateway would pay a new one: the old code made it, and the two then competed for the rest
    for body in ({"quantity": 1}, {"amount_cents": 100}):
        answer = await ask_refund(shop, order, **body)
        assert answer.status_code == 409, answer.text
        problem = answer.json()
        assert problem["code"] == "refund_awaiting_staff" and problem["refund_no"] == refused["refund_no"]
        assert problem["detail"] == (f"refund {refused['refund_no']} of this payment was refused by the gateway and "
                                     "waits for staff: retry or withdraw it before requesting another refund")
        assert problem["actions"] == ["retry", "withdraw"]
    assert await _state(shop) == before  # nothing taken back, nothing recorded
    repeat = await ask_refund(shop, order, quantity=1, key="first-ask")  # the same request again: the same refund
    assert repeat.status_code == 200 and repeat.json()["refund_no"] == refused["refund_no"]

    withdrawn = await shop.client.post(f"/api/admin/refunds/{refused['refund_no']}/withdraw", headers=shop.admin,
                                       json={"reason": "buyer keeps the key"})
    assert withdrawn.status_code == 200, withdrawn.text
    again = await ask_refund(shop, order, quantity=1)
    assert again.status_code == 201 and again.json()["status"] == "succeeded", again.text
    assert (await shop.get_order(order))["refunded_cents"] == stocked_sku.price_cents


async def test_a_stalled_refund_must_be_retried_before_another_refund(shop, app, stocked_sku):
    order = await delivered_order(shop, stocked_sku, quantity=2)
    _use(shop, http=httpx.AsyncClient(transport=Unreachable()))
    first = (await ask_refund(shop, order, quantity=1)).json()
    assert first["status"] == "requested"
    second = await ask_refund(shop, order, quantity=1)  # the worker's to send still: nobody needs to decide yet
    assert second.status_code == 201 and second.json()["status"] == "requested", second.text
    await _stall(shop, first["refund_no"])
    await _stall(shop, second.json()["refund_no"])
    before = await _state(shop)

    _use(shop)
    answer = await ask_refund(shop, order, amount_cents=1)
    assert answer.status_code == 409 and answer.json()["code"] == "refund_awaiting_staff", answer.text
    assert answer.json()["refund_no"] == first["refund_no"] and answer.json()["actions"] == ["retry"]
    assert "got no answer from the gateway and waits for staff: retry it" in answer.json()["detail"]
    assert await _state(shop) == before
    for refund in (first, second.json()):
        retried = await shop.client.post(f"/api/admin/refunds/{refund['refund_no']}/retry", headers=shop.admin)
        assert retried.status_code == 200 and retried.json()["status"] == "succeeded", retried.text
    assert (await shop.get_order(order))["status"] == "refunded"


async def test_requests_waiting_while_the_worker_stalls_a_refund_are_refused(backend, shop, app, stocked_sku,
                                                                             database_url):
    """The check reads the refunds after the order lock every writer of them takes: two requests queued behind
    the worker's transaction that stalls a refund see it stalled, and neither passes."""
    if backend == "sqlite":
        pytest.skip("SQLite writers never overlap; the PostgreSQL run is the race")
    order = await delivered_order(shop, stocked_sku, quantity=3)
    _use(shop, http=httpx.AsyncClient(transport=Unreachable()))
    first = (await ask_refund(shop, order, quantity=1)).json()
    assert first["status"] == "requested"
    _use(shop)
    worker = await pg_connect(database_url)
    try:
        stalling = worker.transaction()
        await stalling.start()
        # What the worker's record of its last unanswered attempt does, under the order lock like it.
        await worker.execute("SELECT id FROM orders_order WHERE order_no = $1 FOR UPDATE", order["order_no"])
        asks = [asyncio.ensure_future(ask_refund(shop, order, quantity=1, key=f"while-stalling-{n}")) for n in range(2)]

        async def both_waiting() -> bool:
            await worker.execute("SELECT pg_stat_clear_snapshot()")
            return await worker.fetchval("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                                         " AND wait_event_type = 'Lock'") >= 2

        await await_until(both_waiting, what="both requests waiting for the order")
        await worker.execute("UPDATE refunds_refund SET next_attempt_at = NULL, attempts = $2, "
                             "last_error = 'no answer' WHERE refund_no = $1", first["refund_no"],
                             refunds_service.AUTOMATIC_ATTEMPTS)
        await stalling.commit()
        answers = [await asyncio.wait_for(ask, 60) for ask in asks]
    finally:
        await worker.close()
    assert [(a.status_code, a.json()["code"]) for a in answers] == [(409, "refund_awaiting_staff")] * 2
    assert await shop.count(Refund) == 1
    assert await shop.count(CardKey, CardKey.status == CardKeyStatus.REFUNDED) == 1
