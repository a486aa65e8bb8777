"""Checkout never promises a supplier's counted stock twice: units that placed (unexpired) or paid-and-being-bought
orders count on are not offered again, so no buyer pays for something that then has to be refunded."""

from __future__ import annotations

import asyncio
import datetime as dt

from sqlalchemy import select, update

from quanyi.orders.models import Order
from quanyi.suppliers.models import SupplierProduct
from quanyi.testpeers.suppliers import CARD_PRODUCT
from suppliers.routing.support import add_supplier, run_due


async def _checkout(shop, sku, quantity: int = 1, contact: str = "buyer@example.com"):  # type: ignore[no-untyped-def]
    return await shop.client.post("/api/orders", json={"sku_id": sku.id, "quantity": quantity, "contact": contact})


async def _shown(shop, sku) -> int:  # type: ignore[no-untyped-def]
    from quanyi.catalog.models import Product

    async with shop.ctx.db.read_session() as session:
        slug = (await session.get(Product, sku.product_id)).slug
    api = (await shop.client.get(f"/api/catalog/products/{slug}")).json()
    return next(s for s in api["skus"] if s["id"] == sku.id)["stock"]["available"]  # type: ignore[no-any-return]


async def _synced_stock(shop, supplier_id: int) -> int | None:  # type: ignore[no-untyped-def]
    async with shop.ctx.db.read_session() as session:
        return await session.scalar(select(SupplierProduct.stock).where(SupplierProduct.supplier_id == supplier_id))


async def test_units_placed_or_paid_orders_count_on_are_not_offered_again(shop, sims):
    sim = sims(seed=1)
    sku = await shop.make_sku()
    supplier = await add_supplier(shop, sim, code="three", sku=sku, product_code=CARD_PRODUCT, stock=3)

    assert await _shown(shop, sku) == 3
    first = await _checkout(shop, sku, quantity=2)
    assert first.status_code == 201, first.text
    assert await _shown(shop, sku) == 1  # the storefront counts the same way as checkout
    refused = await _checkout(shop, sku, quantity=2)
    assert refused.status_code == 409 and refused.json()["code"] == "sold_out"
    assert (await _checkout(shop, sku, quantity=1)).status_code == 201  # the third unit is still there
    assert (await _checkout(shop, sku, quantity=1)).status_code == 409

    # The first order expires unpaid: its two units are free again.
    async with shop.ctx.db.transaction() as session:
        await session.execute(update(Order).where(Order.order_no == first.json()["order_no"])
                              .values(expires_at=dt.datetime(2000, 1, 1, tzinfo=dt.UTC)))
    again = await _checkout(shop, sku, quantity=2)
    assert again.status_code == 201, again.text

    # Paid and being bought still counts; once bought, the synced stock itself is lower.
    await shop.pay(again.json())
    assert (await _checkout(shop, sku, quantity=1)).status_code == 409
    await run_due(shop)
    assert (await shop.get_order(again.json()))["status"] == "delivered"
    assert await _synced_stock(shop, supplier.id) == 1
    assert (await _checkout(shop, sku, quantity=1)).status_code == 409  # the unpaid order of 1 holds the last one


async def test_concurrent_checkouts_never_promise_more_than_the_supplier_has(shop, sims):
    sim = sims(seed=1)
    sku = await shop.make_sku()
    await add_supplier(shop, sim, code="five", sku=sku, product_code=CARD_PRODUCT, stock=5)
    answers = await asyncio.gather(*(_checkout(shop, sku, contact=f"b{i}@example.com") for i in range(16)))
    codes = sorted(a.status_code for a in answers)
    assert codes == [201] * 5 + [409] * 11, [a.text for a in answers if a.status_code not in (201, 409)]


async def test_uncounted_supplier_stock_is_not_limited(shop, sims):
    sim = sims(seed=1)
    sku = await shop.make_sku()
    await add_supplier(shop, sim, code="endless", sku=sku, product_code=CARD_PRODUCT, stock=None)
    for _ in range(4):
        assert (await _checkout(shop, sku, quantity=3)).status_code == 201
