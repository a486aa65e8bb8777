"""Helpers for routing tests: suppliers and mappings made directly (sealed credentials), the worker, records."""

from __future__ import annotations

import asyncio
import datetime as dt
from dataclasses import replace
from typing import Any

from pydantic import SecretStr
from sqlalchemy import func, select

from helpers import Shop
from quanyi.config import Settings
from quanyi.db import utcnow
from quanyi.suppliers.adapter import ProductKind, SupplierDialect
from quanyi.suppliers.credentials import seal_credentials
from quanyi.suppliers.fulfilment_models import FulfilmentJob, JobStatus, SupplierAttempt
from quanyi.suppliers.models import SkuSupplierMapping, Supplier, SupplierProduct
from quanyi.suppliers.routing import FulfilmentWorker
from quanyi.testpeers.suppliers import SupplierSimulator

TIMEOUT_MS, HANG_SECONDS = 500, 1.5  # the simulator always hangs longer than we wait
GRACE = 4.0  # "no such order" believed this long after a purchase call, in tests that race a slow supplier
ACCOUNT = "13800138000"


def worker_settings(settings: Settings, **overrides: object) -> dict[str, object]:
    """The shop's settings as plain JSON-able values, for a worker in another process (worker_process.py)."""
    values: dict[str, object] = {}
    for name, value in settings.model_dump().items():
        values[name] = value.get_secret_value() if isinstance(value, SecretStr) else value
    values["fulfilment_poll_seconds"] = 0.1
    values.update(overrides)
    return values


async def add_supplier(shop: Shop, sim: SupplierSimulator, *, code: str, sku: Any, product_code: str,
                       cost_cents: int | None = None, priority: int = 100, stock: int | None = None,
                       kind: ProductKind = ProductKind.CARD_KEY, balance_cents: int = 1_000_000,
                       timeout_ms: int = TIMEOUT_MS) -> Supplier:
    """A supplier at this simulator with one product mapped to `sku` (what sup-catalog's sync would store);
    the cost is the simulator's unless given (then the simulator is set to it too)."""
    if cost_cents is None:
        cost_cents = sim.products[product_code].cost_cents
    else:
        sim.set_cost(product_code, cost_cents)
    sealed = seal_credentials(shop.ctx.cipher, supplier_code=code, credentials=sim.credentials)
    async with shop.ctx.db.transaction() as session:
        supplier = Supplier(code=code, name=f"Supplier {code}", dialect=SupplierDialect(sim.dialect),
                            base_url=sim.base_url, credentials_key_id=sealed.key_id,
                            credentials_ciphertext=sealed.ciphertext, balance_cents=balance_cents,
                            timeout_ms=timeout_ms)
        session.add(supplier)
        await session.flush()
        product = SupplierProduct(supplier_id=supplier.id, product_code=product_code, name=product_code, kind=kind,
                                  cost_cents=cost_cents, stock=stock)
        session.add(product)
        await session.flush()
        session.add(SkuSupplierMapping(sku_id=sku.id, supplier_product_id=product.id, priority=priority))
    return supplier


async def card_order_paid(shop: Shop, sku: Any, quantity: int = 1) -> dict[str, Any]:
    order = await shop.create_order(sku.id, quantity=quantity)
    await shop.pay(order)
    return order


async def recharge_order_paid(shop: Shop, sku: Any, account: str = ACCOUNT) -> dict[str, Any]:
    order = await shop.create_order(sku.id, recharge_account=account)
    await shop.pay(order)
    return order


def worker(shop: Shop, owner: str = "test-worker", *, grace: float | None = None) -> FulfilmentWorker:
    """`grace`: seconds before a supplier's "no such order" is believed (else the settings', at least 3x its
    timeout); tests that race a slow supplier set it well above what a loaded machine may stall."""
    found = FulfilmentWorker(shop.ctx, owner=owner)
    if grace is not None:
        found.policy = replace(found.policy, not_found_grace=dt.timedelta(seconds=grace))
    return found


async def run_due(shop: Shop, *, later: float = 0.0, owner: str = "test-worker", grace: float | None = None) -> int:
    """One worker round, as if `later` seconds had passed (jobs scheduled for later become due)."""
    return await worker(shop, owner, grace=grace).run_once(now=utcnow() + dt.timedelta(seconds=later))


async def run_until_waiting(shop: Shop, *, at_most: float = 10.0, grace: float | None = None) -> None:
    """Worker rounds in real time: whenever an open job falls due within `at_most` seconds (an unclear purchase
    asked about again once the supplier's "no such order" can be believed), wait for it and run again."""
    deadline = utcnow() + dt.timedelta(seconds=at_most)
    while True:
        await run_due(shop, grace=grace)
        async with shop.ctx.db.read_session() as session:
            due = await session.scalar(select(func.min(FulfilmentJob.next_attempt_at))
                                       .where(FulfilmentJob.status == JobStatus.OPEN))
        if due is None or due > deadline:
            return
        await asyncio.sleep(max(0.0, (due - utcnow()).total_seconds()) + 0.05)


async def attempts(shop: Shop, order: dict[str, Any]) -> list[dict[str, Any]]:
    response = await shop.client.get(f"/api/admin/orders/{order['order_no']}/supplier-attempts", headers=shop.admin)
    assert response.status_code == 200, response.text
    return response.json()["attempts"]  # type: ignore[no-any-return]


async def job_of(shop: Shop, order: dict[str, Any]) -> FulfilmentJob:
    from quanyi.orders.models import Order

    async with shop.ctx.db.read_session() as session:
        order_id = await session.scalar(select(Order.id).where(Order.order_no == order["order_no"]))
        job = await session.scalar(select(FulfilmentJob).where(FulfilmentJob.order_id == order_id))
        assert job is not None
        return job


async def attempt_rows(shop: Shop) -> list[SupplierAttempt]:
    async with shop.ctx.db.read_session() as session:
        return list((await session.scalars(select(SupplierAttempt).order_by(SupplierAttempt.id))).all())


async def supplier_row(shop: Shop, supplier_id: int) -> Supplier:
    async with shop.ctx.db.read_session() as session:
        supplier = await session.get(Supplier, supplier_id, populate_existing=True)
        assert supplier is not None
        return supplier
