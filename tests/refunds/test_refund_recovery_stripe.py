"""A Stripe refund that stalled (no answer to its sends) and is retried by an operator a day later: Stripe keeps an
Idempotency-Key for 24 hours only, so the same refund number sent again then is a NEW refund at Stripe. The gateway
asks Stripe for the refund number first, so a refund Stripe did make (its answer lost) is recorded, never made twice."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from payments.test_stripe import _config, _paid, gateway, sim  # the Stripe test peer on a real port (fixtures)
from quanyi.payments.stripe.gateway import StripeGateway
from quanyi.refunds import service as refunds_service
from quanyi.refunds.models import Refund


async def _stored(shop) -> Refund:  # type: ignore[no-untyped-def]
    return await shop.scalar(select(Refund).execution_options(populate_existing=True))


async def _worker_when_due(shop) -> int:  # type: ignore[no-untyped-def]
    due = (await _stored(shop)).next_attempt_at
    assert due is not None
    return await refunds_service.execute_due_refunds(db=shop.ctx.db, gateways=shop.ctx.gateways,
                                                     now=due.replace(tzinfo=dt.UTC) if due.tzinfo is None else due)


async def test_a_stalled_refund_stripe_made_is_not_made_again_when_retried_a_day_later(shop, gateway, sim):
    sku = await shop.make_sku(code="STRIPE-TWO")
    await shop.stock(sku, 2)
    order = await shop.create_order(sku.id, quantity=2)
    await _paid(shop, sim, order)
    shop.ctx.gateways.register(StripeGateway(_config(sim, timeout_seconds=0.3), http=shop.ctx.http))

    sim.refund_latency = 1.0  # Stripe makes the refund, its answer comes after our timeout
    response = await shop.client.post(f"/api/admin/orders/{order['order_no']}/refunds", headers=shop.admin,
                                      json={"reason": "buyer asked", "quantity": 1})
    assert response.status_code == 201, response.text
    refund = response.json()
    assert refund["status"] == "requested" and "Timeout" in refund["last_error"]
    assert [r["amount"] for r in sim.refunds()] == [refund["amount_cents"]]  # the money did go back
    sim.refund_latency = 0

    sim.fail_next(refunds_service.AUTOMATIC_ATTEMPTS - 1, 502)  # then hours of Stripe trouble: stalled
    for _ in range(refunds_service.AUTOMATIC_ATTEMPTS - 1):
        assert await _worker_when_due(shop) == 1
    stalled = await _stored(shop)
    assert (stalled.status, stalled.next_attempt_at) == ("requested", None)

    sim.forget_idempotency_keys()  # the operator comes back a day later
    retried = await shop.client.post(f"/api/admin/refunds/{refund['refund_no']}/retry", headers=shop.admin)
    assert retried.status_code == 200, retried.text
    assert retried.json()["status"] == "succeeded"
    assert [r["amount"] for r in sim.refunds()] == [refund["amount_cents"]]  # refunded once, not twice
    view = await shop.get_order(order)
    assert (view["refunded_cents"], view["delivered_keys"]) == (refund["amount_cents"], 1)


__all__ = ["gateway", "sim"]  # fixtures shared with tests/payments/test_stripe.py
