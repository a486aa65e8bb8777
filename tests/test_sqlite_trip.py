"""quanyi.sqlite_trip: prebuilt statements sent to SQLite in one trip to aiosqlite's thread send the SQL and values
SQLAlchemy sends for them (enums, UTC datetimes, JSON, floats, expanding IN, several rows), store what the ORM
reads back, stop where a step says so, fill in an earlier step's returned id, and raise database errors as
SQLAlchemy raises them, inside the caller's transaction."""

from __future__ import annotations

import datetime as dt

import aiosqlite
import pytest
from sqlalchemy import bindparam, event, func, insert, select, update
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects import sqlite

from quanyi import sqlite_trip
from quanyi.db import is_database_unavailable
from quanyi.inventory import service as inventory_service
from quanyi.inventory.models import CardKey, CardKeyStatus
from quanyi.notifications.models import OutboxMessage
from quanyi.orders import checkout, numbers, one_statement
from quanyi.orders.models import Order, OrderEvent
from quanyi.orders.one_statement import ORDER_ID, ORDER_ID_TEXT, Rider
from quanyi.orders.state import OrderStatus
from quanyi.pricing import service as pricing_service
from quanyi.risk import counters
from quanyi.risk.models import CounterEvent, OrderRiskSignals, RiskDecisionLog


@pytest.fixture(params=["sqlite"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


class Sent:
    """What the connection's statement listeners are shown: (SQL, DBAPI parameters, executemany)."""

    def __init__(self, engine) -> None:
        self.engine, self.seen = engine, []
        event.listen(engine, "before_cursor_execute", self._seen)

    def _seen(self, _conn, _cursor, statement, parameters, _context, executemany) -> None:
        if not statement.startswith("BEGIN"):
            self.seen.append((statement, parameters, executemany))

    def take(self) -> list:
        seen, self.seen = self.seen, []
        return seen

    def close(self) -> None:
        event.remove(self.engine, "before_cursor_execute", self._seen)


_ORDER = (update(Order.__table__).where(Order.__table__.c.id == bindparam("b_id"))
          .values(status=bindparam("b_status"), paid_at=bindparam("b_at"), updated_at=bindparam("b_at"),
                  status_reason=bindparam("b_reason")))
_KEYS = (update(CardKey.__table__).where(CardKey.__table__.c.id.in_(bindparam("b_ids", expanding=True)))
         .values(status=CardKeyStatus.SOLD.value, sold_at=bindparam("b_at")))
_EVENTS, _DECISION = insert(OrderEvent.__table__), insert(RiskDecisionLog.__table__)
_COUNTED, _OUTBOX = insert(CounterEvent.__table__), insert(OutboxMessage.__table__)


def _steps(order_id: int, key_ids: list[int], at: dt.datetime) -> list[sqlite_trip.Step]:
    return [
        sqlite_trip.Step(_ORDER, {"b_id": order_id, "b_status": OrderStatus.PAID, "b_at": at, "b_reason": "trip"}),
        sqlite_trip.Step(_KEYS, {"b_ids": key_ids, "b_at": at}),
        sqlite_trip.Step(_EVENTS, [{"order_id": order_id, "from_status": "a", "to_status": "b", "reason": "one",
                                    "created_at": at},
                                   {"order_id": order_id, "from_status": None, "to_status": "c", "reason": "two",
                                    "created_at": at + dt.timedelta(microseconds=1)}]),
        sqlite_trip.Step(_DECISION, {"stage": "payment", "order_id": order_id, "decision": "review", "score": 7,
                                     "rules_hit": [{"rule": "x", "n": 1.5}], "signals": {"ip": "1.2.3.4", "ok": True},
                                     "outcome": "held", "created_at": at}),
        sqlite_trip.Step(_COUNTED, [{"key": "k", "member": str(order_id), "at": 1700000000.25}]),
        sqlite_trip.Step(_OUTBOX, {"channel": "email", "recipient": "a@example.com", "kind": "k", "locale": "zh-CN",
                                   "payload": {"中": "文", "n": [1, 2]}, "dedupe_key": f"trip-{order_id}",
                                   "status": "pending", "attempts": 0, "next_attempt_at": at,
                                   "merchant_id": 1, "created_at": at, "updated_at": at}),
    ]


async def test_a_trip_sends_what_sqlalchemy_sends_and_the_orm_reads_it_back(shop, order):
    at = dt.datetime(2026, 12, 5, 1, 2, 3, 456789, tzinfo=dt.timezone(dt.timedelta(hours=8)))
    async with shop.ctx.db.read_session() as session:
        found = (await session.execute(select(Order).where(Order.order_no == order["order_no"]))).scalar_one()
        key_ids = list((await session.execute(select(CardKey.id).where(CardKey.order_id == found.id))).scalars())
    sent = Sent(shop.ctx.db.write_engine.sync_engine)
    try:
        with pytest.raises(RuntimeError):  # SQLAlchemy's own way, then rolled back
            async with shop.ctx.db.transaction() as session:
                connection = await session.connection()
                for step in _steps(found.id, key_ids, at):
                    await connection.execute(step.statement, step.params)
                raise RuntimeError("roll back")
        by_sqlalchemy = sent.take()
        async with shop.ctx.db.transaction() as session:
            done = await sqlite_trip.run(await session.connection(), _steps(found.id, key_ids, at))
        by_trip = sent.take()
    finally:
        sent.close()
    assert by_trip == by_sqlalchemy and len(by_trip) == 6
    assert [rowcount for rowcount, _ in done] == [1, len(key_ids), 2, 1, 1, 1]

    async with shop.ctx.db.read_session() as session:
        again = (await session.execute(select(Order).where(Order.id == found.id))).scalar_one()
        assert (again.status, again.paid_at, again.updated_at, again.status_reason) == (
            OrderStatus.PAID, at.astimezone(dt.UTC), at.astimezone(dt.UTC), "trip")
        keys = (await session.execute(select(CardKey).where(CardKey.id.in_(key_ids)))).scalars().all()
        assert {(key.status, key.sold_at) for key in keys} == {(CardKeyStatus.SOLD, at.astimezone(dt.UTC))}
        events = (await session.execute(select(OrderEvent).where(OrderEvent.order_id == found.id,
                                                                 OrderEvent.reason.in_(["one", "two"]))
                                        .order_by(OrderEvent.id))).scalars().all()
        assert [(e.from_status, e.to_status, e.created_at) for e in events] == [
            ("a", "b", at.astimezone(dt.UTC)), (None, "c", at.astimezone(dt.UTC) + dt.timedelta(microseconds=1))]
        decision = (await session.execute(select(RiskDecisionLog).where(RiskDecisionLog.order_id == found.id)
                                          )).scalar_one()
        assert (decision.rules_hit, decision.signals, decision.score) == (
            [{"rule": "x", "n": 1.5}], {"ip": "1.2.3.4", "ok": True}, 7)
        counted = (await session.execute(select(CounterEvent).where(CounterEvent.key == "k"))
                   ).scalar_one()
        assert counted.at == 1700000000.25
        message = (await session.execute(select(OutboxMessage).where(OutboxMessage.dedupe_key == f"trip-{found.id}"))
                   ).scalar_one()
        assert (message.payload, message.next_attempt_at) == ({"中": "文", "n": [1, 2]}, at.astimezone(dt.UTC))


_NEW_ORDER_EVENT = insert(OrderEvent.__table__).returning(OrderEvent.__table__.c.id)


async def test_a_step_stops_the_trip_and_a_later_step_takes_an_earlier_ones_id(shop, order):
    at = dt.datetime(2026, 12, 5, tzinfo=dt.UTC)
    async with shop.ctx.db.read_session() as session:
        order_id = (await session.execute(select(Order.id).where(Order.order_no == order["order_no"]))).scalar_one()
    sent = Sent(shop.ctx.db.write_engine.sync_engine)
    try:
        async with shop.ctx.db.transaction() as session:
            done = await sqlite_trip.run(await session.connection(), [
                sqlite_trip.Step(_KEYS, {"b_ids": [-1], "b_at": at}, expect=sqlite_trip.rowcount_is(1)),
                sqlite_trip.Step(_COUNTED, {"key": "never", "member": "m", "at": 1.0})])
            assert done == [(0, [])]  # nothing matched: the INSERT after it was not sent
            assert len(sent.take()) == 1
            done = await sqlite_trip.run(await session.connection(), [
                sqlite_trip.Step(_NEW_ORDER_EVENT, {"order_id": order_id, "from_status": None, "to_status": "x",
                                                    "reason": "returned", "created_at": at},
                                 expect=sqlite_trip.returned_a_row),
                sqlite_trip.Step(_COUNTED, [{"key": "id", "member": sqlite_trip.Returned(0, text=True), "at": 2.0},
                                            {"key": "id2", "member": "fixed", "at": 3.0}])])
        shown = sent.take()
    finally:
        sent.close()
    event_id = done[0][1][0][0]
    assert done[1][0] == 2
    assert shown[1][1] == [("id", str(event_id), 2.0), ("id2", "fixed", 3.0)]  # listeners see the filled-in id
    async with shop.ctx.db.read_session() as session:
        members = (await session.execute(select(CounterEvent.key, CounterEvent.member)
                                         .where(CounterEvent.key.in_(["never", "id", "id2"])).order_by(CounterEvent.key)
                                         )).all()
    assert [tuple(row) for row in members] == [("id", str(event_id)), ("id2", "fixed")]


async def test_a_database_error_is_raised_as_sqlalchemy_raises_it_and_the_unit_of_work_rolls_back(shop, order):
    at = dt.datetime(2026, 12, 5, tzinfo=dt.UTC)
    async with shop.ctx.db.read_session() as session:
        order_id = (await session.execute(select(Order.id).where(Order.order_no == order["order_no"]))).scalar_one()
    with pytest.raises(sa_exc.IntegrityError) as raised:
        async with shop.ctx.db.transaction() as session:
            await sqlite_trip.run(await session.connection(), [
                sqlite_trip.Step(_COUNTED, {"key": "rolled back", "member": "m", "at": 1.0}),
                sqlite_trip.Step(_EVENTS, {"order_id": 10**9, "from_status": None, "to_status": "x",  # no such order
                                           "reason": "fk", "created_at": at}),
                sqlite_trip.Step(_COUNTED, {"key": "never sent", "member": "m", "at": 1.0})])
    assert "FOREIGN KEY" in str(raised.value.orig) and "orders_order_event" in raised.value.statement
    assert not is_database_unavailable(raised.value)  # a bug, not "retry shortly"
    async with shop.ctx.db.read_session() as session:
        assert not (await session.execute(select(CounterEvent.id).where(
            CounterEvent.key.in_(["rolled back", "never sent"])))).all()
    async with shop.ctx.db.transaction() as session:  # the connection is usable again
        assert await sqlite_trip.run(await session.connection(), [
            sqlite_trip.Step(_ORDER, {"b_id": order_id, "b_status": OrderStatus.PENDING_PAYMENT, "b_at": at,
                                      "b_reason": None})]) == [(1, [])]


def test_a_statement_needing_a_column_default_computed_by_sqlalchemy_is_refused():
    with pytest.raises(TypeError, match="created_at"):
        sqlite_trip._bind(sqlite.dialect(), sqlite_trip.Step(_EVENTS, {"order_id": 1, "to_status": "x",
                                                                       "reason": "r"}))


class Hops:
    """Calls from the event loop to aiosqlite's worker thread (each a queue put, a thread switch and a future)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.count = 0
        original = aiosqlite.Connection._execute

        async def counted(connection, fn, *args, **kwargs):
            self.count += 1
            return await original(connection, fn, *args, **kwargs)

        monkeypatch.setattr(aiosqlite.Connection, "_execute", counted)

    def take(self) -> int:
        count, self.count = self.count, 0
        return count


# A plain guest purchase's checkout and notification on SQLite, in trips to aiosqlite's thread (BEGIN IMMEDIATE
# and each read through SQLAlchemy: three or four; db_direct's hot reads: one each; the writes: one trip; COMMIT:
# one).
HOPS = {"checkout": 11, "notification": 10}  # before quanyi.sqlite_trip: 29 and 30; before db_direct's one-hop
# reads on SQLite: 14 and 10


async def test_a_plain_purchase_sends_its_writes_in_one_trip(shop, sku, monkeypatch):
    monkeypatch.setattr(counters.random, "random", lambda: 1.0)  # no pruning DELETE in the measured purchase
    await shop.stock(sku, 3)
    await shop.pay(await shop.create_order(sku.id, contact="first@example.com"))  # warms the process's caches
    worker = shop.ctx.ledger_worker
    worker.running = True  # as in `quanyi serve`: the ledger postings are the worker's
    hops = Hops(monkeypatch)
    try:
        order = await shop.create_order(sku.id, contact="second@example.com")
        checkout = hops.take()
        payment = await shop.start_payment(order)
        hops.take()
        response = await shop.notify(shop.notification(payment))
        notification = hops.take()
    finally:
        worker.running = False
    assert response.status_code == 200 and response.text == "success"
    assert {"checkout": checkout, "notification": notification} == HOPS


async def test_a_sqlite_checkout_sends_in_one_trip_the_statements_and_values_it_sent_one_by_one(shop, sku, monkeypatch):
    await shop.stock(sku, 3)
    at = dt.datetime(2026, 12, 5, 2, 0, 0, 123456, tzinfo=dt.UTC)
    monkeypatch.setattr(numbers, "new_order_no", lambda now, zone: "261205ABCDEFGH")
    riders = [
        Rider(OrderRiskSignals.__table__, {"order_id": ORDER_ID, "ip": "10.0.0.1", "device": "d", "contact": "c",
                                           "sku_id": sku.id, "quantity": 2, "amount_cents": 200, "at": 1.25,
                                           "paid": False, "review_reason": None, "payer": None}),
        Rider(CounterEvent.__table__, {"key": "ip:10.0.0.1", "member": ORDER_ID_TEXT, "at": 1.25}),
        Rider(CounterEvent.__table__, {"key": "device:d", "member": ORDER_ID_TEXT, "at": 1.25})]

    async def one_by_one(session, order, riders, key_ids, now, _breakdown, _member_id):  # PostgreSQL's way
        await numbers.insert_order(session, order, now)
        await one_statement.write_riders(session, order.id, riders)
        await (await session.connection()).execute(checkout._FIRST_EVENT, checkout._first_event(order.id, order, now))
        await inventory_service.reserve_card_keys(session=session, key_ids=key_ids, order_id=order.id, now=now)
        return pricing_service.NOTHING_WITH_ORDER

    async def place() -> int:
        async with shop.ctx.db.transaction() as session:
            order = await checkout.create_order(session=session, sku_id=sku.id, quantity=2, contact="a@example.com",
                                                reservation_ttl=dt.timedelta(minutes=15), now=at, riders=riders)
            if placed_one_by_one:
                raise RuntimeError(order.id)  # rolled back: the next order gets the same id and the same keys
            return order.id

    sent = Sent(shop.ctx.db.write_engine.sync_engine)
    try:
        with monkeypatch.context() as patched:
            patched.setattr(checkout, "_insert_in_one_trip", one_by_one)
            placed_one_by_one = True
            with pytest.raises(RuntimeError):
                await place()
        by_statement = sent.take()
        placed_one_by_one = False
        order_id = await place()
        by_trip = sent.take()
    finally:
        sent.close()
    writes = [s for s in by_trip if not s[0].startswith("SELECT")]
    assert by_trip == by_statement and len(writes) == 5, by_trip  # order, signals, counters, event, keys
    async with shop.ctx.db.read_session() as session:
        order = (await session.execute(select(Order).where(Order.id == order_id))).scalar_one()
        assert (order.order_no, order.status, order.created_at, order.expires_at) == (
            "261205ABCDEFGH", OrderStatus.PENDING_PAYMENT, at, at + dt.timedelta(minutes=15))
        keys = (await session.execute(select(CardKey).where(CardKey.order_id == order_id))).scalars().all()
        assert {(key.status, key.reserved_at) for key in keys} == {(CardKeyStatus.RESERVED, at)} and len(keys) == 2
        signals = (await session.execute(select(OrderRiskSignals).where(OrderRiskSignals.order_id == order_id))
                   ).scalar_one()
        assert (signals.ip, signals.paid, signals.at) == ("10.0.0.1", False, 1.25)
        members = (await session.execute(select(CounterEvent.key, CounterEvent.member)
                                         .where(CounterEvent.at == 1.25).order_by(CounterEvent.key))).all()
        assert [tuple(m) for m in members] == [("device:d", str(order_id)), ("ip:10.0.0.1", str(order_id))]
        event = (await session.execute(select(OrderEvent).where(OrderEvent.order_id == order_id))).scalar_one()
        assert (event.from_status, event.to_status, event.reason, event.created_at) == (
            None, "pending_payment", "order placed", at)


async def test_a_clashing_order_number_is_drawn_again_and_the_trip_sent_again(shop, sku, monkeypatch):
    await shop.stock(sku, 2)
    first = await shop.create_order(sku.id, contact="first@example.com")
    drawn = iter([first["order_no"], first["order_no"], "261205ZZZZZZZZ"])
    monkeypatch.setattr(numbers, "new_order_no", lambda now, zone: next(drawn))
    second = await shop.create_order(sku.id, contact="second@example.com")
    assert second["order_no"] == "261205ZZZZZZZZ"
    async with shop.ctx.db.read_session() as session:
        order_id = (await session.execute(select(Order.id).where(Order.order_no == "261205ZZZZZZZZ"))).scalar_one()
        assert await session.scalar(select(func.count()).select_from(OrderEvent).where(
            OrderEvent.order_id == order_id)) == 1
        assert await session.scalar(select(func.count()).select_from(CardKey).where(CardKey.order_id == order_id)) == 1
        assert await session.scalar(select(func.count()).select_from(Order)) == 2
