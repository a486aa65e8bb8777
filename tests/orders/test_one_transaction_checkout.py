"""A plain checkout screens and places the order in one transaction (orders.placing, risk.gate; on PostgreSQL the
order, its keys, event and risk rows in one statement: orders.one_statement) with the answers it always gave:
refusals count against the flood limit, come in the same order, and leave nothing else behind."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from helpers import make_settings
from quanyi.inventory.models import CardKey, CardKeyStatus
from quanyi.orders import numbers
from quanyi.orders.models import Order, OrderEvent
from quanyi.risk.models import CounterEvent, OrderRiskSignals
from risk.support import checkout

IP = "203.0.113.77"


@pytest.fixture
def settings(database_url: str):
    """Three checkouts a minute per address; a contact may hold 2 units in unpaid orders."""
    return make_settings(database_url, checkout_limit_per_ip=3, checkout_limit_per_device=0,
                         checkout_limit_window_seconds=60, held_units_limit_per_contact=2)


async def test_refused_checkouts_count_against_the_flood_limit_and_write_nothing_else(shop):
    sku = await shop.make_sku(code="GATE-1", max_quantity=10)
    await shop.stock(sku, 2)
    # Sold out for 5 (2 left: not remembered as sold out, so each one reaches the database) ...
    for n in range(2):
        refused = await checkout(shop, sku.id, ip=IP, contact=f"s{n}@example.com", quantity=5)
        assert refused.status_code == 409 and refused.json()["code"] == "sold_out", refused.text
    assert await shop.count(Order) == 0 and await shop.count(OrderRiskSignals) == 0
    # ... then one placed: the third checkout of this address in the window, the last one allowed.
    placed = await checkout(shop, sku.id, ip=IP, contact="ok@example.com", quantity=1)
    assert placed.status_code == 201, placed.text
    limited = await checkout(shop, sku.id, ip=IP, contact="late@example.com", quantity=1)
    assert limited.status_code == 429 and limited.json()["code"] == "too_many_checkouts"
    assert limited.headers["Retry-After"] == "60"
    assert await shop.count(Order) == 1
    assert await shop.count(CardKey, CardKey.status == CardKeyStatus.RESERVED) == 1
    assert await shop.count(CounterEvent, CounterEvent.key == f"flood:ip:{IP}") == 4  # every attempt, refused or not
    assert (await checkout(shop, sku.id, ip="203.0.113.78", contact="other@example.com")).status_code == 201


async def test_sold_out_answers_before_too_much_stock_held_and_both_count(shop):
    sku = await shop.make_sku(code="GATE-2", max_quantity=10)
    await shop.stock(sku, 3)
    assert (await checkout(shop, sku.id, ip=IP, contact="hoard@example.com", quantity=2)).status_code == 201
    # Stock is there: the held-stock limit refuses (and the order's transaction places nothing).
    held = await checkout(shop, sku.id, ip="203.0.113.79", contact="hoard@example.com", quantity=1)
    assert held.status_code == 429 and held.json()["code"] == "too_much_stock_held", held.text
    # No stock for 2: sold out comes first, as it did when the held count ran after the order's insert.
    sold_out = await checkout(shop, sku.id, ip="203.0.113.79", contact="hoard@example.com", quantity=2)
    assert sold_out.status_code == 409 and sold_out.json()["code"] == "sold_out", sold_out.text
    assert await shop.count(Order) == 1 and await shop.count(OrderRiskSignals) == 1
    assert await shop.count(CardKey, CardKey.status == CardKeyStatus.RESERVED) == 2
    # Both refusals from that address were counted (the held one after its transaction rolled back).
    assert await shop.count(CounterEvent, CounterEvent.key == "flood:ip:203.0.113.79") == 2
    assert (await checkout(shop, sku.id, ip="203.0.113.79", contact="third@example.com")).status_code == 201
    limited = await checkout(shop, sku.id, ip="203.0.113.79", contact="fourth@example.com")
    assert limited.status_code == 429 and limited.json()["code"] == "too_many_checkouts"


async def test_an_order_number_clash_draws_a_new_number_and_reserves_the_keys_once(shop, monkeypatch):
    sku = await shop.make_sku(code="GATE-3", max_quantity=10)
    await shop.stock(sku, 5)
    first = await checkout(shop, sku.id, ip=IP, contact="first@example.com", quantity=2)
    assert first.status_code == 201, first.text
    taken = first.json()["order_no"]
    drawn = iter([taken, taken])
    original = numbers.new_order_no
    monkeypatch.setattr(numbers, "new_order_no",
                        lambda now=None, *, zone: next(drawn, None) or original(now, zone=zone))
    second = await checkout(shop, sku.id, ip="203.0.113.80", contact="second@example.com", quantity=2)
    assert second.status_code == 201, second.text
    assert second.json()["order_no"] != taken and next(drawn, None) is None  # both clashes were drawn
    async with shop.ctx.db.read_session() as session:
        orders = {o.order_no: o.id for o in (await session.scalars(select(Order))).all()}
        keys = (await session.execute(select(CardKey.order_id, CardKey.status))).all()
        events = (await session.execute(select(OrderEvent.order_id))).scalars().all()
        signals = (await session.execute(select(OrderRiskSignals.order_id))).scalars().all()
        placed = (await session.execute(select(OrderRiskSignals.order_id).where(
            OrderRiskSignals.contact == "second@example.com"))).scalars().all()  # what counts it as placed
    second_id = orders[second.json()["order_no"]]
    assert len(orders) == 2
    assert sorted(order_id for order_id, status in keys if status == CardKeyStatus.RESERVED) == \
        sorted([orders[taken]] * 2 + [second_id] * 2)
    assert sorted(events) == sorted(orders.values()) and sorted(signals) == sorted(orders.values())
    assert placed == [second_id]
    assert await shop.count(CounterEvent, CounterEvent.key.like("placed:%")) == 0  # counted from its signals row


async def test_a_checkout_of_an_unknown_sku_is_refused_as_before_and_not_counted(shop):
    # The SKU is read in the gate's count statement (risk.gate.Beside): finding none, nothing is counted or written.
    sku = await shop.make_sku(code="GATE-4", max_quantity=10)
    await shop.stock(sku, 1)
    for n in range(4):
        unknown = await checkout(shop, 999_999, ip=IP, contact=f"u{n}@example.com")
        assert unknown.status_code == 404 and unknown.json()["code"] == "sku_not_found", unknown.text
    assert await shop.count(CounterEvent) == 0 and await shop.count(Order) == 0
    assert (await checkout(shop, sku.id, ip=IP, contact="known@example.com")).status_code == 201
