"""`quanyi serve` (running the fulfilment worker, as it does by default) killed with SIGKILL while a supplier
is filling a paid order: a restarted server asks the supplier about the purchase with the same idempotency
key, and delivers what was bought, exactly once, never buying it again.

The same with a separate worker process: tests/suppliers/routing/test_worker_killed.py.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
from sqlalchemy import update

from faults.support import QuanyiProcess, await_until, traceback_lines
from helpers import make_settings
from quanyi.db import utcnow
from quanyi.suppliers.fulfilment_models import FulfilmentJob
from quanyi.testpeers.suppliers import CARD_PRODUCT, SupplierSimulator, start_supplier_simulator
from suppliers.routing.support import add_supplier, attempt_rows, card_order_paid


@pytest.fixture
def settings(database_url: str):  # type: ignore[no-untyped-def]
    return make_settings(database_url, run_background_tasks=True, fulfilment_poll_seconds=0.1,
                         fulfilment_lease_seconds=1.0, fulfilment_query_seconds=0.0,
                         notification_worker_in_serve=False)


@pytest.fixture
def sim() -> Iterator[SupplierSimulator]:
    simulator = start_supplier_simulator("quanyi", seed=1)
    yield simulator
    simulator.stop()


async def test_server_killed_mid_supplier_purchase_restarts_and_delivers_exactly_once(shop, sim, settings, tmp_path):
    # The purchase is taken at once and answered only much later: the server is inside the call when killed.
    sim.set_timeout_mode("hang_then_complete", hang_seconds=20.0, times=1)
    sku = await shop.make_sku()
    await add_supplier(shop, sim, code="slow", sku=sku, product_code=CARD_PRODUCT, cost_cents=9000, timeout_ms=15000)
    order = await card_order_paid(shop, sku)
    key = f"{order['order_no']}-01"

    server = QuanyiProcess.server(settings, tmp_path)
    try:
        await sim.await_for(lambda: sim.purchases_for(key) == 1, within=90)  # the supplier charged us
    finally:
        server.kill9()
    [attempt] = await attempt_rows(shop)
    assert attempt.state.value == "sending"  # committed before the call, nothing recorded after it
    assert (await shop.get_order(order))["status"] == "paid"

    # The dead server's lease (lease + call timeout) runs out: skipped here rather than waited for.
    async with shop.ctx.db.transaction() as session:
        await session.execute(update(FulfilmentJob).values(locked_until=utcnow() - dt.timedelta(seconds=1)))
    restarted = QuanyiProcess.server(settings, tmp_path, port=server.port, name="restarted")
    try:
        async def delivered() -> bool:
            return (await shop.get_order(order))["status"] == "delivered"

        await await_until(delivered, what="the restarted server delivering the order")
    finally:
        restarted.stop()
    assert not traceback_lines(restarted.log()), restarted.log()[-3000:]

    view = await shop.get_order(order)
    assert view["delivered_keys"] == 1
    assert sim.purchases_for(key) == 1  # asked about, never bought again
    assert [k["code"] for k in await shop.reveal(order)] == [c.password for c in sim.order(key).codes]
    [attempt] = await attempt_rows(shop)
    assert attempt.state.value == "succeeded"
