"""A refund the gateway does not carry out, through the real app and the Alipay test peer on a real port: the
worker retries what got no answer (5xx, a timeout whose refund the peer did make, a refused connection) with the
same refund number and a bound, never refunding twice; a stalled one and a refused one wait for an operator, who
retries it or withdraws a refused one (the card keys it took back go back to the buyer). Every action is audited
and needs the admin permission."""

from __future__ import annotations

import asyncio
import datetime as dt

from sqlalchemy import select

from console.support import PASSWORD, make_staff
from payments.test_alipay import keys, peer  # the Alipay test peer on a real port (fixtures)
from quanyi.inventory.models import CardKey, CardKeyStatus
from quanyi.payments.alipay import AlipayConfig, AlipayGateway
from quanyi.refunds import reports as refund_reports
from quanyi.refunds import service as refunds_service
from quanyi.refunds.models import Refund
from quanyi.staff.models import StaffAuditEntry
from refund_helpers import void_stock


def _register(shop, peer, **config) -> AlipayGateway:  # type: ignore[no-untyped-def]
    simulator, base_url = peer
    gateway = AlipayGateway(AlipayConfig(**{**simulator.merchant_config(base_url), **config}), http=shop.ctx.http)
    shop.ctx.gateways.register(gateway)
    return gateway


async def _paid(shop, peer, sku, *, quantity: int = 1, undeliverable: bool = False) -> dict:  # type: ignore[no-untyped-def]
    """An order paid at the Alipay peer (its notification delivered to the shop); `undeliverable`: its stock is
    gone before the money arrives, so it waits for its refund."""
    simulator, _ = peer
    order = await shop.create_order(sku.id, quantity=quantity)
    if undeliverable:
        await void_stock(shop, sku.id)
    started = await shop.client.post(f"/api/orders/{order['order_no']}/payments", headers=shop.auth(order),
                                     json={"gateway": "alipay", "mode": "qr"})
    assert started.status_code == 201, started.text
    simulator.pay(started.json()["payment_no"])
    (notification,) = simulator.take_notifications()
    answer = await shop.client.post("/payments/alipay/notify", content=notification.body,
                                    headers=notification.headers)
    assert answer.text == "success"
    order["payment_no"] = started.json()["payment_no"]
    return order


async def _refund(shop, order, **body) -> dict:  # type: ignore[no-untyped-def]
    response = await shop.client.post(f"/api/admin/orders/{order['order_no']}/refunds", headers=shop.admin,
                                      json={"reason": "buyer asked", **body})
    assert response.status_code == 201, response.text
    return response.json()


async def _stored(shop) -> Refund:  # type: ignore[no-untyped-def]
    return await shop.scalar(select(Refund).execution_options(populate_existing=True))


async def _worker_when_due(shop) -> int:  # type: ignore[no-untyped-def]
    """The worker's pass at the moment the refund is due again (its backoff, taken from the row)."""
    due = (await _stored(shop)).next_attempt_at
    assert due is not None
    return await refunds_service.execute_due_refunds(db=shop.ctx.db, gateways=shop.ctx.gateways,
                                                     now=due.replace(tzinfo=dt.UTC) if due.tzinfo is None else due)


async def _needing_staff(shop) -> list:  # type: ignore[no-untyped-def]
    async with shop.ctx.db.read_session() as session:
        return await refund_reports.refunds_needing_staff(session=session)


async def _audit(shop) -> list[tuple[str, str, str]]:  # type: ignore[no-untyped-def]
    async with shop.ctx.db.read_session() as session:
        rows = (await session.execute(select(StaffAuditEntry.actor, StaffAuditEntry.action, StaffAuditEntry.object_id)
                                      .order_by(StaffAuditEntry.id))).all()
    return [tuple(row) for row in rows]


async def test_unanswered_refunds_are_retried_by_the_worker_and_refunded_once(shop, app, peer, stocked_sku):
    simulator, _ = peer
    _register(shop, peer, timeout_seconds=0.3)
    order = await _paid(shop, peer, stocked_sku)

    simulator.fail_next(1, status=503)  # an outage at Alipay: the admin's call gets a 5xx
    first = await _refund(shop, order, quantity=1)
    assert (first["status"], first["attempts"]) == ("requested", 1) and "HTTP 503" in first["last_error"]
    assert first["actions"] == []  # the worker's to retry, nobody else's

    simulator.latency = 1.0  # Alipay refunds, but its answer comes after our timeout
    assert await _worker_when_due(shop) == 1
    stored = await _stored(shop)
    assert (stored.status, stored.attempts) == ("requested", 2) and "Timeout" in stored.last_error
    for _ in range(100):  # the peer carries it out once its delay is over
        if simulator.trade(order["payment_no"]).refunded_cents:
            break
        await asyncio.sleep(0.05)
    assert simulator.trade(order["payment_no"]).refunded_cents == 1980  # the money did go back
    simulator.latency = 0

    _register(shop, peer, gateway_url="http://127.0.0.1:9/gateway.do")  # connection refused
    assert await _worker_when_due(shop) == 1
    assert "ConnectError" in (await _stored(shop)).last_error

    _register(shop, peer)  # reachable again: the same refund number is answered with the refund it made
    assert await _worker_when_due(shop) == 1
    stored = await _stored(shop)
    assert (stored.status, stored.attempts, stored.last_error) == ("succeeded", 4, None)
    trade = simulator.trade(order["payment_no"])
    assert list(trade.refunds) == [first["refund_no"]] and trade.refunded_cents == 1980  # refunded once
    view = await shop.get_order(order)
    assert (view["status"], view["refunded_cents"]) == ("refunded", 1980)


async def test_a_gateway_down_for_hours_stalls_the_refund_until_an_operator_retries_it(shop, app, peer, stocked_sku):
    simulator, _ = peer
    _register(shop, peer)
    order = await _paid(shop, peer, stocked_sku, undeliverable=True)
    assert (await shop.get_order(order))["status"] == "refund_pending"
    simulator.fail_next(refunds_service.AUTOMATIC_ATTEMPTS, status=502)
    refund = await _refund(shop, order)
    early = await shop.client.post(f"/api/admin/refunds/{refund['refund_no']}/retry", headers=shop.admin)
    assert early.status_code == 409 and early.json()["code"] == "refund_not_stalled"
    assert await _needing_staff(shop) == []  # the worker's, still

    for _ in range(refunds_service.AUTOMATIC_ATTEMPTS - 1):
        assert await _worker_when_due(shop) == 1
    stored = await _stored(shop)
    assert (stored.status, stored.attempts, stored.next_attempt_at) == (
        "requested", refunds_service.AUTOMATIC_ATTEMPTS, None)
    assert stored.last_error.startswith(f"no answer after {refunds_service.AUTOMATIC_ATTEMPTS} attempts")
    far = dt.datetime.now(dt.UTC) + dt.timedelta(days=30)
    assert await refunds_service.execute_due_refunds(db=shop.ctx.db, gateways=shop.ctx.gateways, now=far) == 0
    listed = (await shop.client.get(f"/api/admin/orders/{order['order_no']}/refunds", headers=shop.admin)).json()
    assert listed[0]["actions"] == ["retry"]  # never "withdraw": Alipay may have made it
    assert [r.refund_no for r, _ in await _needing_staff(shop)] == [refund["refund_no"]]  # 退款待处理
    withdraw = await shop.client.post(f"/api/admin/refunds/{refund['refund_no']}/withdraw", headers=shop.admin,
                                      json={"reason": "give up"})
    assert withdraw.status_code == 409 and withdraw.json()["code"] == "illegal_refund_transition"
    assert (await shop.get_order(order))["status"] == "refund_pending"

    retried = await shop.client.post(f"/api/admin/refunds/{refund['refund_no']}/retry", headers=shop.admin)
    assert retried.status_code == 200, retried.text
    body = retried.json()
    assert (body["status"], body["attempts"], body["actions"]) == ("succeeded", 1, [])
    assert [e["to_status"] for e in body["events"]] == ["requested", "requested", "succeeded"]
    assert (body["events"][1]["actor"], body["events"][1]["reason"]) == ("admin", "retried by an operator")
    assert simulator.trade(order["payment_no"]).refunded_cents == 1980
    assert (await shop.get_order(order))["status"] == "refunded"
    assert await _audit(shop) == [("admin", "refund_retried", refund["refund_no"])]
    assert await _needing_staff(shop) == []


async def test_a_refused_refund_is_withdrawn_and_its_card_keys_go_back_to_the_buyer(shop, app, peer, stocked_sku):
    simulator, _ = peer
    _register(shop, peer)
    order = await _paid(shop, peer, stocked_sku, quantity=2)
    simulator.refuse_refunds("ACQ.SELLER_BALANCE_NOT_ENOUGH", "卖家余额不足")
    refused = await _refund(shop, order, quantity=1)
    assert refused["status"] == "failed" and "ACQ.SELLER_BALANCE_NOT_ENOUGH" in refused["last_error"]
    assert refused["actions"] == ["retry", "withdraw"]
    # The key stays taken back while the refund waits for a decision.
    assert (await shop.get_order(order))["delivered_keys"] == 1
    url = f"/api/admin/refunds/{refused['refund_no']}/withdraw"

    for bad in ({}, {"reason": " "}, {"reason": "x", "extra": 1}):
        response = await shop.client.post(url, headers=shop.admin, json=bad)
        assert response.status_code == 422, response.text
    assert (await shop.client.post(url, json={"reason": "x"})).status_code == 401
    assert (await shop.client.post("/api/admin/refunds/RF000000000000000000/withdraw", headers=shop.admin,
                                   json={"reason": "x"})).status_code == 404
    assert (await _stored(shop)).status == "failed"  # nothing changed by any of those

    withdrawn = await shop.client.post(url, headers=shop.admin, json={"reason": "buyer keeps the key"})
    assert withdrawn.status_code == 200, withdrawn.text
    body = withdrawn.json()
    assert (body["status"], body["actions"]) == ("withdrawn", [])
    assert [(e["to_status"], e["actor"], e["reason"]) for e in body["events"]][-1] == (
        "withdrawn", "admin", "buyer keeps the key")
    assert await shop.count(CardKey, CardKey.status == CardKeyStatus.REFUNDED) == 0
    view = await shop.get_order(order)
    assert (view["status"], view["refunded_cents"], view["delivered_keys"]) == ("delivered", 0, 2)

    for action, body_ in (("withdraw", {"reason": "again"}), ("retry", None)):
        again = await shop.client.post(f"/api/admin/refunds/{refused['refund_no']}/{action}", headers=shop.admin,
                                       json=body_)
        assert again.status_code == 409 and again.json()["code"] == "illegal_refund_transition"
    assert await _audit(shop) == [("admin", "refund_withdrawn", refused["refund_no"])]

    # Its amount and its keys are free again: a new refund of the same key goes through.
    simulator.refuse_refunds(None)
    again = await _refund(shop, order, quantity=1)
    assert (again["status"], again["amount_cents"]) == ("succeeded", 1980)
    assert simulator.trade(order["payment_no"]).refunded_cents == 1980
    assert len(await shop.reveal(order)) == 1


async def test_a_refund_alipay_does_not_show_yet_cannot_be_withdrawn_and_is_refunded_once(shop, app, peer,
                                                                                           stocked_sku):
    """Alipay's refund query answering success without refund data means "not refunded (yet): retry with the
    same out_request_no", not a refusal: withdrawing it would let Alipay pay a buyer who also gets the goods."""
    simulator, _ = peer
    _register(shop, peer)
    order = await _paid(shop, peer, stocked_sku, undeliverable=True)
    simulator.hold_refunds = True  # accepted, no fund change; the refund query shows nothing until settled
    refund = await _refund(shop, order)
    assert (refund["status"], refund["actions"]) == ("processing", [])
    query = await shop.ctx.gateways.lookup("alipay").query_refund(refund_no=refund["refund_no"],
                                                                  payment_no=order["payment_no"])
    assert query.state == "processing" and "same out_request_no" in query.detail  # "not found" at Alipay

    for _ in range(3):  # the worker keeps asking with the same number; the refund never becomes refusable
        assert await _worker_when_due(shop) == 1
        stored = await _stored(shop)
        assert (stored.status, stored.next_attempt_at is not None) == ("processing", True)
        withdraw = await shop.client.post(f"/api/admin/refunds/{refund['refund_no']}/withdraw",
                                          headers=shop.admin, json={"reason": "Alipay says not found"})
        assert withdraw.status_code == 409, withdraw.text
        assert withdraw.json()["code"] == "illegal_refund_transition"
        assert "may still pay it" in withdraw.json()["detail"]
    listed = (await shop.client.get(f"/api/admin/orders/{order['order_no']}/refunds", headers=shop.admin)).json()
    assert listed[0]["actions"] == []
    assert (await shop.get_order(order))["status"] == "refund_pending"  # delivery not resumed
    # Each pass re-sent alipay.trade.refund (not only a query) with the refund's own out_request_no: the peer saw
    # one new refund, then re-sends of the number it already has (so nothing can move twice).
    sends = [(c.out_trade_no, c.out_request_no, c.outcome) for c in simulator.refund_calls if c.kind == "send"]
    assert sends == [(order["payment_no"], refund["refund_no"], "new")] + [
        (order["payment_no"], refund["refund_no"], "resend")] * 3
    assert {c.out_request_no for c in simulator.refund_calls} == {refund["refund_no"]}

    simulator.settle_refunds()  # Alipay pays the held refund
    assert await _worker_when_due(shop) == 1
    assert [(c.kind, c.outcome) for c in simulator.refund_calls[-2:]] == [("send", "resend"), ("query", "shown")]
    stored = await _stored(shop)
    assert (stored.status, stored.next_attempt_at) == ("succeeded", None)
    trade = simulator.trade(order["payment_no"])
    assert list(trade.refunds) == [refund["refund_no"]] and trade.refunded_cents == 1980  # refunded once
    view = await shop.get_order(order)
    assert (view["status"], view["refunded_cents"]) == ("refunded", 1980)
    assert await refunds_service.execute_due_refunds(db=shop.ctx.db, gateways=shop.ctx.gateways,
                                                     now=dt.datetime.now(dt.UTC) + dt.timedelta(days=1)) == 0
    assert await _audit(shop) == []


async def test_staff_without_the_admin_permission_cannot_retry_or_withdraw(shop, app, peer, stocked_sku):
    simulator, _ = peer
    _register(shop, peer)
    order = await _paid(shop, peer, stocked_sku)
    simulator.refuse_refunds()
    refused = await _refund(shop, order, quantity=1)
    await make_staff(shop, "viewer", permissions=("orders.read", "orders.refund"))
    login = await shop.client.post("/api/staff/login", json={"username": "viewer", "password": PASSWORD})
    assert login.status_code == 200, login.text
    staff = {"Authorization": f"Bearer {login.json()['token']}"}
    for action, body in (("retry", None), ("withdraw", {"reason": "x"})):
        response = await shop.client.post(f"/api/admin/refunds/{refused['refund_no']}/{action}", headers=staff,
                                          json=body)
        assert response.status_code == 403, response.text
    assert (await _stored(shop)).status == "failed" and await _audit(shop) == []


__all__ = ["keys", "peer"]  # fixtures shared with tests/payments/test_alipay.py


async def test_a_refused_refund_of_an_undeliverable_order_is_not_withdrawn_leaving_the_buyer_nothing(shop, app, peer,
                                                                                                     stocked_sku):
    """A refund-pending order (paid, nothing to deliver) only goes on to refunded: withdrawing its one refund would
    leave the buyer neither the money nor the goods; and no other refund is requested beside it: it is retried."""
    simulator, _ = peer
    _register(shop, peer)
    order = await _paid(shop, peer, stocked_sku, undeliverable=True)
    simulator.refuse_refunds()
    refused = await _refund(shop, order)
    assert refused["status"] == "failed"
    url = f"/api/admin/refunds/{refused['refund_no']}/withdraw"
    withdraw = await shop.client.post(url, headers=shop.admin, json={"reason": "give up"})
    assert withdraw.status_code == 409, withdraw.text
    assert withdraw.json()["code"] == "refund_not_allowed" and "neither" in withdraw.json()["detail"]
    assert (await _stored(shop)).status == "failed" and await _audit(shop) == []
    assert (await shop.get_order(order))["status"] == "refund_pending"

    simulator.refuse_refunds(None)
    # Nor is another refund of the same money requested beside it (refunds.service: one waiting for staff is
    # settled first): retrying it, with its own number, is the way on.
    other = await shop.client.post(f"/api/admin/orders/{order['order_no']}/refunds", headers=shop.admin,
                                   json={"reason": "buyer asked"})
    assert other.status_code == 409 and other.json()["code"] == "refund_awaiting_staff", other.text
    retried = await shop.client.post(f"/api/admin/refunds/{refused['refund_no']}/retry", headers=shop.admin)
    assert retried.status_code == 200 and retried.json()["status"] == "succeeded", retried.text
    assert (await shop.get_order(order))["status"] == "refunded"
