"""Runs in a separate OS process: a whole shop app on its own connections, buying as fast as it can.

Not a test module; tests/test_concurrency.py starts several of these at once.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from helpers import signed_notification


async def _buy(client: httpx.AsyncClient, sku_id: int, sandbox_secret: str, index: int) -> dict[str, Any]:
    # Every other buyer pays in the checkout's request (orders.pay_at_checkout), the rest start payment after it.
    pay_at_checkout = index % 2 == 0
    response = await client.post("/api/orders", json={"sku_id": sku_id, "quantity": 1,
                                                       "contact": f"buyer{index}@example.com",
                                                       **({"pay": {"gateway": "sandbox"}} if pay_at_checkout else {})})
    if response.status_code != 201:
        return {"status": response.status_code, "code": response.json().get("code")}
    order = response.json()
    headers = {"X-Order-Token": order["access_token"]}
    if pay_at_checkout:
        payment = order["payment"]
    else:
        payment = (await client.post(f"/api/orders/{order['order_no']}/payments", headers=headers)).json()
    params = signed_notification(sandbox_secret, payment_no=payment["payment_no"],
                                 amount_cents=payment["amount_cents"])
    notified = await client.post("/payments/sandbox/notify", data=params)
    return {"status": 201, "order_no": order["order_no"], "notify": notified.text, "index": index,
            "notify_status": notified.status_code}


async def _run(settings_values: dict[str, Any], sku_id: int, count: int, offset: int, go: Any) -> list[dict[str, Any]]:
    from quanyi.app import create_app
    from quanyi.config import Settings
    from quanyi.context import build_context

    ctx = build_context(Settings(_env_file=None, **settings_values))  # type: ignore[call-arg]
    app = create_app(ctx=ctx)
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
            await asyncio.to_thread(go.wait)  # every process starts buying at the same moment
            secret = settings_values["sandbox_secret"]
            return list(await asyncio.gather(*[_buy(client, sku_id, secret, offset + i) for i in range(count)]))
    finally:
        await ctx.close()


def buy(settings_values: dict[str, Any], sku_id: int, count: int, offset: int, go: Any, results: Any) -> None:
    results.put(asyncio.run(_run(settings_values, sku_id, count, offset, go)))



async def _notify_all(settings_values: dict[str, Any], notifications: list[dict[str, str]], redis_late: float,
                      go: Any) -> list[str]:
    from quanyi.app import create_app
    from quanyi.config import Settings
    from quanyi.context import build_context
    from quanyi.risk.counters import RedisCounters

    if redis_late:  # this process is slow to write its counter events to Redis (a busy host, a slow link)
        write = RedisCounters._write

        async def late_write(self: RedisCounters, events: Any, **options: Any) -> None:
            await asyncio.sleep(redis_late)  # the host is slow; Redis itself answers at once (options: its time limit)
            await write(self, events, **options)

        RedisCounters._write = late_write  # type: ignore[method-assign]

    ctx = build_context(Settings(_env_file=None, **settings_values))  # type: ignore[call-arg]
    app = create_app(ctx=ctx)
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
            # Warm: as many notifications of no payment as this process will send, at once (each opens a pooled
            # connection and prepares the notification's statement on it), so that the real ones meet at the start.
            unknown = [signed_notification(settings_values["sandbox_secret"], payment_no=f"PYNONE{n}", amount_cents=1)
                       for n in range(len(notifications))]
            await asyncio.gather(*(client.post("/payments/sandbox/notify", data=params) for params in unknown))
            await asyncio.to_thread(go.wait)  # ready; then every process is warm (tests/races.py)
            responses = await asyncio.gather(*(client.post("/payments/sandbox/notify", data=params)
                                               for params in notifications))
            return [f"{response.status_code} {response.text}" for response in responses]
    finally:
        await ctx.close()


def notify(settings_values: dict[str, Any], notifications: list[dict[str, str]], redis_late: float, go: Any,
           results: Any) -> None:
    """Deliver these signed gateway notifications all at once, on this process's own app and connections, once every
    process is warm (the race's `go`; every process reads the test process's risk clock: tests/races.py). Risk
    counters in Redis: each write of counter events waits `redis_late` seconds first."""
    results.put(asyncio.run(_notify_all(settings_values, notifications, redis_late, go)))
