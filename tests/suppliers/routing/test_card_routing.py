"""Paid card-key orders that local stock cannot fill are bought from suppliers in real time, with failover,
and never bought twice: real simulated suppliers over HTTP, SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from quanyi.db import utcnow
from quanyi.testpeers.suppliers import CARD_PRODUCT, SimProduct
from suppliers.routing.support import (
    GRACE,
    HANG_SECONDS,
    TIMEOUT_MS,
    add_supplier,
    age_attempts,
    attempt_rows,
    attempts,
    card_order_paid,
    job_of,
    run_due,
    supplier_row,
)


async def test_paid_order_without_local_stock_is_bought_from_the_cheapest_supplier(shop, sims):
    cheap, dear = sims(seed=1), sims(seed=2)
    sku = await shop.make_sku()
    a = await add_supplier(shop, cheap, code="cheap", sku=sku, product_code=CARD_PRODUCT, cost_cents=900)
    await add_supplier(shop, dear, code="dear", sku=sku, product_code=CARD_PRODUCT, cost_cents=950)
    order = await card_order_paid(shop, sku, quantity=2)
    assert (await shop.get_order(order))["status"] == "paid"  # waiting for the supplier, not refunded
    assert (await shop.get_order(order))["fulfilment"]["stage"] == "queued"

    assert await run_due(shop) == 1
    view = await shop.get_order(order)
    assert view["status"] == "delivered" and view["delivered_keys"] == 2
    assert view["fulfilment"]["stage"] == "succeeded"
    bought = cheap.order(f"{order['order_no']}-01")
    assert bought is not None and cheap.purchases_for(bought.key) == 1 and not dear.purchases
    assert sorted(k["code"] for k in await shop.reveal(order)) == sorted(c.password for c in bought.codes)
    [attempt] = await attempts(shop, order)
    assert attempt["supplier_code"] == "cheap" and attempt["state"] == "succeeded"
    assert attempt["unit_cost_cents"] == 900 and attempt["codes_received"] == 2
    # The prepaid balance was debited before the call, for exactly what was bought.
    assert (await supplier_row(shop, a.id)).balance_cents == 1_000_000 - 2 * 900


@pytest.mark.parametrize("dialect", ["quanyi", "card_platform"])
async def test_failover_when_first_supplier_times_out_before_accepting(shop, sims, dialect):
    first, second = sims(dialect, seed=1), sims(dialect, seed=2)
    first.set_timeout_mode("hang_before_accept", hang_seconds=HANG_SECONDS)
    sku = await shop.make_sku()
    a = await add_supplier(shop, first, code="first", sku=sku, product_code=CARD_PRODUCT, cost_cents=900,
                           timeout_ms=TIMEOUT_MS)
    await add_supplier(shop, second, code="second", sku=sku, product_code=CARD_PRODUCT, cost_cents=950)
    order = await card_order_paid(shop, sku)

    await run_due(shop, grace=GRACE)
    # Timed out, and the first one has no such order yet: nobody else is asked while it still might place it.
    assert (await shop.get_order(order))["status"] == "paid" and not second.requests
    assert (await job_of(shop, order)).next_attempt_at >= utcnow() + dt.timedelta(seconds=GRACE / 2)
    await age_attempts(shop, GRACE)  # asked again once its "no such order" can be believed
    assert await run_due(shop, later=GRACE, grace=GRACE) == 1
    assert (await shop.get_order(order))["status"] == "delivered"
    # The first one was asked (same key) and had no such order: only then was the second tried.
    assert not first.purchases and second.purchases_for(f"{order['order_no']}-02") == 1
    states = [(x["supplier_code"], x["state"]) for x in await attempts(shop, order)]
    assert states == [("first", "failed"), ("second", "succeeded")]
    # The failed attempt's prepaid debit went back, and the books still balance.
    assert (await supplier_row(shop, a.id)).balance_cents == 1_000_000
    await _books_balance(shop, order, {"supplier_charge", "supplier_release", "order_delivered"})


async def _books_balance(shop, order, kinds):  # type: ignore[no-untyped-def]
    from quanyi.ledger import service as ledger_service
    from quanyi.orders.models import Order

    async with shop.ctx.db.read_session() as session:
        assert set((await ledger_service.trial_balance(session=session)).totals.values()) <= {0}
        order_id = await session.scalar(select(Order.id).where(Order.order_no == order["order_no"]))
        posted = {p.kind for p in await ledger_service.order_postings(session=session, order_id=order_id)}
    assert kinds <= posted, posted


@pytest.mark.parametrize("dialect", ["quanyi", "card_platform"])
async def test_timeout_after_the_supplier_took_the_order_delivers_from_it_and_buys_nothing_else(shop, sims, dialect):
    first, second = sims(dialect, seed=1), sims(dialect, seed=2)
    first.set_timeout_mode("hang_then_complete", hang_seconds=HANG_SECONDS)
    sku = await shop.make_sku()
    await add_supplier(shop, first, code="first", sku=sku, product_code=CARD_PRODUCT, cost_cents=900,
                       timeout_ms=TIMEOUT_MS)
    await add_supplier(shop, second, code="second", sku=sku, product_code=CARD_PRODUCT, cost_cents=950)
    order = await card_order_paid(shop, sku)

    await run_due(shop)
    assert (await shop.get_order(order))["status"] == "delivered"
    key = f"{order['order_no']}-01"
    assert first.purchases_for(key) == 1 and not second.requests and not second.purchases
    [attempt] = await attempts(shop, order)
    assert attempt["state"] == "succeeded" and attempt["checks"] == 1
    [key_shown] = await shop.reveal(order)
    [code] = first.order(key).codes
    assert key_shown["code"] == code.password and key_shown["card_no"] in (None, code.number)


async def test_an_outcome_lost_after_the_supplier_charged_is_recovered_by_query_not_bought_again(shop, sims):
    """A worker that dies between "supplier charged" and "order updated": the next one asks with the same key."""
    from quanyi.suppliers.fulfilment import plan_step
    from quanyi.suppliers.routing import FulfilmentWorker, call_supplier

    sim = sims(seed=1)
    sku = await shop.make_sku()
    await add_supplier(shop, sim, code="only", sku=sku, product_code=CARD_PRODUCT, cost_cents=900)
    order = await card_order_paid(shop, sku)
    doomed = FulfilmentWorker(shop.ctx, owner="doomed")
    [job_id] = await doomed.claim()
    async with shop.ctx.db.transaction() as session:
        step = await plan_step(session=session, job_id=job_id, policy=doomed.policy, http=shop.ctx.http)
    assert step is not None and step.action == "buy"
    await call_supplier(step)  # the supplier charged us...
    await call_supplier(step)  # ...a retry with the same key changes nothing there...
    # ...and the worker died before writing anything down.
    assert sim.requests_for(step.idempotency_key) == 2 and sim.purchases_for(step.idempotency_key) == 1
    assert (await shop.get_order(order))["status"] == "paid"

    assert await run_due(shop) == 0  # its lease (32 s: lease + call timeout) still runs: nobody touches the attempt
    assert await run_due(shop, later=60) == 1  # lease over: a fresh worker resolves it by query
    assert (await shop.get_order(order))["status"] == "delivered"
    assert sim.purchases_for(step.idempotency_key) == 1 and sim.requests_for(step.idempotency_key) == 2
    assert len(await shop.reveal(order)) == 1
    assert await run_due(shop, later=120) == 0  # the job is done
    assert (await job_of(shop, order)).outcome == "delivered"


async def test_no_supplier_left_moves_the_order_to_refund_pending(shop, sims):
    sim = sims(seed=1)
    sim.set_stock(CARD_PRODUCT, 0)
    sku = await shop.make_sku()
    await add_supplier(shop, sim, code="empty", sku=sku, product_code=CARD_PRODUCT, cost_cents=900)
    order = await card_order_paid(shop, sku)
    await run_due(shop)
    view = await shop.get_order(order)
    assert view["status"] == "refund_pending" and "no supplier" in view["status_reason"]
    assert view["fulfilment"]["stage"] == "failed"
    assert [a.state.value for a in await attempt_rows(shop)] == ["failed"]
    await _books_balance(shop, order, {"supplier_charge", "supplier_release", "refund_due"})


async def test_a_code_we_already_hold_is_never_delivered_twice(shop, sims):
    """Two suppliers with the same seed hand out the same codes: the second copy is refused and recorded."""
    first = sims(seed=7, products=[SimProduct(CARD_PRODUCT, "Gift", "card_key", 10000, 900, stock=1)])
    copycat = sims(seed=7)
    sku = await shop.make_sku()
    await add_supplier(shop, first, code="first", sku=sku, product_code=CARD_PRODUCT, cost_cents=900)
    await add_supplier(shop, copycat, code="copycat", sku=sku, product_code=CARD_PRODUCT, cost_cents=950)
    one = await card_order_paid(shop, sku)
    await run_due(shop)
    assert (await shop.get_order(one))["status"] == "delivered"

    two = await card_order_paid(shop, sku)  # first is out of stock now; copycat sells the same code again
    await run_due(shop)
    view = await shop.get_order(two)
    assert view["status"] == "refund_pending" and view["delivered_keys"] == 0
    rows = await attempts(shop, two)
    assert [(r["supplier_code"], r["state"]) for r in rows] == [("first", "failed"), ("copycat", "succeeded")]
    assert rows[1]["codes_received"] == 0 and rows[1]["codes_duplicate"] == 1 and "already known" in rows[1]["error"]
    assert len(await shop.reveal(one)) == 1


async def test_a_supplier_whose_credentials_cannot_be_read_is_skipped_without_charging_it(shop, sims):
    from quanyi.suppliers.models import Supplier

    broken, fine = sims(seed=1), sims(seed=2)
    sku = await shop.make_sku()
    bad = await add_supplier(shop, broken, code="broken", sku=sku, product_code=CARD_PRODUCT, cost_cents=9000)
    await add_supplier(shop, fine, code="fine", sku=sku, product_code=CARD_PRODUCT, cost_cents=9500)
    async with shop.ctx.db.transaction() as session:
        row = await session.get(Supplier, bad.id)
        row.credentials_ciphertext = row.credentials_ciphertext[:-1] + bytes([row.credentials_ciphertext[-1] ^ 1])
    order = await card_order_paid(shop, sku)
    await run_due(shop)
    assert (await shop.get_order(order))["status"] == "delivered"
    assert [x["supplier_code"] for x in await attempts(shop, order)] == ["fine"]
    assert (await supplier_row(shop, bad.id)).balance_cents == 1_000_000 and not broken.requests


@pytest.mark.parametrize("dialect", ["quanyi", "card_platform"])
async def test_a_short_delivery_keeps_the_codes_that_came_and_buys_the_rest_elsewhere(shop, sims, dialect):
    """The supplier charges for 3 and hands over 2: the 2 are kept for the order, the gap is recorded for the
    claim against that supplier, and the missing one is bought from the next supplier."""
    stingy, other = sims(dialect, seed=1), sims(dialect, seed=2)
    stingy.set_faulty_delivery(short=1)
    sku = await shop.make_sku()
    a = await add_supplier(shop, stingy, code="stingy", sku=sku, product_code=CARD_PRODUCT, cost_cents=900)
    b = await add_supplier(shop, other, code="other", sku=sku, product_code=CARD_PRODUCT, cost_cents=950)
    order = await card_order_paid(shop, sku, quantity=3)

    await run_due(shop)  # 2 of 3 codes is unclear: the supplier is asked again, then the rest bought elsewhere
    assert await run_due(shop, later=120) == 0  # nothing left to do
    view = await shop.get_order(order)
    assert view["status"] == "delivered" and view["delivered_keys"] == 3

    first_key, second_key = f"{order['order_no']}-01", f"{order['order_no']}-02"
    assert stingy.purchases_for(first_key) == 1 and len(stingy.order(first_key).codes) == 2
    assert other.purchases_for(second_key) == 1 and other.order(second_key).quantity == 1
    rows = await attempts(shop, order)
    assert [(r["supplier_code"], r["state"]) for r in rows] == [("stingy", "succeeded"), ("other", "succeeded")]
    assert rows[0]["codes_received"] == 2 and "asked 3, got 2 codes" in rows[0]["error"]
    assert rows[1]["codes_received"] == 1
    shown = sorted(k["code"] for k in await shop.reveal(order))
    bought = [c.password for c in stingy.order(first_key).codes + other.order(second_key).codes]
    assert shown == sorted(bought) and len(set(shown)) == 3
    # The stingy supplier kept the money for 3 (the recorded gap is the claim); the other was paid for 1.
    assert (await supplier_row(shop, a.id)).balance_cents == 1_000_000 - 3 * 900
    assert (await supplier_row(shop, b.id)).balance_cents == 1_000_000 - 950
    await _books_balance(shop, order, {"supplier_charge", "order_delivered"})


async def test_codes_of_a_short_delivery_go_on_sale_at_their_cost_when_no_supplier_can_fill_the_rest(shop, sims):
    """The only supplier charges for 2 and hands over 1: the order waits for its refund, the code that came goes
    back on sale and its cost moves from the supplier's payable to card-key stock (it went on sale with its cost
    left in the payable), as for an order settled by hand; the missing code stays a claim on the supplier."""
    from quanyi.inventory.models import CardKey
    from quanyi.ledger.postings import account_balances

    stingy = sims(seed=1)
    stingy.set_faulty_delivery(short=1)
    sku = await shop.make_sku()
    a = await add_supplier(shop, stingy, code="stingy", sku=sku, product_code=CARD_PRODUCT, cost_cents=900)
    order = await card_order_paid(shop, sku, quantity=2)
    await run_due(shop)  # 1 of 2 is unclear: asked again, then nobody else sells it
    assert await run_due(shop, later=120) == 0
    assert (await shop.get_order(order))["status"] == "refund_pending"
    assert (await job_of(shop, order)).outcome == "refund_pending"
    assert [(r["state"], r["codes_received"]) for r in await attempts(shop, order)] == [("succeeded", 1)]
    assert await shop.scalar(select(CardKey.status).where(CardKey.sku_id == sku.id)) == "available"
    async with shop.ctx.db.read_session() as session:
        balances = {code: total for (code, _), total in (await account_balances(session)).items()}
    assert balances.get("card_key_stock") == 900  # the code's cost is stock now, sold with it later
    assert balances.get(f"supplier_payable:{a.id}") == 900  # only the missing code: the claim on the supplier
    assert (await supplier_row(shop, a.id)).balance_cents == 1_000_000 - 2 * 900
    await _books_balance(shop, order, {"supplier_charge", "supplier_goods_stocked"})


@pytest.mark.parametrize("dialect", ["quanyi", "card_platform"])
async def test_a_purchase_placed_after_we_gave_up_waiting_is_not_bought_again_elsewhere(shop, sims, dialect):
    """The supplier is slow to place orders but quick to answer queries: right after our call times out it has
    no such order yet, and places it a moment later. Failing over on that first "no such order" bought twice."""
    slow, second = sims(dialect, seed=1), sims(dialect, seed=2)
    slow.hold_placing()  # it places our order only after our call timed out (0.5 s) and we asked about it
    sku = await shop.make_sku()
    a = await add_supplier(shop, slow, code="slow", sku=sku, product_code=CARD_PRODUCT, cost_cents=900,
                           timeout_ms=TIMEOUT_MS)
    await add_supplier(shop, second, code="second", sku=sku, product_code=CARD_PRODUCT, cost_cents=950)
    order = await card_order_paid(shop, sku)

    await run_due(shop, grace=GRACE)
    [attempt] = await attempts(shop, order)
    assert attempt["state"] == "unknown" and "no such order yet" in attempt["error"]
    key = f"{order['order_no']}-01"
    slow.release_placing()
    await slow.await_for(lambda: slow.purchases_for(key) == 1)  # placed after all, after we gave up

    await age_attempts(shop, GRACE)  # asked again once its "no such order" could be believed: it has one now
    assert await run_due(shop, later=GRACE, grace=GRACE) == 1
    view = await shop.get_order(order)
    assert view["status"] == "delivered" and view["delivered_keys"] == 1
    assert not second.requests and not second.purchases
    [attempt] = await attempts(shop, order)
    assert attempt["supplier_code"] == "slow" and attempt["state"] == "succeeded"
    [shown] = await shop.reveal(order)
    assert shown["code"] == slow.order(key).codes[0].password
    assert (await supplier_row(shop, a.id)).balance_cents == 1_000_000 - 900


async def _order_cost_of_goods(shop, order) -> int:  # type: ignore[no-untyped-def]
    from quanyi.ledger import service as ledger_service
    from quanyi.orders.models import Order

    async with shop.ctx.db.read_session() as session:
        order_id = await session.scalar(select(Order.id).where(Order.order_no == order["order_no"]))
        postings = await ledger_service.order_postings(session=session, order_id=order_id)
    return sum(amount for p in postings for account, amount, _ in p.entries if account == "cost_of_goods")


@pytest.mark.parametrize("dialect", ["quanyi", "card_platform"])
async def test_a_purchase_cheaper_than_the_synced_cost_debits_what_the_supplier_took(shop, sims, dialect):
    sim = sims(dialect, seed=1)
    sku = await shop.make_sku()
    supplier = await add_supplier(shop, sim, code="cheaper", sku=sku, product_code=CARD_PRODUCT, cost_cents=900)
    sim.set_cost(CARD_PRODUCT, 800)  # its price fell since the last sync
    order = await card_order_paid(shop, sku, quantity=2)
    await run_due(shop)
    assert (await shop.get_order(order))["status"] == "delivered"
    [attempt] = await attempts(shop, order)
    assert attempt["unit_cost_cents"] == 800 and attempt["charged_cents"] == 1600
    assert sim.charged_cents == 1600
    # The prepaid balance, the cost of goods and the books all say what the supplier really took.
    assert (await supplier_row(shop, supplier.id)).balance_cents == 1_000_000 - 1600
    assert await _order_cost_of_goods(shop, order) == 1600
    await _books_balance(shop, order, {"supplier_charge", "supplier_adjust", "order_delivered"})
    from quanyi.ledger import service as ledger_service

    async with shop.ctx.db.read_session() as session:
        # The opening balance was typed in, not topped up; the purchase and its adjustment add no drift.
        assert await ledger_service.prepaid_drift(session=session) == {"cheaper": 1_000_000}
        statement = await ledger_service.supplier_statement(session=session, supplier_code="cheaper",
                                                            day=utcnow().date(), timezone="UTC")
    assert (statement.purchases_cents, statement.releases_cents) == (1800, 200)
    assert statement.closing_cents == statement.opening_cents - 1600


@pytest.mark.parametrize("dialect", ["quanyi", "card_platform"])
async def test_a_refused_purchase_teaches_the_suppliers_new_cost_and_stock(shop, sims, dialect):
    """A price or stock refusal is fresh news: the next order goes straight to the supplier that can sell."""
    from quanyi.suppliers.models import SupplierProduct

    dearer, out, steady = sims(dialect, seed=1), sims(dialect, seed=2), sims(dialect, seed=3)
    sku = await shop.make_sku()
    await add_supplier(shop, dearer, code="dearer", sku=sku, product_code=CARD_PRODUCT, cost_cents=900)
    await add_supplier(shop, out, code="out", sku=sku, product_code=CARD_PRODUCT, cost_cents=910, stock=50)
    await add_supplier(shop, steady, code="steady", sku=sku, product_code=CARD_PRODUCT, cost_cents=950)
    dearer.set_cost(CARD_PRODUCT, 1200)  # above what we accept: refused for its price
    out.set_stock(CARD_PRODUCT, 0)  # sold out since the last sync

    first = await card_order_paid(shop, sku)
    await run_due(shop)
    assert (await shop.get_order(first))["status"] == "delivered"
    assert [(a["supplier_code"], a["state"]) for a in await attempts(shop, first)] == [
        ("dearer", "failed"), ("out", "failed"), ("steady", "succeeded")]
    async with shop.ctx.db.read_session() as session:
        rows = {p.product_code + str(p.supplier_id): p for p in (await session.scalars(select(SupplierProduct))).all()}
    learned = sorted((p.cost_cents, p.stock, p.last_sync_source) for p in rows.values())
    assert learned == [(910, 0, "purchase"), (950, None, "pull"), (1200, None, "purchase")]

    second = await card_order_paid(shop, sku)
    await run_due(shop)
    assert (await shop.get_order(second))["status"] == "delivered"
    assert [a["supplier_code"] for a in await attempts(shop, second)] == ["steady"]
    assert dearer.requests_for(f"{second['order_no']}-01") == 0 and out.requests_for(f"{second['order_no']}-01") == 0
