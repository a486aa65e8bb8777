"""The purchase lane (orders/purchase_lane.py) answers start payment, the payment notification and the reveal with
the same bytes as their FastAPI routes (status, every header in order, body), good input and bad, and leaves the
same rows; what it does not take on goes to the routes. Each request is sent with the lane off, then on."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from quanyi.inventory.models import KeyReveal
from quanyi.ledger.models import DeferredPosting
from quanyi.orders.access import order_access_token
from quanyi.orders.models import Order, OrderEvent
from quanyi.orders.purchase_lane import PurchaseLane
from quanyi.payments.models import Payment

_LANE = PurchaseLane.__call__


async def _passthrough(self: PurchaseLane, scope: Any, receive: Any, send: Any) -> None:
    await self.app(scope, receive, send)


class Lane:
    """Switches the lane off and on, and counts the requests it handed to the app while on."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.forwarded = 0

    def _instance(self) -> PurchaseLane:
        layer = self.app.middleware_stack
        while not isinstance(layer, PurchaseLane):
            layer = layer.app
        return layer

    async def both(self, send: Callable[[], Awaitable[httpx.Response]]) -> tuple[httpx.Response, httpx.Response]:
        """The answer with the lane off, then with it on."""
        PurchaseLane.__call__ = _passthrough  # type: ignore[method-assign]
        try:
            off = await send()
        finally:
            PurchaseLane.__call__ = _LANE  # type: ignore[method-assign]
        lane = self._instance()
        inner = lane.app

        async def counting(scope: Any, receive: Any, send_: Any) -> None:
            self.forwarded += 1
            await inner(scope, receive, send_)

        lane.app = counting
        try:
            on = await send()
        finally:
            lane.app = inner
        return off, on

    async def same(self, send: Callable[[], Awaitable[httpx.Response]], *, taken: bool,
                   normalize: Callable[[bytes], bytes] = lambda body: body) -> httpx.Response:
        """Both answers byte for byte; `taken`: whether the lane answered itself (else the app did)."""
        before = self.forwarded
        off, on = await self.both(send)
        assert (on.status_code, on.headers.raw, normalize(on.content)) == \
               (off.status_code, off.headers.raw, normalize(off.content))
        assert self.forwarded == before + (0 if taken else 1)
        assert on.status_code < 500, on.text
        return on


@pytest.fixture
async def lane(app: Any, client: httpx.AsyncClient) -> Lane:
    await client.get("/healthz")  # builds the middleware stack
    return Lane(app)


def _cashier_token(body: bytes) -> bytes:
    # The sandbox's cashier token carries its expiry second: the only part of the answer that may differ.
    return re.sub(rb"t=[A-Za-z0-9_\-.]+", b"t=TOKEN", body)


async def _rows(shop: Any, model: Any, *where: Any) -> int:
    return await shop.count(model, *where)


async def test_start_payment_answers_as_the_route(shop, order, lane: Lane) -> None:
    url = f"/api/orders/{order['order_no']}/payments"
    auth = shop.auth(order)
    post = shop.client.post
    answer = await lane.same(lambda: post(url, headers=auth, json={"gateway": "sandbox"}), taken=True,
                             normalize=_cashier_token)
    assert answer.status_code == 201 and answer.json()["payment_no"].startswith("PY")
    await lane.same(lambda: post(url, headers=auth), taken=True, normalize=_cashier_token)  # no body: defaults
    await lane.same(lambda: post(url, headers=auth, json={"mode": "qr"}), taken=True, normalize=_cashier_token)
    null = {"content-type": "application/json", **auth}  # JSON null is "no body" to the route: the route answers
    await lane.same(lambda: post(url, headers=null, content=b"null"), taken=False, normalize=_cashier_token)
    assert await shop.count(Payment) == 1  # the open payment, reused by every start
    # Bad input: the same 4xx either way, and nothing written.
    for kwargs, taken in [
        ({"json": {"gateway": "nope"}}, True),  # unknown gateway: the app's problem for the domain error
        ({"json": {"mode": "bogus"}}, False),  # validation: the route answers
        ({"json": {"gateway": "sandbox", "extra": 1}}, False),
        ({"content": b"{", "headers": {"content-type": "application/json"}}, False),
        ({"content": b"[]", "headers": {"content-type": "application/json"}}, False),
        ({"content": b'{"gateway": "sandbox"}', "headers": {"content-type": "text/plain"}}, False),
        ({"data": {"gateway": "sandbox"}}, False),
    ]:
        headers = {**auth, **kwargs.pop("headers", {})}
        answer = await lane.same(lambda kw=kwargs, h=headers: post(url, headers=h, **kw), taken=taken)
        assert 400 <= answer.status_code < 500, (kwargs, answer.text)
    for headers in ({}, {"X-Order-Token": "wrong"}, {"X-Order-Token": "x" * 200}):
        answer = await lane.same(lambda h=headers: post(url, headers=h, json={}), taken=False)
        assert answer.status_code in (401, 403, 404, 422)
    await lane.same(lambda: post("/api/orders/" + "A" * 65 + "/payments", headers=auth), taken=False)
    ghost = order["order_no"][:-1] + ("2" if order["order_no"][-1] != "2" else "3")  # no such order
    ghost_auth = {"X-Order-Token": order_access_token(shop.ctx.settings.app_secret.get_secret_value(), ghost)}
    answer = await lane.same(lambda: post(f"/api/orders/{ghost}/payments", headers=ghost_auth), taken=True)
    assert answer.json()["code"] == "order_not_found"
    assert await shop.count(Payment) == 1


async def test_paid_order_cannot_start_payment_either_way(shop, paid_order, lane: Lane) -> None:
    url = f"/api/orders/{paid_order['order_no']}/payments"
    answer = await lane.same(lambda: shop.client.post(url, headers=shop.auth(paid_order), json={}), taken=True)
    assert answer.status_code == 409 and answer.json()["code"] == "order_not_payable"


async def test_notification_answers_as_the_route(shop, stocked_sku, lane: Lane) -> None:
    first, second = [await shop.create_order(stocked_sku.id) for _ in range(2)]
    payments = [await shop.start_payment(first), await shop.start_payment(second)]
    params = [shop.notification(payment) for payment in payments]
    calls = iter(params)
    off, on = await lane.both(lambda: shop.notify(next(calls)))  # each order paid once: one lane off, one on
    assert (on.status_code, on.headers.raw, on.content) == (off.status_code, off.headers.raw, off.content)
    assert on.status_code == 200 and on.text == "success" and lane.forwarded == 0
    for order in (first, second):
        oid = await shop.scalar(select(Order.id).where(Order.order_no == order["order_no"]))
        assert await shop.scalar(select(Order.status).where(Order.id == oid)) == "delivered"
        assert await shop.count(OrderEvent, OrderEvent.order_id == oid) == 3  # created, paid, delivered
        assert await shop.count(DeferredPosting, DeferredPosting.order_id == oid) in (0, 1)
    events, succeeded = await shop.count(OrderEvent), await shop.count(Payment, Payment.status == "succeeded")
    # The same notification again, either way: acknowledged, nothing new.
    for again in params:
        await lane.same(lambda p=again: shop.notify(p), taken=True)
    assert (await shop.count(OrderEvent), await shop.count(Payment, Payment.status == "succeeded")) == \
           (events, succeeded)
    # Not believable: the gateway's refusal, byte for byte, nothing written.
    third = await shop.create_order(stocked_sku.id)
    payment = await shop.start_payment(third)
    forged = {**shop.notification(payment), "sign": "0" * 64}
    short = shop.notification({**payment, "amount_cents": payment["amount_cents"] - 1})
    for bad in (forged, short, shop.notification({**payment, "payment_no": "PY" + "0" * 18}),
                {**shop.notification(payment), "trade_status": "SUCCESS", "timestamp": "1"}):
        answer = await lane.same(lambda b=bad: shop.notify(b), taken=True)
        assert answer.status_code == 400 and answer.text.startswith("fail: "), answer.text
    answer = await lane.same(lambda: shop.client.post("/payments/sandbox/notify", content=b"%zz=1&a"), taken=True)
    assert answer.status_code == 400
    answer = await lane.same(lambda: shop.client.post("/payments/sandbox/notify", content=b"a=" + b"x" * 70_000),
                             taken=True)
    assert answer.text == "fail: notification body too large"
    assert await shop.scalar(select(Order.status).where(Order.order_no == third["order_no"])) == "pending_payment"
    answer = await lane.same(lambda: shop.client.post("/payments/nope/notify", data=forged), taken=True)
    assert answer.status_code == 404 and answer.headers["content-type"] == "application/problem+json"
    await lane.same(lambda: shop.client.post("/payments/NOPE/notify", data=forged), taken=False)
    await lane.same(lambda: shop.client.get("/payments/sandbox/notify"), taken=False)
    too_big = shop.ctx.settings.max_request_bytes + 1
    answer = await lane.same(lambda: shop.client.post("/payments/sandbox/notify", content=b"x" * too_big),
                             taken=False)
    assert answer.status_code == 413


async def test_reveal_answers_as_the_route_and_every_reveal_is_audited(shop, paid_order, lane: Lane) -> None:
    url = f"/api/orders/{paid_order['order_no']}/reveal"
    headers = {**shop.auth(paid_order), "User-Agent": "lane-test/1"}
    answer = await lane.same(lambda: shop.client.post(url, headers=headers), taken=True)
    assert answer.status_code == 200 and len(answer.json()["keys"]) == 1
    assert answer.headers["cache-control"] == "no-store"
    audit = (await shop.scalar(select(KeyReveal.id).order_by(KeyReveal.id.desc()).limit(1)))
    assert audit is not None
    async with shop.ctx.db.read_session() as session:
        rows = (await session.execute(select(KeyReveal.channel, KeyReveal.ip, KeyReveal.user_agent,
                                             KeyReveal.order_id))).all()
    assert len(rows) == 2 and rows[0] == rows[1] and rows[0].user_agent == "lane-test/1"
    for bad_headers in ({}, {"X-Order-Token": "wrong"}):
        answer = await lane.same(lambda h=bad_headers: shop.client.post(url, headers=h), taken=False)
        assert 400 <= answer.status_code < 500
    assert await shop.count(KeyReveal) == 2


async def test_reveal_of_an_unpaid_order_is_refused_either_way(shop, order, lane: Lane) -> None:
    url = f"/api/orders/{order['order_no']}/reveal"
    answer = await lane.same(lambda: shop.client.post(url, headers=shop.auth(order)), taken=True)
    assert answer.status_code == 409 and answer.json()["code"] == "order_not_delivered"
    assert await shop.count(KeyReveal) == 0
