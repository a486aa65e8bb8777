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
