"""200 concurrent reseller orders on PostgreSQL, over two shop processes' worth of connection pools: every
order number is sent twice at once; each becomes exactly one order, the prepaid balance is debited exactly for
the orders placed and is never overdrawn, no card key is sold twice, and the books balance."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from sqlalchemy import func, select

from helpers import Shop
from quanyi.app import create_app
from quanyi.context import build_context
from quanyi.inventory.models import CardKey, CardKeyStatus
from quanyi.openapi_client import AsyncOpenApiClient, OpenApiError
from quanyi.orders.models import Order
from resellers.support import add_reseller, balance_of, books_balanced

PRICE, NUMBERS, AFFORDABLE = 100, 100, 80


async def test_duplicate_numbers_in_a_burst_make_each_order_once_and_never_overdraw(shop: Shop, backend: str):
    if backend != "postgresql":
        pytest.skip("the burst is about PostgreSQL's row locks and unique keys under real concurrency")
    sku = await shop.make_sku(code="BURST-1", price_cents=PRICE)
    await shop.stock(sku, NUMBERS + 20)
    reseller = await add_reseller(shop, top_up_cents=AFFORDABLE * PRICE, rate_limit_per_minute=0)
    second_ctx = build_context(shop.ctx.settings)  # a second process's pool: its own connections
    second_app = create_app(ctx=second_ctx)
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=second_app), base_url="http://test",
                                     timeout=120) as second_http:
            clients = [reseller.client, AsyncOpenApiClient("http://test/api/open", app_id=reseller.app_id,
                                                           secret=reseller.secret, http=second_http)]

            async def buy(i: int) -> dict | OpenApiError:
                for _ in range(30):  # as a reseller does: "unavailable" (busy, nothing taken) is retried
                    try:
                        return await clients[i % 2].buy_card_keys(f"B-{i // 2:03d}", "BURST-1", quantity=1,
                                                                  max_unit_cost_cents=PRICE)
                    except OpenApiError as exc:
                        if exc.code != "unavailable":
                            return exc
                        await asyncio.sleep(exc.body.get("retry_after", 1))
                raise AssertionError("still unavailable after 30 tries")

            results = await asyncio.gather(*(buy(i) for i in range(2 * NUMBERS)))
    finally:
        await second_ctx.close()

    placed = [r for r in results if isinstance(r, dict)]
    refused = [r for r in results if isinstance(r, OpenApiError)]
    assert {r.code for r in refused} <= {"insufficient_balance"}, {r.code for r in refused}
    orders = {r["order_no"] for r in placed}
    assert len(orders) == AFFORDABLE == await shop.count(Order)
    by_number: dict[str, set[str]] = {}
    for r in placed:
        by_number.setdefault(r["idempotency_key"], set()).add(r["order_no"])
    assert all(len(nos) == 1 for nos in by_number.values())  # a number never made two orders
    assert await balance_of(shop, "R001") == 0
    sold = await shop.scalar(select(func.count()).select_from(CardKey).where(CardKey.status == CardKeyStatus.SOLD))
    assert sold == AFFORDABLE
    codes = [c["code"] for r in placed for c in r["codes"]]
    assert len(set(codes)) == AFFORDABLE  # duplicates of one number got the same key; no key went to two orders
    await books_balanced(shop)
