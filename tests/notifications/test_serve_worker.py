"""`quanyi serve` runs the outbox worker by default: a paid order's alerts leave without a separate worker."""

from __future__ import annotations

import subprocess
import sys
import time

import httpx

from helpers import signed_notification
from notifications.support import settings_env
from quanyi.testpeers.runner import free_port


def _wait_until(predicate, timeout: float = 90.0) -> None:  # generous: a loaded machine may stall
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError("condition not reached in time")


async def test_serve_sends_notifications_in_the_background(shop, stocked_sku, robots, smtp, settings, tmp_path):
    await shop.ctx.db.dispose()
    port = free_port()
    env = settings_env(settings)
    env.update({"QUANYI_RUN_BACKGROUND_TASKS": "true", "QUANYI_NOTIFICATION_POLL_SECONDS": "0.2"})
    server = subprocess.Popen([sys.executable, "-m", "quanyi.cli", "serve", "--port", str(port)], cwd=tmp_path,
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              stdin=subprocess.DEVNULL)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as http:
            def up() -> bool:
                try:
                    return http.get("/healthz").status_code == 200
                except httpx.HTTPError:
                    return False
            _wait_until(up)
            order = http.post("/api/orders", json={"sku_id": stocked_sku.id, "quantity": 1,
                                                   "contact": "buyer@example.com"}).json()
            payment = http.post(f"/api/orders/{order['order_no']}/payments", json={"gateway": "sandbox"},
                                headers={"X-Order-Token": order["access_token"]}).json()
            params = signed_notification(settings.sandbox_secret.get_secret_value(),
                                         payment_no=payment["payment_no"], amount_cents=payment["amount_cents"])
            assert http.post("/payments/sandbox/notify", data=params).text == "success"
            _wait_until(lambda: len(smtp.messages) == 1 and len(robots.messages) == 2)
            assert order["order_no"] in smtp.messages[0]["Subject"]
    finally:
        server.terminate()
        output = server.communicate(timeout=60)[0]
    assert "notification worker" in output and "started" in output


async def test_the_worker_leaves_what_startup_built_out_of_the_collectors_sight(shop, monkeypatch):
    """`quanyi worker` freezes the objects built before it starts working (gc.freeze, as `quanyi serve` does): a
    full collection then looks only at what the work allocates, not at the ~177,000 objects of its startup."""
    import gc

    from enterprises.support import run_cli
    from quanyi.ledger.service import LedgerWorker
    from quanyi.notifications.worker import OutboxWorker
    from quanyi.suppliers.routing import FulfilmentWorker

    frozen: list[int] = []

    async def stop(self) -> None:  # the loops' first turn: note what is frozen, then end
        frozen.append(gc.get_freeze_count())

    for loop in (OutboxWorker, FulfilmentWorker, LedgerWorker):
        monkeypatch.setattr(loop, "run_forever", stop)
    gc.unfreeze()
    try:
        done = await run_cli(shop, monkeypatch, "worker")
        assert done.exit_code == 0, done.output
        assert len(frozen) == 3 and min(frozen) > 1000, frozen
    finally:
        gc.unfreeze()
