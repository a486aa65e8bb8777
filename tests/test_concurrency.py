"""Many buyers, few keys: never oversold, never a key twice, every refusal a clean 'sold out'.

Buyers run in several OS processes, each with its own app and connection pool, against the same
database (PostgreSQL: row locks with SKIP LOCKED; SQLite: the file's writer lock across processes). Every other
buyer pays in the checkout's request (`pay`), the rest with start payment after it: both ways in one race.
"""

from __future__ import annotations

from collections import Counter

import pytest
from pydantic import SecretStr
from sqlalchemy import func, select

from buyer_process import buy
from quanyi.inventory.models import CardKey, CardKeyStatus
from quanyi.orders.access import order_access_token
from quanyi.orders.models import Order
from quanyi.orders.state import OrderStatus
from quanyi.payments.models import Payment
from races import race_processes

PROCESSES = 4
BUYERS_PER_PROCESS = 50
KEYS = 50


def _plain(settings) -> dict:
    values = settings.model_dump()
    values = {k: v.get_secret_value() if isinstance(v, SecretStr) else v for k, v in values.items()}
    values["database_pool_size"] = 8  # 4 processes x 16 connections stays under PostgreSQL's default 100
    return values


@pytest.mark.slow
async def test_200_buyers_in_4_processes_get_exactly_the_50_keys_in_stock(shop, sku, settings):
    codes = await shop.stock(sku, KEYS)
    outcomes = race_processes(buy, [(_plain(settings), sku.id, BUYERS_PER_PROCESS, i * 1000) for i in range(PROCESSES)],
                              doing="buying", timeout=240)

    statuses = Counter((o["status"], o.get("code")) for o in outcomes)
    assert statuses == {(201, None): KEYS, (409, "sold_out"): PROCESSES * BUYERS_PER_PROCESS - KEYS}, statuses
    bought = [o for o in outcomes if o["status"] == 201]
    assert all(o["notify_status"] == 200 and o["notify"] == "success" for o in bought)
    assert {o["index"] % 2 for o in bought} == {0, 1}  # both ways bought

    async with shop.ctx.db.read_session() as session:
        delivered = (await session.scalars(select(Order.id).where(Order.status == OrderStatus.DELIVERED))).all()
        assert len(delivered) == KEYS
        assert await session.scalar(select(func.count()).select_from(Order)) == KEYS  # refusals left no orders
        assert await session.scalar(select(func.count()).select_from(Payment)) == KEYS  # nor payments: one each
        sold = (await session.execute(select(CardKey.id, CardKey.order_id).where(
            CardKey.status == CardKeyStatus.SOLD))).all()
        assert len(sold) == KEYS
        assert len({key_id for key_id, _ in sold}) == KEYS
        assert sorted(order_id for _, order_id in sold) == sorted(delivered)  # one key per order, each once
        left = await session.scalar(select(func.count()).select_from(CardKey).where(
            CardKey.status != CardKeyStatus.SOLD))
        assert left == 0
    assert await shop.available(sku.id) == 0

    # And every buyer sees a different one of the codes that were imported.
    revealed = []
    for outcome in bought[:10]:
        token = order_access_token(settings.app_secret.get_secret_value(), outcome["order_no"])
        revealed += [k["code"] for k in await shop.reveal({"order_no": outcome["order_no"], "access_token": token})]
    assert len(set(revealed)) == 10 and set(revealed) <= set(codes)
