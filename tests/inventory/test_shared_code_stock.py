"""The stock numbers of a 循环卡密 SKU: its one code row is sold many times, so the stock page counts units (sold =
units delivered, reserved = units unpaid orders hold), never a negative 'expired'; and its batch is no batch of
unsold keys to void: the code is stopped on its shared-code page, and a void is refused."""

from __future__ import annotations

import datetime as dt
import re

from sqlalchemy import select, update

from console.support import logged_in, post_form
from quanyi.db import utcnow
from quanyi.inventory.models import CardKey, ImportBatch, SharedCode

CODE = "STOCK-SHARED-CODE-2026"
KPIS = ("available", "reserved", "sold", "voided", "expired")


async def _shared_sku(shop, limit: int):  # type: ignore[no-untyped-def]
    sku = await shop.make_sku(code="SHARED-STOCK", delivery_type="shared_code", price_cents=300)
    added = await shop.client.post(f"/api/admin/skus/{sku.id}/shared-codes", headers=shop.admin,
                                   json={"code": CODE, "sale_limit": limit})
    assert added.status_code == 201, added.text
    return sku


async def _stock(shop, sku) -> dict[str, int]:  # type: ignore[no-untyped-def]
    response = await shop.client.get(f"/api/admin/skus/{sku.id}/stock", headers=shop.admin)
    assert response.status_code == 200, response.text
    return {k: response.json()[k] for k in KPIS}


def _kpis(page: str) -> dict[str, int]:
    """The stock page's five numbers."""
    found = {k: re.search(rf'data-testid="sku-{k}">(-?\d+)<', page) for k in KPIS}
    return {k: int(m.group(1)) if m else -999 for k, m in found.items()}


async def test_a_shared_codes_stock_counts_units_sold_and_held_and_its_batch_is_not_voided(shop, app):
    sku = await _shared_sku(shop, 5)
    await shop.create_order(sku.id, contact="unpaid@example.com")  # holds one unit
    for n in range(2):
        order = await shop.create_order(sku.id, contact=f"buyer{n}@example.com")
        await shop.pay(order)
        assert (await shop.get_order(order))["status"] == "delivered"

    expected = {"available": 2, "reserved": 1, "sold": 2, "voided": 0, "expired": 0}
    assert await _stock(shop, sku) == expected  # old code: reserved 0, sold 0, expired -2
    client = await logged_in(shop, "stocker", roles=("owner",))
    page = await client.get(f"/console/keys/skus/{sku.id}")
    assert page.status_code == 200 and _kpis(page.text) == expected
    assert 'data-testid="void-batch"' not in page.text and f"/console/catalog/shared/{sku.id}" in page.text
    assert 'data-testid="import-keys"' not in page.text  # a 循环卡密 SKU takes no key file

    batch_id = await shop.scalar(select(ImportBatch.id).where(ImportBatch.sku_id == sku.id))
    batch_page = await client.get(f"/console/keys/batches/{batch_id}")
    assert batch_page.status_code == 200 and "key_status.shared" not in batch_page.text
    refused = await post_form(client, f"/console/keys/batches/{batch_id}/void", {"reason": "stop it"},
                              page_url=f"/console/keys/skus/{sku.id}")
    assert refused.status_code == 409 and f"/console/catalog/shared/{sku.id}" in refused.text
    api = await shop.client.post(f"/api/admin/batches/{batch_id}/void", headers=shop.admin, json={"reason": "stop"})
    assert api.status_code == 409 and api.json()["code"] == "shared_code_batch"
    assert await shop.scalar(select(ImportBatch.voided_at).where(ImportBatch.id == batch_id)) is None
    assert (await _stock(shop, sku))["available"] == 2  # still on sale: nothing was stopped behind a 'voided' label

    # A leak trace that also voids batches: the shared code is marked leaked (off sale), the trace is not refused;
    # its unsold units count as voided.
    traced = await shop.client.post("/api/admin/leaks/trace", headers=shop.admin,
                                    json={"codes": [CODE], "mark_leaked": True, "void_batches": True})
    assert traced.status_code == 200, traced.text
    assert await _stock(shop, sku) == {"available": 0, "reserved": 1, "sold": 2, "voided": 2, "expired": 0}


async def test_a_shared_code_counts_as_expired_only_when_the_code_expires(shop, app):
    sku = await _shared_sku(shop, 4)
    order = await shop.create_order(sku.id, contact="buyer@example.com")
    await shop.pay(order)
    assert await _stock(shop, sku) == {"available": 3, "reserved": 0, "sold": 1, "voided": 0, "expired": 0}
    async with shop.ctx.db.transaction() as session:
        key_id = await session.scalar(select(SharedCode.card_key_id).where(SharedCode.sku_id == sku.id))
        await session.execute(update(CardKey).where(CardKey.id == key_id)
                              .values(expires_at=utcnow() + dt.timedelta(hours=6)))
    assert await _stock(shop, sku) == {"available": 0, "reserved": 0, "sold": 1, "voided": 0, "expired": 3}
