"""TEST PEERS for the demo: what the three supplier simulators sell, and the demo shop's supplier records,
prepaid balances and SKU mappings pointed at them, so a visitor sees real-time supplier purchases
(the coffee voucher has no local stock), failover and direct recharge (幻境 Online 账号直充) at work.

Like the payment simulators, only for a shop whose sandbox is on; the suppliers are paused again when
the peers stop (a paused supplier is never bought from).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from quanyi.catalog.models import Sku
from quanyi.context import ShopContext
from quanyi.ledger import service as ledger_service
from quanyi.suppliers import mapping as supplier_mapping
from quanyi.suppliers import records as supplier_records
from quanyi.suppliers import sync as supplier_sync
from quanyi.suppliers.adapter import SupplierDialect
from quanyi.suppliers.models import Supplier, SupplierStatus
from quanyi.suppliers.schemas import MappingCreate, SupplierCreate, SupplierUpdate
from quanyi.testpeers.suppliers.records import SimProduct

__all__ = ["DEMO_SUPPLIER_PRODUCTS", "DEMO_MAPPINGS", "configure_demo_suppliers", "demo_supplier_code"]

_COFFEE = ("COFFEE-M", "中杯饮品兑换券", "card_key", 3000)
_GIFT = ("SHOP-GC-100", "优选商城购物卡 100 元", "card_key", 10000)
_MIRAGE = ("MIRAGE-DIRECT-1000", "幻境 Online 1000 点券直充", "direct_recharge", 10000)

# dialect -> products it sells (code, name, kind, face value, cost, stock); codes match the demo SKUs.
DEMO_SUPPLIER_PRODUCTS: dict[str, list[SimProduct]] = {
    "card_platform": [SimProduct(*_COFFEE, cost_cents=1400, stock=50), SimProduct(*_GIFT, cost_cents=9600, stock=100)],
    "quanyi": [SimProduct(*_COFFEE, cost_cents=1500, stock=200), SimProduct(*_GIFT, cost_cents=9500, stock=100),
               SimProduct(*_MIRAGE, cost_cents=9100)],
    "async_recharge": [SimProduct(*_MIRAGE, cost_cents=9000)],
}
# demo SKU -> (dialect, supplier product); cheapest usable first at purchase time, whatever the order here.
DEMO_MAPPINGS: dict[str, list[tuple[str, str]]] = {
    "COFFEE-M": [("card_platform", "COFFEE-M"), ("quanyi", "COFFEE-M")],
    "SHOP-GC-100": [("quanyi", "SHOP-GC-100"), ("card_platform", "SHOP-GC-100")],
    "MIRAGE-DIRECT-1000": [("async_recharge", "MIRAGE-DIRECT-1000"), ("quanyi", "MIRAGE-DIRECT-1000")],
}
_DEMO_PREPAID_CENTS = 1_000_000  # ¥10,000 paid in advance to each demo supplier
# What the console lists them as: a Chinese shop's own names for its (simulated) suppliers, by API dialect.
_DEMO_SUPPLIER_NAMES = {"quanyi": "演示供应商 · 星云数卡（quanyi 协议，模拟）",
                        "card_platform": "演示供应商 · 卡密平台（模拟）",
                        "async_recharge": "演示供应商 · 异步直充（模拟）"}


def demo_supplier_code(dialect: str) -> str:
    return "DEMO-" + dialect.upper().replace("_", "-")


async def configure_demo_suppliers(ctx: ShopContext, suppliers: dict[str, dict[str, Any]], *,
                                   enabled: bool) -> None:
    """Register (or update, or pause) one supplier per running simulator, top up its prepaid balance once,
    pull its catalog and map the demo SKUs to its products."""
    for dialect, peer in suppliers.items():
        code = demo_supplier_code(dialect)
        async with ctx.db.transaction() as session:
            existing = await session.scalar(select(Supplier).where(Supplier.code == code))
            if existing is None and not enabled:
                continue
            if existing is None:
                supplier = await supplier_records.create_supplier(
                    session=session, cipher=ctx.cipher, http=ctx.http, data=SupplierCreate(
                        code=code, name=_DEMO_SUPPLIER_NAMES.get(dialect, f"演示供应商 · {dialect}（模拟）"),
                        dialect=SupplierDialect(dialect),
                        base_url=peer["base_url"], credentials=peer["credentials"], timeout_ms=3000))
                await ledger_service.top_up_supplier(
                    session=session, supplier_id=supplier.id, amount_cents=_DEMO_PREPAID_CENTS,
                    note="演示：预付货款", actor="test-peers", reference=f"demo-topup-{code}")
            else:
                update = (SupplierUpdate(base_url=peer["base_url"], credentials=peer["credentials"],
                                         status=SupplierStatus.ACTIVE)
                          if enabled else SupplierUpdate(status=SupplierStatus.PAUSED))
                supplier = await supplier_records.update_supplier(
                    session=session, cipher=ctx.cipher, http=ctx.http, code=code, data=update)
            supplier_id = supplier.id
        if enabled:
            await supplier_sync.pull_supplier(db=ctx.db, cipher=ctx.cipher, http=ctx.http, supplier_id=supplier_id)
    if enabled:
        await _map_demo_skus(ctx, set(suppliers))


async def _map_demo_skus(ctx: ShopContext, dialects: set[str]) -> None:
    async with ctx.db.transaction() as session:
        for sku_code, sources in DEMO_MAPPINGS.items():
            sku_id = await session.scalar(select(Sku.id).where(Sku.code == sku_code))
            if sku_id is None:
                continue  # the demo catalog is not loaded
            for priority, (dialect, product_code) in enumerate(sources, start=1):
                if dialect not in dialects:
                    continue
                code = demo_supplier_code(dialect)
                try:
                    await supplier_mapping.find_mapping_id(session=session, sku_id=sku_id, supplier_code=code,
                                                           product_code=product_code)
                    continue  # mapped already
                except supplier_mapping.MappingNotFound:
                    pass
                except supplier_mapping.SupplierProductNotFound:
                    continue  # its catalog could not be pulled
                await supplier_mapping.create_mapping(session=session, sku_id=sku_id, data=MappingCreate(
                    supplier_code=code, product_code=product_code, priority=priority * 10))
