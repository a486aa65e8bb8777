"""Executing refunds: an unreachable gateway is retried by the background loop with backoff, a refused
refund is retried by an operator with the same refund number, one attempt is made per claim however
many workers run, and concurrent refund requests never add up to more than was paid."""

from __future__ import annotations

import asyncio
import datetime as dt

import httpx
from sqlalchemy import func, select

from quanyi.errors import DomainError
from quanyi.orders import service as orders_service
from quanyi.payments import service as payments_service
from quanyi.payments.gateway import RefundRequest, RefundResult
from quanyi.payments.sandbox.gateway import SandboxGateway
from quanyi.payments.sandbox.models import SandboxRefund
from quanyi.refunds import service as refunds_service
from quanyi.refunds.models import Refund, RefundEvent
from quanyi.refunds.policy import RefundExceedsPayment
from quanyi.tasks import execute_refunds_once
from refund_helpers import Unreachable, ask_refund, delivered_order, refund_pending_order


class CountingSandbox(SandboxGateway):
    """The real sandbox gateway, counting refund calls and optionally slow (a worker mid-call)."""

    def __init__(self, *args, delay: float = 0.0, **kwargs) -> None:  # type: ignore[no-untyped-def]
        super().__init__(*args, **kwargs)
        self.refund_calls = 0
        self.delay = delay

    async def refund(self, request: RefundRequest) -> RefundResult:
        self.refund_calls += 1
        await asyncio.sleep(self.delay)
        return await super().refund(request)


class AcceptingSandbox(SandboxGateway):
    """The real sandbox, whose first refund answer is "accepted, not carried out yet" (processing) without
    refunding: a gateway that takes a refund and pays it later, or an answer lost after the gateway logged it."""

    async def refund(self, request: RefundRequest) -> RefundResult:
        if not getattr(self, "accepted", False):
            self.accepted = True
            return RefundResult(refund_no=request.refund_no, state="processing", amount_cents=request.amount_cents,
                                detail="accepted")
        return await super().refund(request)


def _sandbox(shop, **kwargs) -> SandboxGateway:  # type: ignore[no-untyped-def]
    return CountingSandbox(secret=shop.sandbox_secret, http=shop.ctx.http, api_base_url="http://127.0.0.1:8000",
                           **kwargs)


async def test_an_unreachable_gateway_is_retried_by_the_loop_until_the_refund_succeeds(shop, app, stocked_sku):
    order = await delivered_order(shop, stocked_sku, quantity=2)
    down = httpx.AsyncClient(transport=Unreachable())
    shop.ctx.gateways.register(SandboxGateway(secret=shop.sandbox_secret, http=down,
                                              api_base_url="http://127.0.0.1:8000"))
    response = await ask_refund(shop, order, quantity=1)
    assert response.status_code == 201
    refund = response.json()
    assert (refund["status"], refund["attempts"]) == ("requested", 1) and "unreachable" in refund["last_error"]
    # Money not back yet, but the key is already out of the buyer's hands.
    view = await shop.get_order(order)
    assert (view["refunded_cents"], view["delivered_keys"]) == (0, 1)
    assert len(await shop.reveal(order)) == 1

    # Due again after the first backoff, not before (times taken from the row: however slow this machine is).
    first = await shop.scalar(select(Refund))
    later = first.next_attempt_at
    assert later >= first.created_at + dt.timedelta(seconds=refunds_service.BACKOFF_SECONDS[0])
    assert await refunds_service.execute_due_refunds(db=shop.ctx.db, gateways=shop.ctx.gateways,
                                                     now=later - dt.timedelta(milliseconds=1)) == 0
    assert await refunds_service.execute_due_refunds(db=shop.ctx.db, gateways=shop.ctx.gateways, now=later) == 1
    stored = await shop.scalar(select(Refund))
    assert (stored.status, stored.attempts) == ("requested", 2)
    assert stored.next_attempt_at > later + dt.timedelta(seconds=refunds_service.BACKOFF_SECONDS[1] - 1)

    shop.ctx.gateways.register(_sandbox(shop))  # the gateway is back
    assert await execute_refunds_once(shop.ctx) == 0  # not due yet
    much_later = later + dt.timedelta(hours=1)
    assert await refunds_service.execute_due_refunds(db=shop.ctx.db, gateways=shop.ctx.gateways,
                                                     now=much_later) == 1
    stored = await shop.scalar(select(Refund))
    assert (stored.status, stored.attempts, stored.last_error) == ("succeeded", 3, None)
    assert (await shop.get_order(order))["refunded_cents"] == 1980
    assert await shop.count(SandboxRefund) == 1
    # Finished refunds are never sent again.
    assert await refunds_service.execute_due_refunds(db=shop.ctx.db, gateways=shop.ctx.gateways,
                                                     now=much_later + dt.timedelta(days=1)) == 0
    await down.aclose()


async def test_a_refused_refund_is_retried_by_an_operator_with_the_same_refund_no(shop, app, stocked_sku):
    order = await refund_pending_order(shop, stocked_sku)

    class Refusing(SandboxGateway):
        async def refund(self, request: RefundRequest) -> RefundResult:
            return RefundResult(refund_no=request.refund_no, state="failed", amount_cents=request.amount_cents,
                                detail="ACQ.SELLER_BALANCE_NOT_ENOUGH: balance too low")

    shop.ctx.gateways.register(Refusing(secret=shop.sandbox_secret, http=shop.ctx.http,
                                        api_base_url="http://127.0.0.1:8000"))
    failed = (await ask_refund(shop, order)).json()
    assert failed["status"] == "failed" and "BALANCE" in failed["last_error"]
    assert (await shop.get_order(order))["status"] == "refund_pending"
    # A failed refund frees its amount, but a new refund would compete with the retry: one at a time.
    shop.ctx.gateways.register(_sandbox(shop))
    retried = await shop.client.post(f"/api/admin/refunds/{failed['refund_no']}/retry", headers=shop.admin)
    assert retried.status_code == 200, retried.text
    body = retried.json()
    assert body["refund_no"] == failed["refund_no"] and body["status"] == "succeeded"
    assert [e["to_status"] for e in body["events"]] == ["requested", "failed", "requested", "succeeded"]
    assert body["events"][1]["reason"].startswith("gateway refused")
    assert (await shop.get_order(order))["status"] == "refunded"
    again = await shop.client.post(f"/api/admin/refunds/{failed['refund_no']}/retry", headers=shop.admin)
    assert again.status_code == 409 and again.json()["code"] == "illegal_refund_transition"
    unknown = await shop.client.post("/api/admin/refunds/RF000000000000000000/retry", headers=shop.admin)
    assert unknown.status_code == 404


async def test_two_workers_make_one_gateway_call_per_attempt(shop, app, stocked_sku):
    order = await refund_pending_order(shop, stocked_sku)
    slow = _sandbox(shop, delay=0.2)
    shop.ctx.gateways.register(slow)
    async with shop.ctx.db.transaction() as session:
        refund, _ = await refunds_service.request_refund(session=session, order_id=(await orders_service.get_order(
            session=session, order_no=order["order_no"])).id, reason="r", requested_by="system")
    results = await asyncio.gather(*[
        refunds_service.execute_refund(db=shop.ctx.db, gateways=shop.ctx.gateways, refund_id=refund.id)
        for _ in range(3)])
    assert sorted(results, key=str) == [None, None, "succeeded"]
    assert slow.refund_calls == 1 and await shop.count(SandboxRefund) == 1


async def test_a_lost_answer_and_a_second_call_still_refund_once(shop, app, stocked_sku):
    """Even when a worker's lease ran out mid-call and another worker sent the refund again, the gateway
    refunds once (same refund_no) and the shop records it once."""
    order = await refund_pending_order(shop, stocked_sku)
    async with shop.ctx.db.transaction() as session:
        target = await orders_service.get_order(session=session, order_no=order["order_no"])
        refund, _ = await refunds_service.request_refund(session=session, order_id=target.id, reason="r",
                                                         requested_by="system")
    gateway = shop.ctx.gateways.get("sandbox")
    first = await refunds_service.execute_refund(db=shop.ctx.db, gateways=shop.ctx.gateways, refund_id=refund.id)
    assert first == "succeeded"
    # The same request again (what a second worker would send) is answered with the same refund.
    stored = await shop.scalar(select(Refund))
    trade_refund = await shop.scalar(select(SandboxRefund))
    async with shop.ctx.db.read_session() as session:
        payment = await payments_service.get_payment(session=session, payment_id=stored.payment_id)
    repeat = await gateway.refund(RefundRequest(
        refund_no=stored.refund_no, payment_no=payment.payment_no, gateway_trade_no=payment.gateway_trade_no or "",
        amount_cents=stored.amount_cents, payment_amount_cents=payment.amount_cents, currency="CNY", reason="r"))
    assert repeat.state == "succeeded" and repeat.gateway_refund_no == trade_refund.gateway_refund_no
    assert await shop.count(SandboxRefund) == 1
    assert (await shop.get_order(order))["refunded_cents"] == 1980
    assert await shop.count(RefundEvent, RefundEvent.to_status == "succeeded") == 1


async def test_concurrent_refund_requests_never_exceed_the_payment(shop, app, stocked_sku):
    """Eight requests of 5.00 against a 19.80 payment, each in its own transaction and connection at the
    same time: the order row lock lets exactly three through."""
    order = await refund_pending_order(shop, stocked_sku)
    async with shop.ctx.db.read_session() as session:
        order_id = (await orders_service.get_order(session=session, order_no=order["order_no"])).id

    async def one(n: int) -> str:
        try:
            async with shop.ctx.db.transaction() as session:
                await refunds_service.request_refund(session=session, order_id=order_id, amount_cents=500,
                                                     reason=f"concurrent {n}", requested_by="system")
        except RefundExceedsPayment:
            return "refused"
        except DomainError as exc:  # pragma: no cover - shows what went wrong
            return exc.code
        return "accepted"

    outcomes = await asyncio.gather(*[one(n) for n in range(8)])
    assert sorted(outcomes) == ["accepted"] * 3 + ["refused"] * 5
    assert await shop.scalar(select(func.sum(Refund.amount_cents))) == 1500
    await execute_refunds_once(shop.ctx)
    view = await shop.get_order(order)
    assert (view["status"], view["refunded_cents"]) == ("refund_pending", 1500)
    assert await shop.scalar(select(func.sum(SandboxRefund.amount_cents))) == 1500


async def test_a_processing_refund_the_sandbox_does_not_show_is_sent_again_never_refused(shop, app, stocked_sku):
    """The worker's next pass on a processing sandbox refund the sandbox does not know: the old gateway called it
    refused ("refund not found": failed, withdrawable although it is still to be paid); now it is sent again with
    the same refund number and refunded once."""
    order = await refund_pending_order(shop, stocked_sku)
    shop.ctx.gateways.register(AcceptingSandbox(secret=shop.sandbox_secret, http=shop.ctx.http,
                                                api_base_url="http://127.0.0.1:8000"))
    response = await ask_refund(shop, order)
    assert response.status_code == 201 and response.json()["status"] == "processing", response.text
    assert await shop.count(SandboxRefund) == 0
    due = (await shop.scalar(select(Refund))).next_attempt_at
    assert await refunds_service.execute_due_refunds(db=shop.ctx.db, gateways=shop.ctx.gateways, now=due) == 1
    stored = await shop.scalar(select(Refund).execution_options(populate_existing=True))
    assert (stored.status, stored.last_error) == ("succeeded", None)
    async with shop.ctx.db.read_session() as session:
        made = (await session.scalars(select(SandboxRefund.refund_no))).all()
    assert made == [stored.refund_no]  # refunded once, under the same number
    assert (await shop.get_order(order))["status"] == "refunded"
