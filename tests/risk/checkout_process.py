"""Runs in a separate OS process (tests/races.py `race_processes`): one shop app on its own connections checking out
as one client (one address, device and contact), all at once, the one-transaction way when the rules allow it or
the general way only.

Not a test module; tests/risk/test_checkout_ways_under_concurrency.py starts several of these at once."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx


async def _check_out(settings_values: dict[str, Any], sku_id: int, count: int, general: bool, client: dict[str, str],
                     go: Any) -> list[str]:
    from quanyi.app import create_app
    from quanyi.config import Settings
    from quanyi.context import build_context
    from quanyi.risk import order_stage

    if general:  # every checkout of this process the general way (risk.engine.screen_checkout, then the order)
        order_stage.judged_without_counts = lambda *_args: False  # type: ignore[assignment]
    ctx = build_context(Settings(_env_file=None, **settings_values))  # type: ignore[call-arg]
    app = create_app(ctx=ctx)
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app, client=(client["ip"], 40000)),
                                     base_url="http://test", headers={"X-Device-Id": client["device"]}) as http:
            async def one(sku: int) -> httpx.Response:
                return await http.post("/api/orders", json={"sku_id": sku, "quantity": 1,
                                                            "contact": client["contact"]})

            # Warm: as many checkouts of no SKU (neither way counts them) as this process will send, at once: the
            # pooled connections open, the rules are read, so that the real ones meet at the start.
            assert {(await r).status_code for r in [one(2_000_000_000) for _ in range(count)]} == {404}
            await asyncio.to_thread(go.wait)  # ready; then every process is warm (tests/races.py)
            answers = await asyncio.gather(*(one(sku_id) for _ in range(count)))
            way = "general" if general else "fast"
            return [f"{way} {answer.status_code} {answer.json().get('code', '')}".strip() for answer in answers]
    finally:
        await ctx.close()


def check_out(settings_values: dict[str, Any], sku_id: int, count: int, general: bool, client: dict[str, str],
              go: Any, results: Any) -> None:
    results.put(asyncio.run(_check_out(settings_values, sku_id, count, general, client, go)))
