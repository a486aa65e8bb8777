"""A WeChat Pay refund that comes back ABNORMAL (退款异常: the buyer's bank card refused the money WeChat Pay already
took from the merchant; the merchant sends it to the buyer's balance or another card on the merchant platform) is
not a refusal: it is not 'failed', so staff cannot withdraw it (the buyer would get the goods and, later, the
money); it stays processing until WeChat Pay reports it SUCCESS, and is refunded once."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from payments.test_wechat import _post, _start, sim, wechat  # the WeChat Pay test peer on a real port (fixtures)
from quanyi.refunds import service as refunds_service
from quanyi.refunds.models import Refund


async def _stored(shop) -> Refund:  # type: ignore[no-untyped-def]
    return await shop.scalar(select(Refund).execution_options(populate_existing=True))


async def _worker_when_due(shop) -> int:  # type: ignore[no-untyped-def]
    due = (await _stored(shop)).next_attempt_at
    assert due is not None
    return await refunds_service.execute_due_refunds(db=shop.ctx.db, gateways=shop.ctx.gateways,
                                                     now=due.replace(tzinfo=dt.UTC) if due.tzinfo is None else due)


async def test_an_abnormal_wechat_refund_cannot_be_withdrawn_and_is_refunded_once(shop, wechat, sim, order):
    payment_no = await _start(shop, order, wechat)
    sim.pay(payment_no)
    [notification] = sim.take_notifications()
    assert (await _post(shop, notification)).status_code == 200
    response = await shop.client.post(f"/api/admin/orders/{order['order_no']}/refunds", headers=shop.admin,
                                      json={"reason": "buyer asked", "quantity": 1})
    assert response.status_code == 201, response.text
    refund = response.json()
    assert refund["status"] == "processing"

    sim.settle_refunds("ABNORMAL")  # the bank refused the buyer's card: WeChat Pay holds the money
    assert await _worker_when_due(shop) == 1
    listed = (await shop.client.get(f"/api/admin/orders/{order['order_no']}/refunds", headers=shop.admin)).json()
    assert (listed[0]["status"], listed[0]["actions"]) == ("processing", [])
    withdraw = await shop.client.post(f"/api/admin/refunds/{refund['refund_no']}/withdraw", headers=shop.admin,
                                      json={"reason": "the bank refused it"})
    assert withdraw.status_code == 409, withdraw.text
    assert (await shop.get_order(order))["delivered_keys"] == 0  # the key stays taken back

    sim.settle_refunds("SUCCESS", from_status="ABNORMAL")  # the merchant sent it to the buyer's balance
    assert await _worker_when_due(shop) == 1
    assert (await _stored(shop)).status == "succeeded"
    view = await shop.get_order(order)
    assert (view["status"], view["refunded_cents"]) == ("refunded", refund["amount_cents"])


__all__ = ["sim", "wechat"]  # fixtures shared with tests/payments/test_wechat.py
