"""Stock and cost sync with a simulated supplier: push (the simulator calls the shop over HTTP) and pull
(the background round and the CLI), newest observation wins, and the storefront agrees with checkout:
supplier stock 0 and no local keys means sold out on the page, in the API, and at checkout."""

from __future__ import annotations

import asyncio
import datetime as dt
from dataclasses import dataclass

import pytest

from quanyi.db import utcnow
from quanyi.suppliers import sync as sync_service
from quanyi.suppliers.adapter import StockEvent
from quanyi.suppliers.models import Supplier
from quanyi.suppliers.sync_apply import apply_stock_events
from quanyi.tasks import sync_suppliers_once
from quanyi.testpeers.runner import free_port
from quanyi.testpeers.suppliers import CARD_PRODUCT, CARD_PRODUCT_UNCOUNTED
from suppliers.shop_support import map_sku, product_row, quanyi_cli, register, served_shop, sync, sync_state


@pytest.fixture
def sim(supplier_sim):
    return supplier_sim("quanyi")


async def _supplied_sku(shop, sim, *, price_cents=10000, local_keys=0):
    await register(shop, sim)
    await sync(shop)
    sku = await shop.make_sku(code="GIFT-CARD", price_cents=price_cents)
    if local_keys:
        await shop.stock(sku, local_keys)
    await map_sku(shop, sku.id, CARD_PRODUCT)
    return sku


async def _storefront(shop, sku):
    """(API stock state, product page HTML) of the SKU's product."""
    async with shop.ctx.db.read_session() as session:
        from quanyi.catalog.models import Product
        slug = (await session.get(Product, sku.product_id)).slug
    api = (await shop.client.get(f"/api/catalog/products/{slug}")).json()
    page = (await shop.client.get(f"/p/{slug}?lang=en", headers={"accept": "text/html"})).text
    state = next(s for s in api["skus"] if s["id"] == sku.id)["stock"]
    listing = next(p for p in (await shop.client.get("/api/catalog/products")).json() if p["slug"] == slug)
    return state, page, listing


async def _checkout(shop, sku, quantity=1):
    return await shop.client.post("/api/orders", json={"sku_id": sku.id, "quantity": quantity,
                                                       "contact": "buyer@example.com"})


async def test_push_updates_the_row_and_sold_out_shows_everywhere(shop, sim, settings):
    sku = await _supplied_sku(shop, sim)
    state, page, listing = await _storefront(shop, sku)
    assert state == {"available": 50, "purchasable": True, "status": "in_stock"} and listing["in_stock"]
    before = await product_row(shop, CARD_PRODUCT)

    with served_shop(settings) as shop_url:
        sim.set_push_url(f"{shop_url}/api/suppliers/ACME/stock-callback")
        sim.set_stock(CARD_PRODUCT, 0)
        records = await asyncio.to_thread(sim.push_stock, [CARD_PRODUCT])
    assert [r.accepted for r in records] == [True], records

    row = await product_row(shop, CARD_PRODUCT)
    assert row.stock == 0 and row.last_sync_source == "push" and row.last_synced_at > before.last_synced_at
    assert (await sync_state(shop)).last_push_at is not None
    state, page, listing = await _storefront(shop, sku)
    assert state == {"available": 0, "purchasable": False, "status": "sold_out"}
    assert "Sold out" in page and not listing["in_stock"] and listing["stock_status"] == "sold_out"
    refused = await _checkout(shop, sku)
    assert refused.status_code == 409 and refused.json()["code"] == "sold_out"

    # Local keys still sell while the supplier has none; the count shown is ours alone.
    await shop.stock(sku, 2)
    state, _, _ = await _storefront(shop, sku)
    assert state["available"] == 2 and state["purchasable"]
    assert (await _checkout(shop, sku, 2)).status_code == 201
    assert (await _checkout(shop, sku)).status_code == 409


async def test_a_tampered_push_is_rejected_and_changes_nothing(shop, sim):
    sku = await _supplied_sku(shop, sim)
    before = await product_row(shop, CARD_PRODUCT)
    sim.set_stock(CARD_PRODUCT, 0)
    [message] = sim.stock_push([sim.products[CARD_PRODUCT]])
    tampered = message.content.replace(b'"stock":0', b'"stock":9999')
    assert tampered != message.content
    forged = {**message.headers, "X-Quanyi-Signature": "0" * 64}
    for body, headers in ((tampered, message.headers), (message.content, forged), (message.content, {}),
                          (b"not json at all", message.headers)):
        response = await shop.client.post("/api/suppliers/ACME/stock-callback", content=body, headers=headers)
        assert response.status_code == 400 and response.json()["code"] == "callback_rejected", response.text
    unknown = await shop.client.post("/api/suppliers/NOBODY/stock-callback", content=message.content,
                                     headers=message.headers)
    assert unknown.status_code == 404
    after = await product_row(shop, CARD_PRODUCT)
    assert (after.stock, after.last_synced_at, after.last_sync_source) == (50, before.last_synced_at, "pull")
    assert (await sync_state(shop)).last_push_at is None
    assert (await _storefront(shop, sku))[0]["status"] == "in_stock"

    # The genuine message is taken: the dialect's own acknowledgement, and the row changes.
    genuine = await shop.client.post("/api/suppliers/ACME/stock-callback", content=message.content,
                                     headers=message.headers)
    assert genuine.status_code == 200 and genuine.json() == {"ok": True}
    assert (await product_row(shop, CARD_PRODUCT)).stock == 0


async def test_pull_round_picks_up_stock_and_cost_changes(shop, sim):
    sku = await _supplied_sku(shop, sim)
    before = await product_row(shop, CARD_PRODUCT)
    sim.set_stock(CARD_PRODUCT, 0)
    sim.set_cost(CARD_PRODUCT, 9600)
    shop.ctx.settings.supplier_sync_interval_seconds = 0.01
    await asyncio.sleep(0.02)
    results = await sync_suppliers_once(shop.ctx)
    assert [(r.supplier_code, r.ok, r.mode) for r in results] == [("ACME", True, "quotes")]
    row = await product_row(shop, CARD_PRODUCT)
    assert (row.stock, row.cost_cents, row.last_sync_source) == (0, 9600, "pull")
    assert row.last_synced_at > before.last_synced_at
    assert (await _storefront(shop, sku))[0]["status"] == "sold_out"
    assert (await _checkout(shop, sku)).status_code == 409

    sim.set_stock(CARD_PRODUCT, 3)
    await asyncio.sleep(0.02)
    await sync_suppliers_once(shop.ctx)
    assert (await _storefront(shop, sku))[0] == {"available": 3, "purchasable": True, "status": "in_stock"}
    assert (await _checkout(shop, sku)).status_code == 201
    supplier = (await shop.client.get("/api/admin/suppliers/ACME", headers=shop.admin)).json()
    assert supplier["health"]["last_success_at"] and supplier["sync"]["last_pull_ok_at"]


async def test_catalog_pull_adds_new_products_unmapped_and_marks_vanished_ones_unavailable(shop, sim):
    from quanyi.testpeers.suppliers import SimProduct

    sku = await _supplied_sku(shop, sim)
    sim.add_product(SimProduct("NEW-200", "Gift card ¥200", "card_key", 20000, 19000, stock=5))
    with sim._lock:  # the supplier drops a product from its catalog
        del sim.products[CARD_PRODUCT]
    result = await sync(shop)
    assert result["new_products"] == 1 and result["vanished"] == 1
    products = {p["product_code"]: p for p in (await shop.client.get(
        "/api/admin/suppliers/ACME/products", headers=shop.admin)).json()}
    assert products["NEW-200"]["mapped_skus"] == [] and products["NEW-200"]["available"]
    assert not products[CARD_PRODUCT]["available"] and products[CARD_PRODUCT]["mapped_skus"] == [sku.id]
    assert (await _storefront(shop, sku))[0]["status"] == "sold_out"
    status = (await shop.client.get("/api/admin/suppliers/ACME/sync-status", headers=shop.admin)).json()
    assert status["sync"]["last_catalog_at"] and all(p["last_synced_at"] for p in status["products"])


async def test_uncounted_supplier_stock_is_capped_for_display(shop, sim):
    await register(shop, sim)
    await sync(shop)
    sku = await shop.make_sku(code="VIP", price_cents=3000)
    await map_sku(shop, sku.id, CARD_PRODUCT_UNCOUNTED)
    state, _, _ = await _storefront(shop, sku)
    assert state == {"available": 999, "purchasable": True, "status": "in_stock"}


@dataclass(frozen=True)
class TimedStockEvent(StockEvent):
    occurred_at: dt.datetime | None = None


async def test_an_older_push_never_overwrites_a_newer_pull(shop, sim):
    await _supplied_sku(shop, sim)
    pulled = await product_row(shop, CARD_PRODUCT)
    async with shop.ctx.db.transaction() as session:
        supplier = await session.get(Supplier, pulled.supplier_id)
        # Arrived late: the supplier says it happened a minute before our pull.
        late = TimedStockEvent(product_code=CARD_PRODUCT, stock=0, cost_cents=1,
                               occurred_at=pulled.last_synced_at - dt.timedelta(minutes=1))
        applied = await apply_stock_events(session=session, supplier=supplier, events=[late], arrived_at=utcnow())
        assert applied.stale_ignored == 1 and applied.updated == 0
        # Without an event time, arrival order decides: this one is newer than the pull.
        fresh = StockEvent(product_code=CARD_PRODUCT, stock=7)
        applied = await apply_stock_events(session=session, supplier=supplier, events=[fresh], arrived_at=utcnow())
        assert applied.updated == 1
    row = await product_row(shop, CARD_PRODUCT)
    assert (row.stock, row.cost_cents, row.last_sync_source) == (7, 9500, "push")

    # A pull sent before that push arrived is older than it: the push stays.
    async with shop.ctx.db.transaction() as session:
        from quanyi.suppliers.adapter import StockQuote
        from quanyi.suppliers.sync_apply import apply_quotes

        supplier = await session.get(Supplier, pulled.supplier_id)
        applied = await apply_quotes(session=session, supplier=supplier, requested=[CARD_PRODUCT],
                                     quotes=[StockQuote(CARD_PRODUCT, 9500, 50)],
                                     observed_at=row.last_synced_at - dt.timedelta(seconds=1))
        assert applied.stale_ignored == 1
    assert (await product_row(shop, CARD_PRODUCT)).stock == 7


async def test_one_failing_supplier_never_stops_the_others(shop, sim, supplier_sim):
    other = supplier_sim("quanyi", seed=2)
    await register(shop, sim, code="GOOD")
    await register(shop, other, code="DOWN")
    other.stop()
    dead = f"http://127.0.0.1:{free_port()}"
    assert (await shop.client.patch("/api/admin/suppliers/DOWN", headers=shop.admin,
                                    json={"base_url": dead})).status_code == 200
    results = {r.supplier_code: r for r in await sync_suppliers_once(shop.ctx)}
    assert results["GOOD"].ok and results["GOOD"].new_products == 4
    assert not results["DOWN"].ok and results["DOWN"].error
    down = (await shop.client.get("/api/admin/suppliers/DOWN", headers=shop.admin)).json()
    assert down["health"]["last_failure_at"] and down["sync"]["last_pull_error"] and not down["sync"]["pulling"]
    # Not due again until the interval has passed: a second round pulls nobody.
    assert await sync_suppliers_once(shop.ctx) == []


async def test_two_pullers_never_pull_one_supplier_at_once(shop, sim):
    await register(shop, sim)
    sim.set_latency(400)
    supplier_id = (await shop.client.get("/api/admin/suppliers/ACME", headers=shop.admin)).json()["id"]
    pulls = [sync_service.pull_supplier(db=shop.ctx.db, cipher=shop.ctx.cipher, http=shop.ctx.http,
                                        supplier_id=supplier_id) for _ in range(3)]
    outcomes = await asyncio.gather(*pulls, return_exceptions=True)
    assert sum(1 for o in outcomes if isinstance(o, sync_service.SyncInProgress)) == 2, outcomes
    assert sum(1 for o in outcomes if getattr(o, "ok", False)) == 1
    assert (await sync_state(shop)).claimed_until is None  # released after the pull


async def test_cli_sync_pulls_every_supplier_with_a_progress_bar(shop, sim, settings):
    sku = await _supplied_sku(shop, sim)
    sim.set_stock(CARD_PRODUCT, 0)
    result = await quanyi_cli(settings, "suppliers", "sync")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "syncing" in result.stdout and "ACME" in result.stdout
    assert (await product_row(shop, CARD_PRODUCT)).stock == 0
    assert (await _storefront(shop, sku))[0]["status"] == "sold_out"
    status = await quanyi_cli(settings, "suppliers", "status", "ACME")
    assert status.returncode == 0 and CARD_PRODUCT in status.stdout and "pull" in status.stdout
