"""*Unpaid orders* (failed_payments) counts the orders a client placed from their risk signals rows on the database
counters (risk.engine.placed_orders_count), no longer from `placed:<dimension>:<value>` counter events, which the
database counters do not write any more (docs/PERFORMANCE.md, section 24); Redis counters keep their events.

The answers must be the old ones. The HTTP cases below pass on the code before the change too (checked: the same
file against that code's sources), just inside and just outside each edge of the window and the grace: one order
placed at T0 is counted by a checkout at t when T0 > t - window and T0 <= t - grace. Each runs the fast way (the
gate's statement, risk.order_stage) and the general way (risk.engine's probe), on both backends."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from sqlalchemy import select

from quanyi.orders import service as orders_service
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
CLIENT = {"ip": "198.51.100.41", "contact": "slow@example.com"}
ELSEWHERE = {"ip": "203.0.113.9", "contact": "other@example.com"}


@pytest.fixture
async def goods(shop):
    sku = await shop.make_sku(code="PLACED", price_cents=1980)
    await shop.stock(sku, 20)
    return sku


def _at(seconds: float) -> dt.datetime:
    return T0 + dt.timedelta(seconds=seconds)


async def _two_placed_at_t0(shop, goods, dimension: str) -> list[dict]:
    """Two orders of the client at T0 (the rule allows one unpaid), from one device cookie; each differs from the
    probe's checkout in every dimension but `dimension`, so only that one counts them."""
    cookie = issued_cookie(shop, "dPLACEDDEVICE00000001")
    set_clock(shop, _at(0))
    placed = []
    for n in range(2):
        client = {"ip": CLIENT["ip"] if dimension == "ip" else f"192.0.2.{n + 1}",
                  "contact": CLIENT["contact"] if dimension == "contact" else f"p{n}@example.com",
                  "device_cookie": cookie if dimension == "device" else issued_cookie(shop, f"dOTHERDEVICE0000000{n}")}
        response = await checkout(shop, goods.id, **client)
        assert response.status_code == 201, response.text
        placed.append(response.json())
    return placed


async def _probe(shop, goods, dimension: str, seconds: float):  # type: ignore[no-untyped-def]
    set_clock(shop, _at(seconds))
    return await checkout(shop, goods.id, ip=CLIENT["ip"], contact=CLIENT["contact"],
                          device_cookie=issued_cookie(shop, "dPLACEDDEVICE00000001" if dimension == "device"
                                                      else "dPROBEDEVICE000000001"))


# (probe moment in seconds after T0, refused): the grace's edge is t = T0 + GRACE (T0 <= t - grace: counted), the
# window's is t = T0 + WINDOW (T0 > t - window: no longer counted); a millisecond either side.
EDGES = {"before the grace ends": (GRACE - 0.001, False), "the grace's last moment": (GRACE, True),
         "the window's last moment": (WINDOW - 0.001, True), "past the window": (WINDOW, False)}


@pytest.mark.parametrize("way", ["fast", "general"])
@pytest.mark.parametrize(("dimension", "edge"), [("contact", edge) for edge in EDGES]
                         + [(dim, edge) for dim in ("ip", "device")
                            for edge in ("before the grace ends", "the grace's last moment")])
async def test_unpaid_orders_just_inside_and_outside_the_window_and_the_grace(shop, goods, monkeypatch, way,
                                                                            dimension, edge):
    await add_rule(shop, "failed_payments", {"dimension": dimension, "window_seconds": WINDOW, "max_unpaid": 1,
                                             "grace_seconds": GRACE})
    await _two_placed_at_t0(shop, goods, dimension)
    if way == "general":
        monkeypatch.setattr(order_stage, "judged_without_counts", lambda *_args: False)
    seconds, hit = EDGES[edge]
    response = await _probe(shop, goods, dimension, seconds)
    assert refused(response) is hit, response.text


@pytest.mark.parametrize("way", ["fast", "general"])
@pytest.mark.parametrize(("then", "hit"), [("one paid", False), ("one cancelled", True), ("nothing", True)])
async def test_unpaid_orders_count_cancelled_orders_and_not_paid_ones(shop, goods, monkeypatch, way, then, hit):
    """Just below (one of the two paid: one unpaid) and just above (two unpaid; a cancelled order stays placed, as
    its `placed` event stayed)."""
    await add_rule(shop, "failed_payments", {"dimension": "contact", "window_seconds": WINDOW, "max_unpaid": 1,
                                             "grace_seconds": GRACE})
    first, second = await _two_placed_at_t0(shop, goods, "contact")
    if then == "one paid":
        set_clock(shop, _at(60))
        await shop.pay(first)
    elif then == "one cancelled":
        async with shop.ctx.db.transaction() as session:
            order = await orders_service.get_order(session=session, order_no=second["order_no"])
            await orders_service.cancel_order(session=session, order_id=order.id, reason="test")
    if way == "general":
        monkeypatch.setattr(order_stage, "judged_without_counts", lambda *_args: False)
    response = await _probe(shop, goods, "contact", GRACE + 1)
    assert refused(response) is hit, response.text


async def test_the_database_counters_write_no_placed_events_and_count_the_same(shop, goods, monkeypatch):
    """Rows: an order leaves its signals row and no `placed` event. Reads: the signals count and the old count of
    the events the old code wrote (`placed_events` of each signals row, at its moment) agree at every edge."""
    monkeypatch.setattr(risk_counters.random, "random", lambda: 1.0)  # no pruning now and then
    await add_rule(shop, "failed_payments", {"dimension": "contact", "window_seconds": WINDOW, "max_unpaid": 50,
                                             "grace_seconds": GRACE})
    for seconds, client in ((0, CLIENT), (0, ELSEWHERE), (30, CLIENT), (GRACE, CLIENT), (WINDOW, CLIENT)):
        set_clock(shop, _at(seconds))
        device = {"device": "header-device-1"} if client is CLIENT else {}  # ELSEWHERE: none
        assert (await checkout(shop, goods.id, **client, **device)).status_code == 201
    assert await shop.count(CounterEvent, CounterEvent.key.like("placed:%")) == 0
    async with shop.ctx.db.transaction() as session:
        rows = (await session.scalars(select(OrderRiskSignals))).all()
        assert len(rows) == 5
        old = [(key, member, row.at) for row in rows
               for key, member in placed_events(Signals(stage=Stage.ORDER, ip=row.ip, device=row.device,
                                                        contact=row.contact, contact_kind="email", sku_id=row.sku_id,
                                                        quantity=row.quantity, amount_cents=row.amount_cents,
                                                        at=row.at, local_time=dt.time(), order_id=row.order_id),
                                                "placed")]
        session.add_all([CounterEvent(key=key, member=member, at=at) for key, member, at in old])
        await session.flush()
        counters = DatabaseCounters(shop.ctx.db, retention_seconds=8 * 86_400)
        runtime = risk_engine.runtime_of(session)
        for row in rows:
            for dimension in ("ip", "device", "contact"):
                value = getattr(row, dimension)
                if not value:
                    continue  # the rule never asks about an empty value (no device): it judges nothing then
                for at in {row.at + d for d in (GRACE - 0.001, GRACE, GRACE + 0.001, WINDOW - 0.001, WINDOW)}:
                    probe = risk_engine.probe_of(runtime, session, Signals(
                        stage=Stage.ORDER, ip="", device="", contact="", contact_kind="email", sku_id=0, quantity=1,
                        amount_cents=0, at=at, local_time=dt.time()))
                    for window, until in ((WINDOW, at - GRACE), (WINDOW, at), (GRACE, at - 1)):
                        before = await counters.count(f"placed:{dimension}:{value}", window_seconds=window, at=at,
                                                      until=until, session=session)
                        assert await probe.placed_orders(dimension, value, window, until) == before, \
                            (dimension, value, at - row.at, window, until)
        await session.rollback()


@needs_redis
async def test_redis_counters_keep_their_placed_events(shop, goods):
    """With the counters in Redis the orders placed are counted from Redis, as before: written once the order
    commits, read by the rule."""
    counters = RedisCounters(REDIS_URL, retention_seconds=3600, prefix=f"quanyi-test:{uuid.uuid4().hex}:")
    shop.ctx.risk.counters = counters
    try:
        await add_rule(shop, "failed_payments", {"dimension": "contact", "window_seconds": WINDOW, "max_unpaid": 1,
                                                 "grace_seconds": GRACE})
        await _two_placed_at_t0(shop, goods, "contact")
        assert await counters.count(f"placed:contact:{CLIENT['contact']}", window_seconds=60, at=_at(0).timestamp()) \
            == 2
        assert not refused(await _probe(shop, goods, "contact", GRACE - 0.001))
        assert refused(await _probe(shop, goods, "contact", GRACE))
    finally:
        await counters.close()
