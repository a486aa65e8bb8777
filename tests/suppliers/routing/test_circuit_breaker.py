"""Circuit breaker per supplier: failures in a row open it, after the open period exactly one trial call
goes through (half-open), and a success closes it."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

from sqlalchemy import update

from quanyi.db import utcnow
from quanyi.suppliers import circuit
from quanyi.suppliers.fulfilment_models import FulfilmentJob
from quanyi.suppliers.models import Supplier
from quanyi.testpeers.suppliers import CARD_PRODUCT
from suppliers.routing.support import add_supplier, attempt_rows, card_order_paid, job_of, run_due, supplier_row, worker

POLICY = circuit.CircuitPolicy(threshold=2, open_for=dt.timedelta(seconds=30))
# Open periods and waits in these tests outlast any stall of a loaded machine; the tests end them by moving
# the stored times into the past (as if that much time had passed) rather than by sleeping through them.
OPEN_FOR = dt.timedelta(seconds=60)


async def _open_period_ends(shop, supplier_id: int) -> None:  # type: ignore[no-untyped-def]
    async with shop.ctx.db.transaction() as session:
        await session.execute(update(Supplier).where(Supplier.id == supplier_id)
                              .values(circuit_open_until=utcnow() - dt.timedelta(seconds=1)))


async def test_failures_open_the_circuit_and_one_trial_closes_it(shop, sims):
    sim = sims(seed=1)
    sku = await shop.make_sku()
    supplier = await add_supplier(shop, sim, code="flaky", sku=sku, product_code=CARD_PRODUCT)
    t0 = utcnow()
    async with shop.ctx.db.transaction() as session:
        assert await circuit.take_circuit_pass(session=session, supplier_id=supplier.id, policy=POLICY, now=t0)
        await circuit.record_supplier_failure(session=session, supplier_id=supplier.id, error="timeout",
                                              policy=POLICY, now=t0)
        assert await circuit.take_circuit_pass(session=session, supplier_id=supplier.id, policy=POLICY, now=t0)
        await circuit.record_supplier_failure(session=session, supplier_id=supplier.id, error="timeout",
                                              policy=POLICY, now=t0)
        # Open: nobody calls during the open period.
        assert not await circuit.take_circuit_pass(session=session, supplier_id=supplier.id, policy=POLICY,
                                                   now=t0 + dt.timedelta(seconds=29))
    row = await supplier_row(shop, supplier.id)
    assert row.consecutive_failures == 2 and row.last_error == "timeout"
    assert circuit.circuit_state(row, t0) is circuit.CircuitState.OPEN
    later = t0 + dt.timedelta(seconds=31)
    assert circuit.circuit_state(row, later) is circuit.CircuitState.HALF_OPEN
    async with shop.ctx.db.transaction() as session:
        # Half-open: the first caller gets the trial, everyone after it waits for its verdict.
        assert await circuit.take_circuit_pass(session=session, supplier_id=supplier.id, policy=POLICY, now=later)
        assert not await circuit.take_circuit_pass(session=session, supplier_id=supplier.id, policy=POLICY, now=later)
        await circuit.record_supplier_success(session=session, supplier_id=supplier.id, now=later)
        assert await circuit.take_circuit_pass(session=session, supplier_id=supplier.id, policy=POLICY, now=later)
    row = await supplier_row(shop, supplier.id)
    assert row.consecutive_failures == 0 and row.circuit_open_until is None and row.last_success_at is not None


async def test_routing_skips_an_open_circuit_and_tries_it_again_after_the_open_period(shop, sims):
    """threshold 2 (settings), open for a minute. A supplier that keeps failing is skipped, then tried once more."""
    flaky, steady = sims(seed=1), sims(seed=2)
    flaky.set_error_rate(1.0)  # "busy, not taken" on every purchase
    sku = await shop.make_sku()
    bad = await add_supplier(shop, flaky, code="flaky", sku=sku, product_code=CARD_PRODUCT, cost_cents=9000)
    await add_supplier(shop, steady, code="steady", sku=sku, product_code=CARD_PRODUCT, cost_cents=9500)
    routing = worker(shop)
    routing.policy = replace(routing.policy, circuit=replace(routing.policy.circuit, open_for=OPEN_FOR))
    for _ in range(2):
        order = await card_order_paid(shop, sku)
        await routing.run_once()
        assert (await shop.get_order(order))["status"] == "delivered"  # failed over to the steady one
    assert (await supplier_row(shop, bad.id)).circuit_open_until > utcnow() + OPEN_FOR / 2

    skipped = await card_order_paid(shop, sku)
    await routing.run_once()
    assert (await shop.get_order(skipped))["status"] == "delivered"
    suppliers_tried = [a.supplier_id for a in await attempt_rows(shop)]
    assert suppliers_tried.count(bad.id) == 2  # not tried for the third order: its circuit was open

    await _open_period_ends(shop, bad.id)
    flaky.set_error_rate(0.0)
    trial = await card_order_paid(shop, sku)
    await routing.run_once()
    assert (await shop.get_order(trial))["status"] == "delivered"
    last = (await attempt_rows(shop))[-1]
    assert last.supplier_id == bad.id and last.state.value == "succeeded"  # the trial call, and it closed it
    row = await supplier_row(shop, bad.id)
    assert row.circuit_open_until is None and row.consecutive_failures == 0


async def _pause(shop, supplier_id: int, seconds: float) -> dt.datetime:  # type: ignore[no-untyped-def]
    """Open this supplier's circuit as failures on other orders would; returns when it may be tried again."""
    policy = circuit.CircuitPolicy(threshold=1, open_for=dt.timedelta(seconds=seconds))
    now = utcnow()
    async with shop.ctx.db.transaction() as session:
        await circuit.record_supplier_failure(session=session, supplier_id=supplier_id, error="timeout",
                                              policy=policy, now=now)
    return (await supplier_row(shop, supplier_id)).circuit_open_until


async def test_a_paid_order_waits_for_a_paused_supplier_instead_of_being_refunded(shop, sims):
    sim = sims(seed=1)
    sku = await shop.make_sku()
    paused = await add_supplier(shop, sim, code="paused", sku=sku, product_code=CARD_PRODUCT)
    reopens = await _pause(shop, paused.id, OPEN_FOR.total_seconds())
    order = await card_order_paid(shop, sku)

    assert await run_due(shop) == 1
    view = await shop.get_order(order)
    assert view["status"] == "paid" and view["fulfilment"]["stage"] == "queued" and not sim.requests
    job = await job_of(shop, order)
    assert job.status.value == "open" and job.next_attempt_at == reopens and "circuit" in job.last_error
    # Not due before the supplier may be tried again.
    assert await run_due(shop, at=reopens - dt.timedelta(milliseconds=1)) == 0

    await _open_period_ends(shop, paused.id)
    assert await run_due(shop, at=reopens) == 1  # the trial call goes through and delivers
    assert (await shop.get_order(order))["status"] == "delivered"
    assert [a.supplier_id for a in await attempt_rows(shop)] == [paused.id]
    assert (await supplier_row(shop, paused.id)).circuit_open_until is None


async def test_the_wait_for_a_paused_supplier_ends_in_a_refund(shop, sims):
    """fulfilment_circuit_wait_seconds: a circuit that stays open longer does not hold the buyer's money for ever."""
    sim = sims(seed=1)
    sku = await shop.make_sku()
    paused = await add_supplier(shop, sim, code="paused", sku=sku, product_code=CARD_PRODUCT)
    await _pause(shop, paused.id, 3600)
    order = await card_order_paid(shop, sku)
    patient = worker(shop)
    wait = dt.timedelta(seconds=600)
    assert patient.policy.circuit_wait == wait  # the default
    assert await patient.run_once() == 1
    job = await job_of(shop, order)
    assert (await shop.get_order(order))["status"] == "paid"
    assert job.next_attempt_at == job.created_at + wait

    async with shop.ctx.db.transaction() as session:  # as if the ten minutes had passed
        await session.execute(update(FulfilmentJob).where(FulfilmentJob.id == job.id)
                              .values(created_at=job.created_at - wait, next_attempt_at=job.created_at))
    assert await patient.run_once() == 1
    view = await shop.get_order(order)
    assert view["status"] == "refund_pending" and "no supplier" in view["status_reason"]
    assert not sim.requests and not await attempt_rows(shop)
