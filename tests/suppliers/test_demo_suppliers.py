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
