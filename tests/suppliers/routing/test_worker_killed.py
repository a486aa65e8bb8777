"""A worker process killed (SIGKILL) in the middle of a supplier purchase: a fresh worker finds the attempt it
left in `sending`, asks the supplier with the same idempotency key and delivers exactly once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from quanyi.testpeers.suppliers import CARD_PRODUCT
from suppliers.routing.support import (
    HANG_SECONDS,
    add_supplier,
    attempt_rows,
    card_order_paid,
    run_due,
    worker_settings,
)

WORKER = Path(__file__).with_name("worker_process.py")


async def test_worker_killed_mid_purchase_is_recovered_and_delivers_exactly_once(shop, sims, settings):
    sim, other = sims(seed=1), sims(seed=2)
    # The purchase is taken at once and answered only after a minute (we wait up to ANSWER_TIMEOUT_MS, 30 s):
    # the worker is inside the call when killed, however slowly the test gets there.
    sim.set_timeout_mode("hang_then_complete", hang_seconds=HANG_SECONDS)
    sku = await shop.make_sku()
    await add_supplier(shop, sim, code="slow", sku=sku, product_code=CARD_PRODUCT, cost_cents=9000)
    await add_supplier(shop, other, code="other", sku=sku, product_code=CARD_PRODUCT, cost_cents=9500)
    order = await card_order_paid(shop, sku)
    key = f"{order['order_no']}-01"

    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).parents[3] / "src"),
                                                         os.environ.get("PYTHONPATH", "")])}
    process = subprocess.Popen([sys.executable, str(WORKER), json.dumps(worker_settings(settings), default=str)],
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        await sim.await_for(lambda: sim.purchases_for(key) == 1, within=120)  # the supplier charged us
        [attempt] = await attempt_rows(shop)
        assert attempt.state.value == "sending"  # committed before the call, nothing recorded after it
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
    assert process.returncode == -signal.SIGKILL

    assert (await shop.get_order(order))["status"] == "paid"
    assert await run_due(shop) == 0  # the dead worker's lease (lease + call timeout) still runs
    assert await run_due(shop, later=60) == 1
    await sim.await_for(lambda: sim.order(key) is not None)
    view = await shop.get_order(order)
    assert view["status"] == "delivered" and view["delivered_keys"] == 1
    assert sim.purchases_for(key) == 1 and sim.requests_for(key) == 1  # asked about, never bought again
    assert not other.requests  # and nobody else was asked
    assert [k["code"] for k in await shop.reveal(order)] == [c.password for c in sim.order(key).codes]
    [attempt] = await attempt_rows(shop)
    assert attempt.state.value == "succeeded" and attempt.checks == 1
