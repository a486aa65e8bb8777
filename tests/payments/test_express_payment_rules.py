"""A shop with the shipped risk rules takes the express lane (PostgreSQL: its one statement, risk.payment_sql; SQLite:
`risk.payment_stage.quiet_at_payment` before its writes): each default rule of the payment stage, just below its
threshold (delivered by the express lane) and just above it (the express lane writes nothing, the general way holds
the order), leaves exactly the rows the general way leaves for the same order."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from sqlalchemy import event, select

from helpers import make_settings
from quanyi.config import Settings
from quanyi.inventory.models import CardKey
from quanyi.ledger.models import DeferredPosting, LedgerPosting
from quanyi.notifications.models import OutboxMessage
from quanyi.orders.models import Order, OrderEvent
from quanyi.payments import express
from quanyi.payments.models import Payment
from quanyi.risk import counters, ruleset
from quanyi.risk.engine import runtime_of
from quanyi.risk.models import CounterEvent, OrderRiskSignals, RiskDecisionLog
from quanyi.risk.rules import payer_hash


@pytest.fixture
def settings(database_url: str) -> Settings:
    """The process's copy of the rules outlives the test (a loaded machine may take seconds between two requests)."""
    return make_settings(database_url, risk_rules_cache_seconds=300)


async def _shipped_rules(shop) -> None:
    """Every default rule, as `quanyi demo` and most shops install them (after the test's orders were placed: the
    order stage judged none of them)."""
    async with shop.ctx.db.transaction() as session:
        assert await ruleset.install_default_rules(session=session) == len(ruleset.DEFAULT_RULES)


async def _history(shop, key: str, members: list[str], *, seconds_ago: float = 60) -> None:
    """Counter events of earlier payments (an hour's burst of a payer, say)."""
    async with shop.ctx.db.transaction() as session:
        at = runtime_of(session).now().timestamp() - seconds_ago
        session.add_all(CounterEvent(key=key, member=member, at=at) for member in members)


async def _payer(shop, payer: str) -> str:
    async with shop.ctx.db.read_session() as session:
        return payer_hash(runtime_of(session).secret, f"sandbox:{payer}")


async def _last_event(shop) -> int:
    async with shop.ctx.db.read_session() as session:
        return int(await session.scalar(select(CounterEvent.id).order_by(CounterEvent.id.desc()).limit(1)) or 0)


async def _pay(shop, order: dict[str, Any], payer: str, monkeypatch: pytest.MonkeyPatch, *,
               general: bool) -> list[tuple[str, str]]:
    """Pay `order` by `payer` (the general way only, if `general`); the counter events the notification wrote."""
    since = await _last_event(shop)
    payment = await shop.start_payment(order)
    with monkeypatch.context() as patched:
        if general:
            async def never(**_kwargs: Any) -> bool:
                return False

            patched.setattr(express, "takes_express_lane", never)
            patched.setattr(express, "DELIVER_WHILE_LOCKING", False)  # PostgreSQL: its lock statement only locks
        response = await shop.notify(shop.notification(payment, buyer_id=payer))
    assert response.status_code == 200 and response.text == "success", response.text
    async with shop.ctx.db.read_session() as session:
        rows = (await session.execute(select(CounterEvent.key, CounterEvent.member).where(CounterEvent.id > since)
                                      .order_by(CounterEvent.id))).all()
    return [tuple(row) for row in rows]


async def _rows(shop, order: dict[str, Any], payer: str, counted: list[tuple[str, str]]) -> dict[str, Any]:
    """Everything the notification of `order` left, with what differs between two buyers (the order's id and
    number, its contact, the payer's hash) written the same."""
    hashed = await _payer(shop, payer)
    async with shop.ctx.db.read_session() as session:
        row = await session.scalar(select(Order).where(Order.order_no == order["order_no"]))
        oid = row.id
        same = {str(oid): "ID", row.order_no: "NO", row.contact: "CONTACT", hashed: "PAYER", hashed[:12]: "PAYER"}

        def plain(value: Any, words: dict[str, str] = same) -> Any:
            if isinstance(value, str):  # a counter key or member, a detail: each word on its own
                return " ".join(":".join(words.get(part, part) for part in word.split(":"))
                                for word in value.split(" "))
            if isinstance(value, dict):  # a rule's detail counts things: its numbers stay
                return {k: plain(v, {w: c for w, c in same.items() if c != "ID"} if k == "detail" else words)
                        for k, v in value.items() if k not in ("local_time", "rule_id")}
            if isinstance(value, list | tuple):
                return [plain(v) for v in value]
            return value

        payment = await session.scalar(select(Payment).where(Payment.order_id == oid))
        events = (await session.execute(select(OrderEvent.from_status, OrderEvent.to_status, OrderEvent.reason)
                                        .where(OrderEvent.order_id == oid).order_by(OrderEvent.id))).all()
        keys = (await session.scalars(select(CardKey.status).where(CardKey.order_id == oid))).all()
        signals = await session.get(OrderRiskSignals, oid)
        decisions = (await session.scalars(select(RiskDecisionLog).where(RiskDecisionLog.order_id == oid)
                                           .order_by(RiskDecisionLog.id))).all()
        messages = (await session.execute(select(OutboxMessage.channel, OutboxMessage.kind)
                                          .where(OutboxMessage.order_id == oid))).all()
        deferred = (await session.scalars(select(DeferredPosting.order_status)
                                          .where(DeferredPosting.order_id == oid))).all()
        postings = (await session.scalars(select(LedgerPosting.kind).where(LedgerPosting.order_id == oid))).all()
    return plain({
        "order": (row.status, row.status_reason, row.paid_at is not None, row.delivered_at is not None),
        "events": [tuple(e) for e in events],
        "keys": sorted(keys),
        "payment": (payment.status, payment.gateway_trade_no is not None),
        "signals": (signals.paid, signals.payer, signals.review_reason, signals.paid_risk_at is not None),
        "counted": counted,
        "decisions": [(d.stage, d.decision, d.score, d.rules_hit, d.signals, d.outcome) for d in decisions],
        "messages": sorted(tuple(m) for m in messages),
        "deferred": sorted(deferred),
        "postings": sorted(postings),
    })


async def _device(shop, sku) -> None:
    """A first checkout gives the shop's client its device cookie: the orders after it carry the same device."""
    await shop.create_order(sku.id, contact="first@example.com")


async def _both_ways(shop, monkeypatch, lanes, orders: list[dict[str, Any]], payers: list[str]) -> dict[str, Any]:
    """Pay the first order the express way and the second the general way; both leave the same rows. The first's."""
    express_counted = await _pay(shop, orders[0], payers[0], monkeypatch, general=False)
    taken = list(lanes)
    general_counted = await _pay(shop, orders[1], payers[1], monkeypatch, general=True)
    assert lanes == taken  # the general way did not ask the express lane
    fast = await _rows(shop, orders[0], payers[0], express_counted)
    assert fast == await _rows(shop, orders[1], payers[1], general_counted)
    return fast


def _statement_delivered(shop, lanes: list[bool]) -> bool:
    """The express notification was delivered by the express lane: on PostgreSQL by the statement that locks (its
    rules judged in it, risk.payment_sql), on SQLite by its writes after `payment_stage.quiet_at_payment`."""
    return lanes == [True]


def _held_by(fast: dict[str, Any], reason_code: str) -> bool:
    return (fast["order"][0] == "under_review" and fast["keys"] == ["reserved"] * len(fast["keys"])
            and [hit["reason_code"] for hit in fast["decisions"][-1][3]] == [reason_code])


@pytest.mark.parametrize("earlier", [4, 5])
async def test_payer_burst_just_below_and_just_above(shop, sku, lanes, monkeypatch, earlier):
    """`payer burst`: more than 5 orders paid by one payer account in an hour."""
    await shop.stock(sku, 3)
    await _device(shop, sku)
    orders = [await shop.create_order(sku.id, contact=f"{arm}@example.com") for arm in ("fast", "general")]
    await _shipped_rules(shop)
    payers = [f"payer-{arm}-{uuid.uuid4().hex[:6]}" for arm in ("fast", "general")]
    for payer in payers:
        await _history(shop, f"att:payer:{await _payer(shop, payer)}", [f"9{n}" for n in range(earlier)])
    fast = await _both_ways(shop, monkeypatch, lanes, orders, payers)
    if earlier == 4:
        assert fast["order"][0] == "delivered" and fast["decisions"] == [] and _statement_delivered(shop, lanes)
        # `paid` per ip / device / contact: counted from the signals row (its `paid_risk_at`), no events
        assert [key for key, _ in fast["counted"]] == ["att:payer:PAYER", "contacts:payer:PAYER"]
        assert fast["signals"][3] is True
    else:
        assert _held_by(fast, "payer_velocity") and lanes == []
        assert "6 paid orders by payer in 3600s" in fast["decisions"][-1][3][0]["detail"]


@pytest.mark.parametrize(("earlier", "own_contact_among_them", "held"), [(2, False, False), (3, True, False),
                                                                          (3, False, True)])
async def test_many_contacts_per_payer_just_below_and_just_above(shop, sku, lanes, monkeypatch, earlier,
                                                                  own_contact_among_them, held):
    """`many contacts per payer`: one payer paying for more than 3 contacts in a day (a contact it paid for before
    counts once)."""
    await shop.stock(sku, 3)
    await _device(shop, sku)
    contacts = [f"{arm}@example.com" for arm in ("fast", "general")]
    orders = [await shop.create_order(sku.id, contact=contact) for contact in contacts]
    await _shipped_rules(shop)
    payers = [f"payer-{arm}-{uuid.uuid4().hex[:6]}" for arm in ("fast", "general")]
    for payer, contact in zip(payers, contacts, strict=True):
        seen = [f"other{n}@example.com" for n in range(earlier)]
        if own_contact_among_them:
            seen[0] = contact
        await _history(shop, f"contacts:payer:{await _payer(shop, payer)}", seen, seconds_ago=3600 * 5)
    fast = await _both_ways(shop, monkeypatch, lanes, orders, payers)
    if held:
        assert _held_by(fast, "payer_many_contacts") and lanes == []
    else:
        assert fast["order"][0] == "delivered" and fast["decisions"] == [] and _statement_delivered(shop, lanes)


@pytest.mark.parametrize(("price", "held"), [(100_000, False), (100_001, True)])
async def test_buyer_daily_amount_just_below_and_just_above(shop, lanes, monkeypatch, price, held):
    """`buyer daily amount`: a buyer's orders of the shop day (paid, or still payable) over 3,000.00; here an unpaid
    order of 1 unit and the paid one of 2 units at `price`: 300,000 cents, or 300,003."""
    sku = await shop.make_sku(price_cents=price)
    await shop.stock(sku, 7)
    await _device(shop, sku)
    contacts = [f"{arm}@example.com" for arm in ("fast", "general")]
    orders = []
    for contact in contacts:
        await shop.create_order(sku.id, contact=contact)  # still payable: counted in the buyer's day
        orders.append(await shop.create_order(sku.id, quantity=2, contact=contact))
    await _shipped_rules(shop)
    fast = await _both_ways(shop, monkeypatch, lanes, orders, ["payer-a", "payer-b"])
    if held:
        assert _held_by(fast, "buyer_daily_amount") and lanes == []
        assert "amount 300003 > 300000 (buyer_day)" in fast["decisions"][-1][3][0]["detail"]
    else:
        assert fast["order"][0] == "delivered" and fast["decisions"] == [] and _statement_delivered(shop, lanes)


@pytest.mark.parametrize(("quantity", "held"), [(20, False), (21, True)])
async def test_large_order_just_below_and_just_above(shop, lanes, monkeypatch, quantity, held):
    """`large order`: more than 20 units in one order (judged at payment too: here the order was placed before the
    rule existed)."""
    sku = await shop.make_sku(price_cents=100, max_quantity=50)
    await shop.stock(sku, 2 * quantity + 1)
    await _device(shop, sku)
    orders = [await shop.create_order(sku.id, quantity=quantity, contact=f"{arm}@example.com")
              for arm in ("fast", "general")]
    await _shipped_rules(shop)
    fast = await _both_ways(shop, monkeypatch, lanes, orders, ["payer-a", "payer-b"])
    if held:
        assert _held_by(fast, "large_quantity") and lanes == []
    else:
        assert fast["order"][0] == "delivered" and fast["keys"] == ["sold"] * 20 and _statement_delivered(shop, lanes)


async def test_a_rule_of_a_kind_the_statement_cannot_judge_takes_the_general_way(shop, sku, lanes):
    """A payment-stage rule of another kind (here a block list): the statement declines every order; the general
    way evaluates it."""
    await shop.stock(sku, 1)
    order = await shop.create_order(sku.id, contact="someone@example.com")
    await _shipped_rules(shop)
    async with shop.ctx.db.transaction() as session:
        await ruleset.create_rule(session=session, name="blocked phones at payment", kind="block_list",
                                  params={"phones": ["+8613800000000"]}, action="deny", reason_code="blocked",
                                  stages=["payment"])
    await shop.pay(order)
    assert lanes == [] and (await shop.get_order(order))["status"] == "delivered"


async def test_a_shop_with_the_shipped_rules_pays_in_one_statement(shop, sku, monkeypatch):
    """PostgreSQL: the notification of the usual order is one statement with every default rule installed."""
    if shop.ctx.db.write_engine.dialect.name != "postgresql":
        pytest.skip("SQLite's express lane sends the writes one by one")
    monkeypatch.setattr(counters.random, "random", lambda: 1.0)  # no pruning now and then
    await shop.stock(sku, 2)
    await _shipped_rules(shop)
    await shop.pay(await shop.create_order(sku.id, contact="first@example.com"))  # warms the process's caches
    order = await shop.create_order(sku.id, contact="second@example.com")
    payment = await shop.start_payment(order)
    seen: list[str] = []

    def count(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        seen.append(statement)

    engine = shop.ctx.db.write_engine.sync_engine
    event.listen(engine, "before_cursor_execute", count)
    shop.ctx.ledger_worker.running = True  # as in `quanyi serve`: the worker posts the books later
    try:
        response = await shop.notify(shop.notification(payment, buyer_id="payer-1"))
    finally:
        shop.ctx.ledger_worker.running = False
        event.remove(engine, "before_cursor_execute", count)
    assert response.text == "success" and (await shop.get_order(order))["status"] == "delivered"
    assert len(seen) == 1, "\n".join(seen)


@pytest.mark.parametrize(("earlier", "statuses"), [(4, ["delivered", "delivered"]),
                                                   (5, ["under_review", "under_review"])])
async def test_two_payers_racing_are_each_judged_on_their_own_count(shop, sku, earlier, statuses):
    """Two payers' notifications at once (separate connections), each with `earlier` paid orders in the hour: each
    statement counts its own payer's events only; past the burst limit both are held."""
    await shop.stock(sku, 4)
    payers = [f"racer-{n}-{uuid.uuid4().hex[:6]}" for n in range(2)]
    orders = [await shop.create_order(sku.id, contact=f"racer{n}@example.com") for n in range(2)]
    await _shipped_rules(shop)
    for payer in payers:
        await _history(shop, f"att:payer:{await _payer(shop, payer)}", [f"9{n}" for n in range(earlier)])
    payments = [await shop.start_payment(order) for order in orders]
    responses = await asyncio.gather(*(shop.notify(shop.notification(payment, buyer_id=payer))
                                       for payment, payer in zip(payments, payers, strict=True)))
    assert [r.text for r in responses] == ["success", "success"]
    assert [(await shop.get_order(order))["status"] for order in orders] == statuses
    async with shop.ctx.db.read_session() as session:
        for payer in payers:
            n = len((await session.scalars(select(CounterEvent.id).where(
                CounterEvent.key == f"att:payer:{await _payer(shop, payer)}"))).all())
            assert n == earlier + 1


# Rules of the kinds the statement judges beyond the shipped ones: (kind, params, earlier events per arm (a key of the
# arm's contact, "C"), or shared by both arms, or None; whether the order is held).
OTHER_RULES = [
    ("velocity", {"dimension": "contact", "window_seconds": 3600, "max_count": 2}, ("att:contact:C", 2), False),
    ("velocity", {"dimension": "contact", "window_seconds": 3600, "max_count": 2}, ("att:contact:C", 3), True),
    ("distinct_contacts", {"dimension": "ip", "window_seconds": 3600, "max_distinct": 3},
     ("contacts:ip:127.0.0.1", 3), False),
    ("distinct_contacts", {"dimension": "ip", "window_seconds": 3600, "max_distinct": 2},
     ("contacts:ip:127.0.0.1", 3), True),
    # the SKU's day: the first checkout's order and the other arm's (both payable or paid) and this one
    ("amount_limit", {"scope": "sku_day", "max_quantity": 3}, None, False),
    ("amount_limit", {"scope": "sku_day", "max_quantity": 2}, None, True),
    ("amount_limit", {"scope": "buyer_day", "per_sku": True, "max_amount_cents": 1980}, None, False),
    ("amount_limit", {"scope": "order", "sku_id": 999_999, "max_quantity": 1}, None, False),  # another SKU's
]


@pytest.mark.parametrize(("kind", "params", "earlier", "held"), OTHER_RULES)
async def test_other_judged_rule_kinds_leave_what_the_general_way_leaves(shop, sku, lanes, monkeypatch, kind, params,
                                                                        earlier, held):
    await shop.stock(sku, 3)
    await _device(shop, sku)
    contacts = [f"{arm}@example.com" for arm in ("fast", "general")]
    orders = [await shop.create_order(sku.id, contact=contact) for contact in contacts]
    async with shop.ctx.db.transaction() as session:
        await ruleset.create_rule(session=session, name="judged", kind=kind, params=params, action="review",
                                  reason_code="judged", stages=["payment"])
    if earlier is not None:
        key, n = earlier
        keys = [key.replace(":C", f":{contact}") for contact in contacts] if key.endswith(":C") else [key]
        for each in keys:
            await _history(shop, each, [f"m{k}@example.com" for k in range(n)])
    fast = await _both_ways(shop, monkeypatch, lanes, orders, ["payer-a", "payer-b"])
    if held:
        assert _held_by(fast, "judged") and lanes == []
    else:
        assert fast["order"][0] == "delivered" and fast["decisions"] == [] and _statement_delivered(shop, lanes)
