"""The sandbox gateway's merchant API, driven through SandboxGateway over HTTP: trade query, refunds
(idempotent, partial, never above the trade), refund query, signed answers; and replayed gateway events."""

from __future__ import annotations

import httpx
from sqlalchemy import select

from quanyi.payments.gateway import GatewayUnavailable, RefundRequest
from quanyi.payments.models import GatewayEvent, Payment
from quanyi.payments.sandbox.gateway import SandboxGateway
from quanyi.payments.sandbox.models import SandboxRefund, SandboxTrade
from quanyi.payments.service import handle_notification


def _refund(payment: dict, trade_no: str, refund_no: str, amount: int) -> RefundRequest:
    return RefundRequest(refund_no=refund_no, payment_no=payment["payment_no"], gateway_trade_no=trade_no,
                         amount_cents=amount, payment_amount_cents=payment["amount_cents"], currency="CNY",
                         reason="test")


async def test_query_tells_paid_from_never_paid(shop, app, order):
    gateway = shop.ctx.gateways.get("sandbox")
    payment = await shop.start_payment(order)
    unpaid = await gateway.query_trade(payment["payment_no"])
    assert unpaid.state == "not_found" and unpaid.gateway_trade_no is None

    await shop.pay_via_cashier(order)
    trade = await shop.scalar(select(SandboxTrade))
    paid = await gateway.query_trade(payment["payment_no"])
    assert (paid.state, paid.gateway_trade_no, paid.amount_cents, paid.currency) == (
        "paid", trade.trade_no, 1980, "CNY")
    notification = paid.as_notification()
    assert notification.succeeded and notification.payment_no == payment["payment_no"]


async def test_refunds_are_idempotent_partial_and_bounded(shop, app, order):
    gateway = shop.ctx.gateways.get("sandbox")
    payment = await shop.start_payment(order)
    await shop.pay_via_cashier(order)
    trade = await shop.scalar(select(SandboxTrade))

    first = await gateway.refund(_refund(payment, trade.trade_no, "RF1", 500))
    assert first.state == "succeeded" and first.amount_cents == 500 and first.gateway_refund_no
    again = await gateway.refund(_refund(payment, trade.trade_no, "RF1", 500))
    assert again == first  # the same refund number never refunds twice
    changed = await gateway.refund(_refund(payment, trade.trade_no, "RF1", 600))
    assert changed.state == "failed" and "REQUEST_PARAMS_CHANGED" in changed.detail

    too_much = await gateway.refund(_refund(payment, trade.trade_no, "RF2", 1481))
    assert too_much.state == "failed" and "REFUND_AMT_EXCEEDED" in too_much.detail
    rest = await gateway.refund(_refund(payment, trade.trade_no, "RF3", 1480))
    assert rest.state == "succeeded"
    assert await shop.count(SandboxRefund) == 2

    queried = await gateway.query_refund(refund_no="RF3", payment_no=payment["payment_no"])
    assert queried.state == "succeeded" and queried.amount_cents == 1480
    missing = await gateway.query_refund(refund_no="RF-none", payment_no=payment["payment_no"])
    assert missing.state == "processing"  # not refunded (yet) is not a refusal


async def test_a_refund_the_sandbox_does_not_know_is_not_refunded_yet_and_is_sent_again(shop, app, order):
    """Like Alipay (244afdd): "refund not found" means "not refunded yet, resend with the same refund number",
    never a refusal that staff could withdraw while the gateway may still pay it."""
    gateway = shop.ctx.gateways.get("sandbox")
    assert gateway.resends_processing_refunds  # the refund worker sends a processing refund again, same number
    payment = await shop.start_payment(order)
    await shop.pay_via_cashier(order)
    trade = await shop.scalar(select(SandboxTrade))
    unknown = await gateway.query_refund(refund_no="RF7", payment_no=payment["payment_no"])
    assert (unknown.state, unknown.amount_cents) == ("processing", 0)
    assert "same refund number" in unknown.detail
    sent = await gateway.refund(_refund(payment, trade.trade_no, "RF7", 800))
    assert (sent.state, sent.amount_cents) == ("succeeded", 800)
    assert await gateway.refund(_refund(payment, trade.trade_no, "RF7", 800)) == sent  # once, however often
    assert (await gateway.query_refund(refund_no="RF7", payment_no=payment["payment_no"])).state == "succeeded"
    assert await shop.count(SandboxRefund) == 1


async def test_a_refund_of_an_unpaid_payment_is_refused(shop, app, order):
    gateway = shop.ctx.gateways.get("sandbox")
    payment = await shop.start_payment(order)
    result = await gateway.refund(_refund(payment, "SB-none", "RF9", 100))
    assert result.state == "failed" and "TRADE_NOT_EXIST" in result.detail


async def test_wrong_secret_and_unreachable_gateway_raise_unavailable(shop, app, order):
    payment = await shop.start_payment(order)
    forger = SandboxGateway(secret="x" * 32, http=shop.ctx.http, api_base_url="http://127.0.0.1:8000")
    try:
        await forger.query_trade(payment["payment_no"])
    except GatewayUnavailable as exc:
        assert "signature" in exc.message
    else:
        raise AssertionError("a request with the wrong key was answered")

    async with httpx.AsyncClient() as http:
        down = SandboxGateway(secret=shop.sandbox_secret, http=http, api_base_url="http://127.0.0.1:9")
        try:
            await down.query_trade(payment["payment_no"])
        except GatewayUnavailable as exc:
            assert "ConnectError" in exc.message
        else:
            raise AssertionError("an unreachable gateway gave an answer")


async def test_a_replayed_event_id_is_processed_once(shop, app, order):
    """Gateways that give their notifications an id (Stripe events) are deduplicated on it."""
    payment = await shop.start_payment(order)

    class EventfulSandbox(SandboxGateway):
        def verify_notification(self, *, headers, body, now):  # type: ignore[no-untyped-def]
            parsed = super().verify_notification(headers=headers, body=body, now=now)
            return type(parsed)(**{**{f: getattr(parsed, f) for f in parsed.__slots__}, "event_id": "evt_1"})

    eventful = EventfulSandbox(secret=shop.sandbox_secret)
    body = str(httpx.QueryParams(shop.notification(payment))).encode()
    for _ in range(2):
        async with shop.ctx.db.transaction() as session:
            effect = await handle_notification(session=session, gateway=eventful, headers={}, body=body)
    assert effect == "already_paid"
    assert await shop.count(GatewayEvent) == 1
    assert (await shop.get_order(order))["status"] == "delivered"


async def test_a_second_real_transaction_for_a_paid_payment_is_kept_for_refund(shop, app, order):
    """The buyer paid two checkout sessions of one payment: the money is on record, nothing is delivered twice."""
    payment = await shop.start_payment(order)
    first = await shop.notify(shop.notification(payment, trade_no="SB-FIRST-0001"))
    second = await shop.notify(shop.notification(payment, trade_no="SB-SECOND-0002"))
    again = await shop.notify(shop.notification(payment, trade_no="SB-SECOND-0002"))
    assert [r.text for r in (first, second, again)] == ["success"] * 3
    rows = [await shop.scalar(select(Payment).where(Payment.gateway_trade_no == no))
            for no in ("SB-FIRST-0001", "SB-SECOND-0002")]
    assert [r.status for r in rows] == ["succeeded", "duplicate"]
    assert rows[1].order_id == rows[0].order_id and rows[1].amount_cents == 1980
    assert rows[1].duplicate_of == payment["payment_no"] == rows[1].gateway_payment_no  # refunds ask for this one
    assert await shop.count(Payment) == 2
    assert len(await shop.reveal(order)) == 1
