"""A `quanyi` process placing a bulk purchase killed with SIGKILL in the middle of a chunk (PostgreSQL: while
its transaction has written the order, the chunk row and the payment and waits to debit the balance), then a
fresh process: the dead chunk left nothing, the purchase resumes once the dead worker's lease runs out, and in
the end exactly N codes were bought, each charged once and delivered once."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import func, select, update

from enterprises.support import add_enterprise, balance_of, books_balanced
from faults.support import Freezer, QuanyiProcess
from quanyi.db import utcnow
from quanyi.enterprises.models import BulkPurchase, BulkPurchaseOrder
from quanyi.inventory.models import CardKey
from quanyi.ledger.models import CustomerAccount, CustomerCharge
from quanyi.orders.models import Order


@pytest.fixture
async def freezer(database_url: str) -> AsyncIterator[Freezer]:
    frozen = Freezer(database_url)
    yield frozen
    await frozen.release()


@pytest.mark.slow
async def test_a_worker_killed_mid_chunk_charges_and_delivers_nothing_twice(shop, freezer, settings, tmp_path):
    sku = await shop.make_sku(code="GIFT-100", price_cents=10_000, max_quantity=10)
    await shop.stock(sku, 30)
    await add_enterprise(shop, top_up_cents=1_000_000, invoice={"invoice_email": "ap@acme.example"})
    made = await shop.client.post("/api/admin/enterprises/ACME/purchases", headers=shop.admin,
                                  json={"sku_code": "GIFT-100", "quantity": 25})
    assert made.status_code == 202, made.text

    account_id = await shop.scalar(select(CustomerAccount.id).where(CustomerAccount.code == "enterprise:ACME"))
    await freezer.lock_rows("ledger_customer_account", "id = $1", account_id)  # the debit of chunk 1 waits here
    doomed = QuanyiProcess(settings, tmp_path, "enterprises", "purchases-run", name="doomed")
    try:
        pid = await freezer.wait_for_lock_waiter()
        if not freezer.is_sqlite:
            assert await freezer.has_written(pid)  # the order, the chunk row, the payment: written, uncommitted
    finally:
        doomed.kill9()
    await freezer.release()

    assert await shop.count(Order) == 0 and await shop.count(BulkPurchaseOrder) == 0
    assert await shop.count(CustomerCharge) == 0 and await balance_of(shop, "ACME") == 1_000_000
    assert await shop.count(CardKey, CardKey.status == "available") == 30
    # The dead worker's lease (60 s) runs out: skipped here.
    async with shop.ctx.db.transaction() as session:
        await session.execute(update(BulkPurchase).values(lease_until=utcnow() - dt.timedelta(seconds=1)))

    fresh = QuanyiProcess(settings, tmp_path, "enterprises", "purchases-run", name="fresh")
    try:
        assert fresh.process.wait(timeout=120) == 0, fresh.log()[-3000:]
    finally:
        fresh.stop()
    assert await shop.scalar(select(BulkPurchase.status)) == "completed"
    assert await shop.scalar(select(BulkPurchase.placed_quantity)) == 25
    assert await shop.count(CardKey, CardKey.status == "sold") == 25
    assert await shop.scalar(select(func.sum(CustomerCharge.amount_cents))) == 250_000
    assert await shop.count(CustomerCharge) == await shop.count(Order) == 3
    assert await balance_of(shop, "ACME") == 750_000
    await books_balanced(shop)
