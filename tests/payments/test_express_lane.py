"""The express lane of a payment notification (payments/express.py) writes exactly what the general way
(`orders.service.apply_payment`) writes for the same order, and leaves every other case to the general way."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select

from helpers import make_settings, signed_notification
from quanyi.config import Settings
from quanyi.inventory.models import CardKey
from quanyi.ledger.models import DeferredPosting, LedgerPosting
from quanyi.notifications.models import OutboxMessage
from quanyi.orders.models import Order, OrderEvent
from quanyi.payments import express
from quanyi.payments.models import Payment
from quanyi.risk.models import CounterEvent, OrderRiskSignals, RiskRule


@pytest.fixture
def settings(database_url: str) -> Settings:
    """A shop that e-mails its buyers and alerts its merchant's group: delivery enqueues both."""
    return make_settings(database_url, smtp_host="smtp.invalid", smtp_from="shop@example.com",
                         wecom_webhook_url="https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=test")


@pytest.fixture
def lanes(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Whether each notification was delivered by the express lane."""
    taken: list[bool] = []
    deliver = express.deliver

    async def spy(**kwargs: Any) -> bool:
        delivered = await deliver(**kwargs)
        taken.append(delivered)
        return delivered

    monkeypatch.setattr(express, "deliver", spy)
    return taken


async def _rows(shop, order: dict[str, Any]) -> dict[str, Any]:
    """Everything a paid order left behind, with its own numbers taken out so two orders compare."""
    async with shop.ctx.db.read_session() as session:
        row = await session.scalar(select(Order).where(Order.order_no == order["order_no"]))
        oid, no = row.id, row.order_no
        payment = await session.scalar(select(Payment).where(Payment.order_id == oid))
        events = (await session.execute(select(OrderEvent.from_status, OrderEvent.to_status, OrderEvent.reason)
                                        .where(OrderEvent.order_id == oid).order_by(OrderEvent.id))).all()
        keys = (await session.execute(select(CardKey.status, CardKey.sold_at.is_not(None))
                                      .where(CardKey.order_id == oid))).all()
        signals = await session.get(OrderRiskSignals, oid)
        counted = (await session.scalars(select(CounterEvent.key).where(CounterEvent.member == str(oid)))).all()
        postings = (await session.scalars(select(LedgerPosting.kind).where(LedgerPosting.order_id == oid))).all()
        messages = (await session.execute(select(OutboxMessage.channel, OutboxMessage.kind, OutboxMessage.recipient,
                                                 OutboxMessage.dedupe_key, OutboxMessage.payload)
                                          .where(OutboxMessage.order_id == oid))).all()
        waiting = await session.scalar(select(DeferredPosting.id).where(DeferredPosting.order_id == oid))
    assert row.paid_at is not None and row.paid_at == row.delivered_at == row.updated_at
    assert payment.paid_at is not None and payment.gateway_trade_no
    return {
        "order": (row.status, row.status_reason, row.refunded_cents),
        "events": [tuple(e) for e in events],
        "keys": sorted(tuple(k) for k in keys),
        "payment": (payment.status, payment.duplicate_of),
        "signals": (signals.paid, signals.payer),
        "counted": sorted(counted),
        "postings": sorted(postings),
        "messages": sorted((m.channel, m.kind, m.recipient, m.dedupe_key.replace(no, "N"),
                            sorted((k, v) for k, v in m.payload.items() if k not in ("order_no", "order_id")))
                           for m in messages),
        "waiting": waiting,
    }


async def test_the_express_lane_leaves_the_rows_the_general_way_leaves(shop, sku, lanes, monkeypatch):
    await shop.stock(sku, 5)
    await shop.create_order(sku.id)  # the shop's device cookie: both orders below carry the same device
    express_order = await shop.create_order(sku.id, quantity=2, contact="fan@example.com")
    general_order = await shop.create_order(sku.id, quantity=2, contact="fan@example.com")
    response = await shop.notify(shop.notification(await shop.start_payment(express_order), buyer_id="payer-1"))
    assert response.text == "success" and lanes == [True]

    async def never(**_kwargs: Any) -> bool:
        return False

    monkeypatch.setattr(express, "takes_express_lane", never)
    monkeypatch.setattr(express, "DELIVER_WHILE_LOCKING", False)  # PostgreSQL: its lock statement only locks
    response = await shop.notify(shop.notification(await shop.start_payment(general_order), buyer_id="payer-1"))
    assert response.text == "success" and lanes == [True]  # the general way did not ask the express lane

    fast, general = await _rows(shop, express_order), await _rows(shop, general_order)
    assert fast == general
    assert fast["order"][0] == "delivered" and fast["keys"] == [("sold", True)] * 2
    assert fast["events"][1:] == [("pending_payment", "paid", "payment confirmed"),
                                  ("paid", "delivered", "goods handed over")]
    assert fast["signals"][0] is True and fast["signals"][1]  # paid, by a known payer
    assert any(key.startswith("att:payer:") for key in fast["counted"])
    assert fast["postings"] == ["order_delivered", "payment_received"]  # posted after the commit (no worker here)
    assert [m[:2] for m in fast["messages"]] == [("email", "order_delivered"), ("wecom", "order_paid")]
    assert fast["waiting"] is None


async def test_a_repeated_notification_delivers_nothing_new(shop, sku, lanes):
    await shop.stock(sku, 2)
    order = await shop.create_order(sku.id)
    params = shop.notification(await shop.start_payment(order))
    assert (await shop.notify(params)).text == "success"
    assert (await shop.notify(params)).text == "success"
    assert lanes == [True]
    assert await shop.count(CardKey, CardKey.status == "sold") == 1
    assert await shop.count(OrderEvent, OrderEvent.to_status == "delivered") == 1
    assert await shop.count(OutboxMessage) == 2 and await shop.count(LedgerPosting) == 2


async def test_an_order_whose_reserved_key_went_back_is_topped_up_the_general_way(shop, sku, lanes):
    await shop.stock(sku, 3)
    order = await shop.create_order(sku.id, quantity=2)
    payment = await shop.start_payment(order)
    async with shop.ctx.db.transaction() as session:  # one of its keys was released (as at expiry), still in stock
        key = await session.scalar(select(CardKey).where(CardKey.status == "reserved").limit(1))
        key.status, key.order_id, key.reserved_at = "available", None, None
    assert (await shop.notify(shop.notification(payment))).text == "success"
    assert lanes == [False]  # the express lane changed nothing and left it to the general way
    assert (await shop.get_order(order))["status"] == "delivered"
    assert await shop.count(CardKey, CardKey.status == "sold") == 2
    assert await shop.count(CardKey, CardKey.status == "available") == 1
    assert await shop.count(OrderEvent, OrderEvent.to_status == "delivered") == 1


async def test_an_order_short_of_keys_and_stock_waits_for_its_refund(shop, sku, lanes):
    await shop.stock(sku, 2)
    order = await shop.create_order(sku.id, quantity=2)
    payment = await shop.start_payment(order)
    async with shop.ctx.db.transaction() as session:  # one reserved key voided by the operator
        key = await session.scalar(select(CardKey).where(CardKey.status == "reserved").limit(1))
        key.status, key.order_id = "voided", None
    assert (await shop.notify(shop.notification(payment))).text == "success"
    assert lanes == [False]
    assert (await shop.get_order(order))["status"] == "refund_pending"
    assert await shop.count(CardKey, CardKey.status == "sold") == 0
    assert await shop.count(CardKey, CardKey.status == "available") == 1  # its other key is back on sale
    assert await shop.scalar(select(Payment.status)) == "succeeded"


async def test_payment_stage_rules_take_the_general_way_and_order_stage_rules_do_not(shop, sku, lanes):
    await shop.stock(sku, 2)
    async with shop.ctx.db.transaction() as session:
        session.add(RiskRule(name="big", kind="amount_limit", params={"scope": "order", "max_quantity": 1000},
                             action="review", score=0, reason_code="big", stages=["order"], enabled=True))
    first = await shop.create_order(sku.id)
    await shop.pay(first)
    assert lanes == [True]
    async with shop.ctx.db.transaction() as session:
        rule = await session.scalar(select(RiskRule))
        rule.stages = ["order", "payment"]
    second = await shop.create_order(sku.id)
    await shop.pay(second)
    assert lanes == [True]  # not asked: the general way evaluated the payment stage
    assert (await shop.get_order(second))["status"] == "delivered"  # the rule did not hit


async def _counted(shop, since: int, order: dict[str, Any]) -> list[tuple[str, str]]:
    """The risk counter events written after id `since`, the order's own id and number taken out."""
    async with shop.ctx.db.read_session() as session:
        oid = await session.scalar(select(Order.id).where(Order.order_no == order["order_no"]))
        rows = (await session.execute(select(CounterEvent.key, CounterEvent.member).where(CounterEvent.id > since)
                                      .order_by(CounterEvent.id))).all()
    return [(key, "N" if member == str(oid) else member) for key, member in rows]


async def _last_event(shop) -> int:
    async with shop.ctx.db.read_session() as session:
        return int(await session.scalar(select(func.max(CounterEvent.id))) or 0)


@pytest.mark.parametrize("payer", ["payer-1", None])
async def test_delivering_in_the_lock_statement_leaves_the_rows_of_two_statements(shop, sku, lanes, monkeypatch,
                                                                                  payer):
    """PostgreSQL delivers the usual order in the statement that locks it; the same rows (and risk's paid counter
    events, in the same order) as locking and then delivering in a second statement (SQLite: both ways alike)."""
    await shop.stock(sku, 5)
    await shop.create_order(sku.id)  # the shop's device cookie: both orders below carry the same device
    one = await shop.create_order(sku.id, quantity=2, contact="fan@example.com")
    two = await shop.create_order(sku.id, quantity=2, contact="fan@example.com")
    extra = {"buyer_id": payer} if payer else {}
    since = await _last_event(shop)
    assert (await shop.notify(shop.notification(await shop.start_payment(one), **extra))).text == "success"
    counted_one = await _counted(shop, since, one)
    monkeypatch.setattr(express, "DELIVER_WHILE_LOCKING", False)
    since = await _last_event(shop)
    assert (await shop.notify(shop.notification(await shop.start_payment(two), **extra))).text == "success"
    counted_two = await _counted(shop, since, two)
    assert lanes == [True, True]
    assert await _rows(shop, one) == await _rows(shop, two)
    assert counted_one == counted_two and len(counted_one) == (5 if payer else 3)
    assert [key.split(":")[0] for key, _ in counted_one] == ["paid"] * 3 + (["att", "contacts"] if payer else [])


async def test_a_notification_that_the_lock_statement_refuses_changes_nothing(shop, sku, lanes):
    """Another amount or currency: the statement that locks delivers nothing, the checks refuse."""
    await shop.stock(sku, 2)
    order = await shop.create_order(sku.id)
    payment = await shop.start_payment(order)
    for amount, currency in ((payment["amount_cents"] + 1, "CNY"), (payment["amount_cents"], "USD")):
        response = await shop.notify(signed_notification(shop.sandbox_secret, payment_no=payment["payment_no"],
                                                         amount_cents=amount, currency=currency))
        assert response.status_code == 400 and lanes == []
    assert (await shop.get_order(order))["status"] == "pending_payment"
    assert await shop.count(CardKey, CardKey.status == "sold") == 0 and await shop.count(DeferredPosting) == 0
    assert (await shop.notify(shop.notification(payment))).text == "success" and lanes == [True]
    assert await shop.count(CardKey, CardKey.status == "sold") == 1
