"""Helpers for routing tests: suppliers and mappings made directly (sealed credentials), the worker, records."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from typing import Any

from pydantic import SecretStr
from sqlalchemy import select

from helpers import Shop
from quanyi.config import Settings
from quanyi.db import utcnow
from quanyi.suppliers.adapter import ProductKind, SupplierDialect
from quanyi.suppliers.credentials import seal_credentials
from quanyi.suppliers.fulfilment_models import FulfilmentJob, SupplierAttempt
from quanyi.suppliers.models import SkuSupplierMapping, Supplier, SupplierProduct
from quanyi.suppliers.routing import FulfilmentWorker
from quanyi.testpeers.suppliers import SupplierSimulator

# Suppliers a test makes hang are given up on after TIMEOUT_MS; the others get ANSWER_TIMEOUT_MS, so that a
# stall of a loaded machine (CI: 2 shared cores, 20x slower for a moment) never turns an answer into a timeout.
TIMEOUT_MS, ANSWER_TIMEOUT_MS = 500, 30_000
HANG_SECONDS = 60.0  # a hang outlasts our timeout and any stall; stopping the simulator ends it
# "No such order" is believed this long after a purchase call, in tests that race a slow supplier: longer than
# any stall, so it is never believed early; tests make it pass with age_attempts() instead of waiting for it.
GRACE = 60.0
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
                       timeout_ms: int = ANSWER_TIMEOUT_MS) -> Supplier:
    """A supplier at this simulator with one product mapped to `sku` (what sup-catalog's sync would store);
    the cost is the simulator's unless given (then the simulator is set to it too). Pass timeout_ms=TIMEOUT_MS
    for a supplier the test makes hang or hold its orders."""
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


async def run_due(shop: Shop, *, later: float = 0.0, at: dt.datetime | None = None, owner: str = "test-worker",
                  grace: float | None = None) -> int:
    """One worker round, as if `later` seconds had passed, or at `at` (jobs scheduled for then become due)."""
    return await worker(shop, owner, grace=grace).run_once(now=at or utcnow() + dt.timedelta(seconds=later))


async def age_attempts(shop: Shop, seconds: float) -> None:
    """As if `seconds` had passed since every purchase call so far was sent (the grace before a supplier's
    "no such order" is believed counts from there); pair it with run_due(later=seconds)."""
    async with shop.ctx.db.transaction() as session:
        for attempt in (await session.scalars(select(SupplierAttempt))).all():
            attempt.created_at -= dt.timedelta(seconds=seconds)


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
