"""The demo's test peers include one supplier simulator per dialect, reachable with the credentials it lists."""

from __future__ import annotations

from quanyi.suppliers.adapter import SupplierDialect, SupplierEndpoint, build_adapter
from quanyi.testpeers.demo import SUPPLIER_PORTS, run_demo_peers
from quanyi.testpeers.runner import free_port


async def test_demo_peers_run_a_supplier_of_every_dialect(http):
    ports = {name: free_port() for name in ("alipay", "wechat", "stripe", *SUPPLIER_PORTS)}
    with run_demo_peers(shop_url="http://127.0.0.1:9", ports=ports, with_suppliers=True) as peers:
        assert set(peers.suppliers) == {d.value for d in SupplierDialect}
        for dialect, supplier in peers.suppliers.items():
            endpoint = SupplierEndpoint(f"demo-{dialect}", supplier["base_url"], supplier["credentials"])
            assert await build_adapter(SupplierDialect(dialect), endpoint, http).fetch_catalog()


async def test_control_calls_change_cost_and_trigger_a_push(supplier_sim, http, callback_sink):
    sim = supplier_sim("quanyi")
    callback_sink.answer(b'{"ok":true}')
    answer = await http.post(sim.base_url + "/_control/cost", json={"product_code": "GIFT-100", "cost_cents": 9800})
    assert answer.status_code == 200 and sim.products["GIFT-100"].cost_cents == 9800
    answer = await http.post(sim.base_url + "/_control/push-stock",
                             json={"product_codes": ["GIFT-100"], "url": callback_sink.url + "/push"})
    assert answer.json() == {"sent": [{"status_code": 200, "accepted": True}]}
    assert b'"cost_cents":9800' in callback_sink.received[0].body
    assert (await http.post(sim.base_url + "/_control/stock", json={"product_code": "NOPE", "stock": 1})
            ).status_code == 404


async def test_demo_shop_buys_from_its_simulated_suppliers_and_pauses_them_afterwards(shop):
    from sqlalchemy import select

    from quanyi.catalog.models import Sku
    from quanyi.demo import load_demo
    from quanyi.suppliers.models import SkuSupplierMapping, Supplier, SupplierStatus
    from quanyi.suppliers.routing import FulfilmentWorker
    from quanyi.testpeers.demo_suppliers import DEMO_MAPPINGS, configure_demo_suppliers, demo_supplier_code

    await load_demo(shop.ctx)
    ports = {name: free_port() for name in ("alipay", "wechat", "stripe", *SUPPLIER_PORTS)}
    with run_demo_peers(shop_url="http://127.0.0.1:9", ports=ports, with_suppliers=True) as peers:
        await configure_demo_suppliers(shop.ctx, peers.suppliers, enabled=True)
        await configure_demo_suppliers(shop.ctx, peers.suppliers, enabled=True)  # a restart changes nothing
        assert await shop.count(SkuSupplierMapping) == sum(len(v) for v in DEMO_MAPPINGS.values())
        async with shop.ctx.db.read_session() as session:
            suppliers = (await session.scalars(select(Supplier))).all()
            coffee = await session.scalar(select(Sku).where(Sku.code == "COFFEE-M"))
        assert {s.code for s in suppliers} == {demo_supplier_code(d) for d in peers.suppliers}
        assert all(s.balance_cents == 1_000_000 for s in suppliers)
        assert all("演示供应商" in s.name for s in suppliers)  # named as a Chinese shop's console lists them

        # The coffee voucher has no local keys: the storefront sells what suppliers report, and a paid
        # order is filled in real time by the cheapest one (the card platform, ¥14.00).
        assert coffee is not None and await shop.available(coffee.id) == 0
        listing = (await shop.client.get("/api/catalog/products/coffee-voucher")).json()
        assert listing["skus"][0]["stock"]["status"] == "in_stock"
        order = await shop.create_order(coffee.id)
        await shop.pay(order)
        assert await FulfilmentWorker(shop.ctx).drain() >= 1
        assert (await shop.get_order(order))["status"] == "delivered"
        assert len(await shop.reveal(order)) == 1
        async with shop.ctx.db.read_session() as session:
            card_platform = await session.scalar(
                select(Supplier).where(Supplier.code == demo_supplier_code("card_platform")))
        assert card_platform is not None and card_platform.balance_cents == 1_000_000 - 1400

        await configure_demo_suppliers(shop.ctx, peers.suppliers, enabled=False)
    async with shop.ctx.db.read_session() as session:
        statuses = set((await session.scalars(select(Supplier.status))).all())
    assert statuses == {SupplierStatus.PAUSED}
