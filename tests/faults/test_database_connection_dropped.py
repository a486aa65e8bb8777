"""The database drops the server's connection in the middle of a transaction (PostgreSQL
`pg_terminate_backend`, as a failover, a restart or an idle-killer does): the request answers a clean
503 problem with Retry-After, nothing of its transaction is written, and the server goes on serving
(the dead connection is invalidated; a pooled connection whose server hung up is replaced before use).

The dropped connection is PostgreSQL only: SQLite is a file opened inside the server process; there is no
server connection to drop. A database that is down altogether answers the same 503 (last test).
"""

from __future__ import annotations

import asyncio

import httpx
import pytest
from sqlalchemy import select

from faults.support import QuanyiProcess, awaiting_notification, key_counts, traceback_lines
from helpers import make_settings
from quanyi.app import create_app
from quanyi.payments.models import Payment
from quanyi.testpeers.runner import free_port


def _post(url: str, params: dict[str, str]) -> httpx.Response:
    return httpx.post(f"{url}/payments/sandbox/notify", data=params, timeout=60)


async def test_connection_dropped_mid_transaction_answers_503_and_the_server_recovers(
        backend, shop, settings, freezer, tmp_path):
    if backend == "sqlite":
        pytest.skip("SQLite has no server connection to drop")
    case = await awaiting_notification(shop, stock=3)
    sku, order, params, order_id = case.sku, case.order, case.params, case.order_id

    server = QuanyiProcess.server(settings, tmp_path)
    try:
        await freezer.lock_rows("inventory_card_key", "order_id = $1", order_id)
        in_flight = asyncio.create_task(asyncio.to_thread(_post, server.url, params))
        backend_pid = await freezer.wait_for_lock_waiter()
        assert await freezer.has_written(backend_pid)
        await freezer.terminate_backend(backend_pid)
        answer = await in_flight
        await freezer.release(keep_connection=True)

        assert answer.status_code == 503, answer.text
        assert answer.headers["content-type"] == "application/problem+json"
        assert answer.json()["code"] == "database_unavailable"
        assert int(answer.headers["Retry-After"]) >= 1
        # Nothing of the dropped transaction was written.
        assert (await shop.get_order(order))["status"] == "pending_payment"
        assert await key_counts(shop, sku.id) == {"available": 2, "reserved": 1}
        assert await shop.scalar(select(Payment.status).where(Payment.payment_no == params["out_trade_no"])) \
            == "created"

        # The gateway retries as told; the same server takes it on a healthy connection.
        with httpx.Client(base_url=server.url, timeout=30) as http:
            retry = http.post("/payments/sandbox/notify", data=params)
            assert retry.status_code == 200 and retry.text == "success", retry.text
            for _ in range(3):
                view = http.get(f"/api/orders/{order['order_no']}", headers=shop.auth(order))
                assert view.status_code == 200 and view.json()["status"] == "delivered"
            # Connections dropped while idle in the pool are noticed before use: no error at all. These were
            # used a moment ago, so no ping is due (db._ping_when_idle): their sockets show the server hung up.
            assert await freezer.terminate_all_others() >= 1
            for _ in range(3):
                view = http.get(f"/api/orders/{order['order_no']}", headers=shop.auth(order))
                assert view.status_code == 200 and view.json()["status"] == "delivered"
    finally:
        await freezer.release()
        server.stop()
    assert await key_counts(shop, sku.id) == {"available": 2, "sold": 1}
    log = server.log()
    assert not traceback_lines(log), log[-3000:]
    assert "database unavailable" in log, log[-3000:]


async def test_database_down_answers_503_problems_and_pages_not_500():
    """No database at all (nothing listens on its port): API answers and pages say "retry shortly"."""
    app = create_app(make_settings(f"postgresql://postgres@127.0.0.1:{free_port()}/nowhere"))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        api = await client.get("/api/catalog/products")
        page = await client.get("/", headers={"Accept": "text/html"})
    await app.state.ctx.close()
    assert api.status_code == 503 and api.json()["code"] == "database_unavailable", api.text
    assert api.headers["content-type"] == "application/problem+json" and api.headers["Retry-After"]
    assert page.status_code == 503 and page.headers["content-type"].startswith("text/html")
    assert page.headers["Retry-After"]
