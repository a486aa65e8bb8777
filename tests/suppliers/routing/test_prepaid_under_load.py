"""Concurrent orders never overdraw a supplier's prepaid balance, end to end: 40 paid orders of one SKU without
local stock, two simulated suppliers over real HTTP (the cheaper one prepaid for exactly 7 purchases), and
4 fulfilment worker processes working the queue at the same moment."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from quanyi.ledger import service as ledger_service
from quanyi.ledger.models import SupplierCharge, SupplierChargeStatus
from quanyi.ledger.postings import account_balances
from quanyi.testpeers.suppliers import CARD_PRODUCT, SupplierSimulator
from suppliers.routing.support import add_supplier, attempt_rows, card_order_paid, supplier_row, worker_settings

WORKER = Path(__file__).with_name("worker_process.py")
PROCESSES, ORDERS, PREPAID_PURCHASES = 4, 40, 7
CHEAP_COST, DEAR_COST, DEAR_BALANCE = 900, 950, 1_000_000


def _start_workers(settings: Any, log_dir: Path) -> list[tuple[subprocess.Popen[str], Path]]:
    # Long lease (and supplier timeouts, in _setup): a slow, loaded machine must not turn into timeouts here.
    # No circuit breaker: a supplier refusing purchases stays in the race for its balance.
    values = json.dumps(worker_settings(settings, fulfilment_lease_seconds=60.0, database_pool_size=5,
                                        circuit_failure_threshold=1000), default=str)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).parents[3] / "src"),
                                                         os.environ.get("PYTHONPATH", "")])}
    started = []
    for n in range(PROCESSES):
        log = log_dir / f"worker-{n}.log"
        with log.open("w") as stderr:
            started.append((subprocess.Popen(
                [sys.executable, str(WORKER), values, f"load-worker-{n}", "--drain-on-go"], env=env, text=True,
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr), log))
    return started


def _run_together(workers: list[tuple[subprocess.Popen[str], Path]]) -> list[int]:
    """Wait until every process is ready, let them all go at once, and collect how many jobs each claimed."""
    try:
        for process, log in workers:
            assert process.stdout is not None and process.stdout.readline().strip() == "ready", log.read_text()
        for process, _ in workers:
            assert process.stdin is not None
            process.stdin.write("go\n")
            process.stdin.flush()
        claimed = []
        for process, log in workers:
            out, _ = process.communicate(timeout=300)
            assert process.returncode == 0, log.read_text()
            claimed.append(int(out.strip().removeprefix("claimed ")))
        return claimed
    finally:
        for process, _ in workers:
            if process.poll() is None:
                process.kill()
                process.wait(timeout=10)


def _bought_codes(sim: SupplierSimulator, key: str) -> list[str]:
    bought = sim.order(key)
    assert bought is not None, key
    return [c.password for c in bought.codes]


async def _setup(shop: Any, sims: Any, *, cheap_error_rate: float = 0.0) -> tuple[Any, ...]:
    # The simulators would sell us more than our books allow (no balance limit at their side): only our
    # prepaid check stands between the cheap supplier and one purchase too many.
    cheap, dear = sims(seed=1), sims(seed=2)
    for sim in (cheap, dear):
        sim.set_stock(CARD_PRODUCT, None)
        sim.set_latency(20)  # calls overlap across processes
    cheap.set_error_rate(cheap_error_rate)  # "busy, not taken": a definite failure, its debit is released
    sku = await shop.make_sku()
    a = await add_supplier(shop, cheap, code="cheap", sku=sku, product_code=CARD_PRODUCT, cost_cents=CHEAP_COST,
                           balance_cents=PREPAID_PURCHASES * CHEAP_COST, timeout_ms=10_000)
    b = await add_supplier(shop, dear, code="dear", sku=sku, product_code=CARD_PRODUCT, cost_cents=DEAR_COST,
                           balance_cents=DEAR_BALANCE, timeout_ms=10_000)
    orders = [await card_order_paid(shop, sku) for _ in range(ORDERS)]
    assert {(await shop.get_order(o))["status"] for o in orders} == {"paid"}
    return cheap, dear, a, b, orders


async def _work_the_queue(settings: Any, tmp_path: Path) -> None:
    started = time.monotonic()
    claimed = await asyncio.to_thread(_run_together, _start_workers(settings, tmp_path))
    print(f"{PROCESSES} workers, {ORDERS} orders: {time.monotonic() - started:.1f} s, jobs claimed {claimed}")
    assert sum(claimed) == ORDERS and sum(1 for c in claimed if c) >= 2  # the work really was shared


async def _each_order_delivered_once(shop: Any, orders: list[dict[str, Any]], sim_of: dict[int, SupplierSimulator],
                                     succeeded: list[Any]) -> None:
    """Every order delivered exactly once, with the code bought for it under its own key; no code twice."""
    assert len({x.order_id for x in succeeded}) == len(succeeded) == ORDERS
    seen: Counter[str] = Counter()
    for order in orders:
        view = await shop.get_order(order)
        assert view["status"] == "delivered" and view["delivered_keys"] == 1, view
        codes = [k["code"] for k in await shop.reveal(order)]
        [attempt] = [x for x in succeeded if x.idempotency_key.startswith(f"{order['order_no']}-")]
        assert codes == _bought_codes(sim_of[attempt.supplier_id], attempt.idempotency_key)
        seen.update(codes)
    assert len(seen) == ORDERS and max(seen.values()) == 1


async def _charges_and_books(shop: Any) -> tuple[list[SupplierCharge], dict[tuple[str, str], int]]:
    async with shop.ctx.db.read_session() as session:
        charges = list((await session.scalars(select(SupplierCharge).order_by(SupplierCharge.id))).all())
        balances = await account_balances(session)
        assert set((await ledger_service.trial_balance(session=session)).totals.values()) <= {0}
    return charges, balances


def _debited(charges: list[SupplierCharge], supplier_id: int) -> int:
    return sum(c.amount_cents for c in charges
               if c.supplier_id == supplier_id and c.status == SupplierChargeStatus.CHARGED.value)


@pytest.mark.slow
async def test_orders_worked_by_4_processes_at_once_spend_the_prepaid_balance_exactly_and_deliver_each_once(
        backend, shop, sims, settings, tmp_path):
    if backend == "sqlite":
        pytest.skip(_PG_ONLY)
    cheap, dear, a, b, orders = await _setup(shop, sims)
    await _work_the_queue(settings, tmp_path)

    attempts = await attempt_rows(shop)
    assert len(attempts) == ORDERS and {x.state.value for x in attempts} == {"succeeded"}
    await _each_order_delivered_once(shop, orders, {a.id: cheap, b.id: dear}, attempts)

    # Exactly the prepaid purchases at the cheap supplier, the rest at the dear one, each key bought once.
    assert Counter(x.supplier_id for x in attempts) == {a.id: PREPAID_PURCHASES, b.id: ORDERS - PREPAID_PURCHASES}
    for sim in (cheap, dear):
        assert set(sim.purchases.values()) == {1} and set(sim.requests.values()) == {1}
    assert set(cheap.purchases) | set(dear.purchases) == {x.idempotency_key for x in attempts}
    assert not set(cheap.purchases) & set(dear.purchases)

    # The balance went to exactly zero, one purchase at a time, never below; the suppliers charged what we debited.
    assert (await supplier_row(shop, a.id)).balance_cents == 0
    assert (await supplier_row(shop, b.id)).balance_cents == DEAR_BALANCE - (ORDERS - PREPAID_PURCHASES) * DEAR_COST
    charges, balances = await _charges_and_books(shop)
    assert {c.status for c in charges} == {SupplierChargeStatus.CHARGED.value}
    assert sorted(c.balance_after_cents for c in charges if c.supplier_id == a.id) == [
        n * CHEAP_COST for n in range(PREPAID_PURCHASES)]
    for supplier, sim in ((a, cheap), (b, dear)):
        assert _debited(charges, supplier.id) == sim.charged_cents == -balances[(f"supplier_prepaid:{supplier.id}",
                                                                                   "CNY")]
    assert cheap.charged_cents == PREPAID_PURCHASES * CHEAP_COST


@pytest.mark.slow
async def test_refused_purchases_give_their_debit_back_while_4_processes_race_for_the_balance(
        backend, shop, sims, settings, tmp_path):
    """The cheap supplier refuses a third of the purchases ("busy, not taken"): released debits race with new
    charges from other processes, and still nothing is bought twice or beyond the balance."""
    if backend == "sqlite":
        pytest.skip(_PG_ONLY)
    cheap, dear, a, b, orders = await _setup(shop, sims, cheap_error_rate=0.33)
    await _work_the_queue(settings, tmp_path)

    attempts = await attempt_rows(shop)
    succeeded = [x for x in attempts if x.state.value == "succeeded"]
    failed = [x for x in attempts if x.state.value == "failed"]
    assert len(succeeded) + len(failed) == len(attempts) and failed  # the knob really refused some
    assert {x.supplier_id for x in failed} == {a.id}
    await _each_order_delivered_once(shop, orders, {a.id: cheap, b.id: dear}, succeeded)

    # Refused keys were never bought; every other key exactly once, at the supplier its attempt names.
    assert not any(cheap.purchases_for(x.idempotency_key) for x in failed)
    for x in succeeded:
        assert {a.id: cheap, b.id: dear}[x.supplier_id].purchases_for(x.idempotency_key) == 1
    assert sum(cheap.purchases.values()) + sum(dear.purchases.values()) == ORDERS

    # Failed attempts' debits went back; what stands is what the suppliers charged; never below zero.
    charges, balances = await _charges_and_books(shop)
    released = {c.reference for c in charges if c.status == SupplierChargeStatus.RELEASED.value}
    assert released == {x.idempotency_key for x in failed}
    assert min(c.balance_after_cents for c in charges) >= 0
    cheap_balance = (await supplier_row(shop, a.id)).balance_cents
    assert 0 <= cheap_balance == PREPAID_PURCHASES * CHEAP_COST - cheap.charged_cents
    assert cheap.charged_cents <= PREPAID_PURCHASES * CHEAP_COST
    for supplier, sim in ((a, cheap), (b, dear)):
        assert _debited(charges, supplier.id) == sim.charged_cents == -balances[(f"supplier_prepaid:{supplier.id}",
                                                                                   "CNY")]


_PG_ONLY = ("PostgreSQL only: the race is between row locks of concurrent transactions in several processes; "
            "SQLite's one writer lock serializes whole transactions, so even a read-then-write debit passes there")
