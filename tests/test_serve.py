"""`quanyi serve` as a real process: it starts from environment settings, runs the reservation
sweeper in the background, and the sandbox gateway notifies it over real HTTP."""

from __future__ import annotations

import datetime as dt
import os
import re
import socket
import subprocess
import sys
import time

import httpx
from pydantic import SecretStr
from sqlalchemy import update

from helpers import page_csrf_token
from quanyi.orders.models import Order


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _env(settings) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("QUANYI_")}
    for name in ("database_url", "admin_token", "app_secret", "card_keys", "card_key_active_id",
                 "card_key_hash_key", "sandbox_secret", "sandbox_enabled"):
        value = getattr(settings, name)
        env[f"QUANYI_{name.upper()}"] = value.get_secret_value() if isinstance(value, SecretStr) else str(value)
    env["QUANYI_SWEEP_INTERVAL_SECONDS"] = "0.2"
    return env


def _wait_until(predicate, timeout: float = 90.0) -> None:  # generous: a loaded machine may stall
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError("condition not reached in time")


async def test_serve_sweeps_expired_orders_and_takes_payments_over_http(shop, stocked_sku, settings, tmp_path):
    stale = await shop.create_order(stocked_sku.id, quantity=2)
    async with shop.ctx.db.transaction() as session:
        await session.execute(update(Order).where(Order.order_no == stale["order_no"]).values(
            expires_at=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)))
    await shop.ctx.db.dispose()

    port = _free_port()
    server = subprocess.Popen([sys.executable, "-m", "quanyi.cli", "serve", "--port", str(port)], cwd=tmp_path,
                              env=_env(settings), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              stdin=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(base_url=base, timeout=60) as http:
            def up() -> bool:
                try:
                    return http.get("/healthz").status_code == 200
                except httpx.TransportError:
                    return False

            _wait_until(up)
            auth = {"X-Order-Token": stale["access_token"]}
            _wait_until(lambda: http.get(f"/api/orders/{stale['order_no']}", headers=auth).json()["status"]
                        == "cancelled")

            order = http.post("/api/orders", json={"sku_id": stocked_sku.id, "contact": "a@example.com"}).json()
            auth = {"X-Order-Token": order["access_token"]}
            payment = http.post(f"/api/orders/{order['order_no']}/payments", headers=auth).json()
            assert payment["cashier_url"].startswith(base)
            page = http.get(payment["cashier_url"])
            token = re.search(r'name="t" value="([^"]+)"', page.text).group(1)
            back = http.post("/sandbox/cashier/pay", data={"t": token, "csrf_token": page_csrf_token(page.text)})
            assert back.status_code == 303
            assert http.get(f"/api/orders/{order['order_no']}", headers=auth).json()["status"] == "delivered"
    finally:
        server.terminate()
        output = server.communicate(timeout=60)[0]
    assert "quanyi.payments.notify: payment notification accepted: gateway=sandbox" in output, output[-2000:]
    assert "released the stock of 1 expired orders" in output, output[-2000:]
    # The access log shows the cashier visit without its ticket (tokens in query strings are redacted).
    assert "/sandbox/cashier?t=[redacted]" in output and token not in output, output[-2000:]
    assert "QUANYI_PUBLIC_BASE_URL is not set" in output
    # the sandbox warning reaches the log too (shops whose logs miss stderr's banner), once for its one worker
    assert output.count("WARNING quanyi.app: the sandbox payment gateway is enabled") == 1, output[-2000:]
