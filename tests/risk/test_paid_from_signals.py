"""*Unpaid orders* (failed_payments) subtracts the orders a client paid in its window. With the database counters a
payment made within an hour of its checkout (risk clock) is counted from the order's signals row, which keeps the
payment's risk-clock moment (`paid_risk_at`), instead of three `paid:<ip|device|contact>` counter events; the other
payments (later, before their checkout's moment, or of an order without a signals row) still write their events
(docs/PERFORMANCE.md, section 28). Redis counters keep their events.

The answers must be the old ones. The cases below, but the rows test, pass on the code before the change too
(checked: this file against that code's sources): just inside and just outside each edge of the paid window (a
payment at P counts for a judgement at t when P > t - window and P <= t), for payments counted from the row and
payments that still write events (at the hour's bound: a millisecond inside and exactly on it), every way an order is
paid (the notification's one statement, its two statements, the general way) and judged (the checkout's fast way
and general way; the payment stage, its own payment counted), on both backends."""

from __future__ import annotations

import datetime as dt
import itertools
import uuid
from typing import Any

import pytest
from sqlalchemy import delete, select

from quanyi.orders.models import Order
from quanyi.payments import express
from quanyi.risk import counters as risk_counters
from quanyi.risk import engine as risk_engine
from quanyi.risk import order_stage
from quanyi.risk.counters import DatabaseCounters, RedisCounters
from quanyi.risk.models import CounterEvent, OrderRiskSignals
from quanyi.risk.rules import Signals, Stage, placed_events
from risk.support import add_rule, checkout, issued_cookie, refused, set_clock
from risk.test_counters import REDIS_URL, needs_redis

T0 = dt.datetime(2026, 12, 1, 4, 0, tzinfo=dt.UTC)  # whole seconds: the edges are exact in floating point
WINDOW, GRACE = 3600, 600
WITHIN = 3600.0  # risk.engine.PAID_COUNTED_WITHIN (the rows test checks it): written here for the old code's run
CLIENT = {"ip": "198.51.100.41", "contact": "slow@example.com", "device": "dPAIDDEVICE0000000001"}
_n = itertools.count(1)


@pytest.fixture
async def goods(shop):
    sku = await shop.make_sku(code="PAIDSIG", price_cents=1980)
    await shop.stock(sku, 30)
    return sku


def _at(seconds: float) -> dt.datetime:
    return T0 + dt.timedelta(seconds=seconds)


async def _place(shop, goods, dimension: str, seconds: float, n: int = 1) -> list[dict[str, Any]]:
    """`n` orders at T0 + `seconds`, each the client's in `dimension` only (unique in the other two)."""
    set_clock(shop, _at(seconds))
    placed = []
    for _ in range(n):
        k = next(_n)
        client = {"ip": CLIENT["ip"] if dimension == "ip" else f"192.0.2.{k % 250 + 1}",
                  "contact": CLIENT["contact"] if dimension == "contact" else f"p{k}@example.com",
                  "device_cookie": issued_cookie(shop, CLIENT["device"] if dimension == "device"
                                                 else f"dOTHERDEVICE{k:09d}")}
        response = await checkout(shop, goods.id, **client)
        assert response.status_code == 201, response.text
        placed.append(response.json())
    return placed


async def _probe(shop, goods, dimension: str, seconds: float):  # type: ignore[no-untyped-def]
    """The client's checkout at T0 + `seconds`: the client's in every dimension but the device, unless asked."""
    set_clock(shop, _at(seconds))
    return await checkout(shop, goods.id, ip=CLIENT["ip"], contact=CLIENT["contact"],
                          device_cookie=issued_cookie(shop, CLIENT["device"] if dimension == "device"
                                                      else f"dPROBEDEVICE{next(_n):09d}"))


async def _pay(shop, order: dict[str, Any], seconds: float, way: str, monkeypatch) -> None:
    """Pay `order` at T0 + `seconds` on the risk clock: `statement` (the express lane; on PostgreSQL the
    notification's one statement), `two statements` (PostgreSQL: the express lane's lock, then its writes) or
    `general` (orders.service.apply_payment: risk.payment_stage.hold_at_payment)."""
    if way == "two statements" and shop.ctx.db.dialect != "postgresql":
        pytest.skip("SQLite's express lane has one way")
    set_clock(shop, _at(seconds))
    with monkeypatch.context() as patched:
        if way != "statement":
            patched.setattr(express, "DELIVER_WHILE_LOCKING", False)
        if way == "general":
            async def never(**_kwargs: Any) -> bool:
                return False

            patched.setattr(express, "takes_express_lane", never)
        await shop.pay(order)


async def _forget_signals(shop, order: dict[str, Any]) -> None:
    """As if placed where no risk runtime was installed: no signals row (its payment's ip: the order's)."""
    async with shop.ctx.db.transaction() as session:
        oid = await session.scalar(select(Order.id).where(Order.order_no == order["order_no"]))
        await session.execute(delete(OrderRiskSignals).where(OrderRiskSignals.order_id == oid))


def _general_checkout(monkeypatch, judged: str) -> None:
    if judged == "general":
        monkeypatch.setattr(order_stage, "judged_without_counts", lambda *_args: False)


# Seconds from the paid order's checkout to its payment: within the hour (counted from its row), a millisecond
# inside the hour's bound, on the bound (events), before its checkout (a clock set back: events), no signals row.
DELAYS = {"a minute": 60.0, "just within the hour": WITHIN - 0.001, "the hour": WITHIN,
          "before the checkout": -100.0, "no signals row": 60.0}


async def _paid_window_edge(shop, goods, monkeypatch, dimension: str, delay: str, way: str, judged: str) -> None:
    """Order A placed at T0 and paid at P = T0 + delay; two more unpaid at P + 100. A probe at P + window - 1 ms
    still subtracts A's payment (allowed: one unpaid more than... the rule's limit exactly); at P + window it does
    not (refused)."""
    seconds = DELAYS[delay]
    in_window = 2 + (1 if seconds < 0 else 0)  # A itself is placed within the probes' window when paid before it
    await add_rule(shop, "failed_payments", {"dimension": dimension, "window_seconds": WINDOW,
                                             "max_unpaid": in_window - 1, "grace_seconds": GRACE})
    (first,) = await _place(shop, goods, dimension, 0)
    if delay == "no signals row":
        await _forget_signals(shop, first)
    await _pay(shop, first, seconds, way, monkeypatch)
    await _place(shop, goods, dimension, seconds + 100, 2)
    _general_checkout(monkeypatch, judged)
    response = await _probe(shop, goods, dimension, seconds + WINDOW - 0.001)
    assert response.status_code == 201, response.text
    assert refused(await _probe(shop, goods, dimension, seconds + WINDOW))


@pytest.mark.parametrize("judged", ["fast", "general"])
@pytest.mark.parametrize("way", ["statement", "two statements", "general"])
@pytest.mark.parametrize("delay", list(DELAYS))
async def test_a_payment_leaves_the_window_at_its_edge(shop, goods, monkeypatch, delay, way, judged):
    await _paid_window_edge(shop, goods, monkeypatch, "contact", delay, way, judged)


@pytest.mark.parametrize("judged", ["fast", "general"])
@pytest.mark.parametrize(("dimension", "delay"), [("ip", "a minute"), ("ip", "the hour"), ("ip", "no signals row"),
                                                  ("device", "a minute"), ("device", "the hour")])
async def test_a_payment_leaves_the_window_at_its_edge_per_dimension(shop, goods, monkeypatch, dimension, delay,
                                                                    judged):
    await _paid_window_edge(shop, goods, monkeypatch, dimension, delay, "statement", judged)


@pytest.mark.parametrize(("dimension", "way", "judged"),
                         [("contact", way, judged) for way in ("statement", "two statements", "general")
                          for judged in ("fast", "general")]
                         + [("ip", "general", "fast"), ("device", "general", "fast")])
async def test_a_payment_after_the_judgement_is_not_counted(shop, goods, monkeypatch, dimension, way, judged):
    """The window's other end (the risk clock set back): three placed at T0, one paid at P = T0 + 1000 s. At
    P - 1 ms three are unpaid (refused), at P two."""
    await add_rule(shop, "failed_payments", {"dimension": dimension, "window_seconds": WINDOW, "max_unpaid": 2,
                                             "grace_seconds": GRACE})
    first, *_ = await _place(shop, goods, dimension, 0, 3)
    await _pay(shop, first, 1000, way, monkeypatch)
    _general_checkout(monkeypatch, judged)
    assert refused(await _probe(shop, goods, dimension, 1000 - 0.001))
    response = await _probe(shop, goods, dimension, 1000)
    assert response.status_code == 201, response.text


@pytest.mark.parametrize("way", ["statement", "general"])
@pytest.mark.parametrize("delay", ["a minute", "the hour"])
@pytest.mark.parametrize(("moment", "held"), [(WINDOW - 0.001, False), (WINDOW, True)])
async def test_the_payment_stage_counts_its_own_payment_and_the_earlier_ones(shop, goods, monkeypatch, way, delay,
                                                                           moment, held):
    """*Unpaid orders* judged at payment (the general way; its own payment counted as paid): A paid at P; B, C and X
    placed at P + 100; X paid at P + window - 1 ms (A and X paid, one unpaid: delivered) or at P + window (A out of the
    window: two unpaid, held for review)."""
    seconds = DELAYS[delay]
    (first,) = await _place(shop, goods, "contact", 0)
    await _pay(shop, first, seconds, way, monkeypatch)
    *_, last = await _place(shop, goods, "contact", seconds + 100, 3)
    await add_rule(shop, "failed_payments", {"dimension": "contact", "window_seconds": WINDOW, "max_unpaid": 1,
                                             "grace_seconds": GRACE}, stages=["payment"])
    await _pay(shop, last, seconds + moment, "statement", monkeypatch)  # such a rule: the general way judges it
    async with shop.ctx.db.read_session() as session:
        status = await session.scalar(select(Order.status).where(Order.order_no == last["order_no"]))
    assert status == ("under_review" if held else "delivered")


@needs_redis
@pytest.mark.parametrize("way", ["statement", "general"])
async def test_redis_counters_keep_their_paid_events(shop, goods, monkeypatch, way):
    counters = RedisCounters(REDIS_URL, retention_seconds=3 * 86_400, prefix=f"quanyi-test:{uuid.uuid4().hex}:")
    shop.ctx.risk.counters = counters
    try:
        await _paid_window_edge(shop, goods, monkeypatch, "contact", "a minute", way, "general")
        assert await counters.count(f"paid:contact:{CLIENT['contact']}", window_seconds=60,
                                    at=_at(60).timestamp()) == 1
    finally:
        await counters.close()


async def test_paid_within_the_hour_writes_no_paid_events_and_counts_the_same(shop, goods, monkeypatch):
    """Rows: a payment within the hour of its checkout leaves its moment on the signals row and no `paid` event
    (the payer's events as before); one on the hour's bound its three events. Reads: the probe's count and the old
    count of the events the old code wrote (`placed_events(.., "paid")` of each row, at its payment's moment) agree
    around every payment's moment and the windows' edges."""
    monkeypatch.setattr(risk_counters.random, "random", lambda: 1.0)  # no pruning now and then
    orders = await _place(shop, goods, "contact", 0, 4)
    paid = {}
    for order, (seconds, way) in zip(orders, ((60.0, "statement"), (WITHIN - 0.001, "general"),
                                              (WITHIN, "statement"), (WITHIN, "general")), strict=True):
        await _pay(shop, order, seconds, way, monkeypatch)
        paid[order["order_no"]] = _at(seconds).timestamp()
    async with shop.ctx.db.transaction() as session:
        rows = (await session.execute(select(OrderRiskSignals, Order.order_no).join(
            Order, Order.id == OrderRiskSignals.order_id))).all()
        assert len(rows) == 4
        events = (await session.execute(select(CounterEvent.key, CounterEvent.member, CounterEvent.at)
                                        .where(CounterEvent.key.like("paid:%")))).all()
        late = {str(row.order_id) for row, order_no in rows if paid[order_no] - row.at >= WITHIN}
        assert len(late) == 2 and {member for _, member, _ in events} == late and len(events) == 6, events
        assert risk_engine.PAID_COUNTED_WITHIN == WITHIN
        for row, order_no in rows:
            assert row.paid and row.paid_risk_at == (None if str(row.order_id) in late else paid[order_no])
        old = [(key, member, paid[order_no]) for row, order_no in rows if str(row.order_id) not in late
               for key, member in placed_events(Signals(stage=Stage.PAYMENT, ip=row.ip, device=row.device,
                                                        contact=row.contact, contact_kind="email", sku_id=row.sku_id,
                                                        quantity=row.quantity, amount_cents=row.amount_cents,
                                                        at=paid[order_no], local_time=dt.time(),
                                                        order_id=row.order_id), "paid")]
        runtime = risk_engine.runtime_of(session)
        moments = {p + d for p in paid.values() for d in (-0.001, 0, 0.001, WINDOW - 0.001, WINDOW, WINDOW + 0.001,
                                                           GRACE, 86_400)}
        asked = [(getattr(row, dimension), dimension, at, window) for row, _ in rows
                 for dimension in ("ip", "device", "contact") for at in moments
                 for window in (WINDOW, GRACE, 86_400, 1)]
        new = []
        for value, dimension, at, window in asked:
            probe = risk_engine.probe_of(runtime, session, Signals(
                stage=Stage.ORDER, ip="", device="", contact="", contact_kind="email", sku_id=0, quantity=1,
                amount_cents=0, at=at, local_time=dt.time()))
            new.append(await probe.paid_orders(dimension, value, window))
        session.add_all([CounterEvent(key=key, member=member, at=at) for key, member, at in old])
        await session.flush()
        counters = DatabaseCounters(shop.ctx.db, retention_seconds=8 * 86_400)
        for (value, dimension, at, window), answer in zip(asked, new, strict=True):
            assert answer == await counters.count(f"paid:{dimension}:{value}", window_seconds=window, at=at,
                                                  session=session), (dimension, at, window)
        assert max(new) == 4 and min(new) == 0
        await session.rollback()
