"""Suppliers as the rest of the shop sees them: which SKUs suppliers can fill, and how many."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import httpx
from sqlalchemy import and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from quanyi.db import utcnow
from quanyi.inventory.crypto import CardKeyCipher, EncryptedCode
from quanyi.suppliers.adapter import ProductKind, SupplierAdapter, SupplierEndpoint, build_adapter
from quanyi.suppliers.attempt_state import AttemptState
from quanyi.suppliers.credentials import open_credentials
from quanyi.suppliers.fulfilment_models import FulfilmentJob, JobStatus, SupplierAttempt
from quanyi.suppliers.models import SkuSupplierMapping, Supplier, SupplierProduct, SupplierStatus

if TYPE_CHECKING:
    from quanyi.orders.models import Order

__all__ = ["supplier_stock_counts", "promised_supplier_units", "free_supplier_units",
           "UNCOUNTED", "endpoint_for", "adapter_for", "can_fulfil", "enqueue_fulfilment", "resume_fulfilment",
           "fulfilment_progress"]

# Stock a supplier does not count (direct recharge): as good as unlimited for checkout.
UNCOUNTED = 1_000_000


async def supplier_stock_counts(*, session: AsyncSession, sku_ids: Sequence[int]) -> dict[int, int]:
    """Units of each SKU that active suppliers report they can sell us right now (last sync).
    SKUs without an active mapping are absent. Uncounted stock counts as UNCOUNTED."""
    if not sku_ids:
        return {}
    rows = await session.execute(
        select(SkuSupplierMapping.sku_id, SupplierProduct.stock)
        .join(SupplierProduct, SupplierProduct.id == SkuSupplierMapping.supplier_product_id)
        .join(Supplier, Supplier.id == SupplierProduct.supplier_id)
        .where(
            SkuSupplierMapping.sku_id.in_(sku_ids),
            SkuSupplierMapping.enabled.is_(True),
            SupplierProduct.available.is_(True),
            Supplier.status == SupplierStatus.ACTIVE,
        )
    )
    counts: dict[int, int] = {}
    for sku_id, stock in rows.all():
        counts[sku_id] = min(UNCOUNTED, counts.get(sku_id, 0) + (UNCOUNTED if stock is None else stock))
    return counts


async def promised_supplier_units(*, session: AsyncSession, sku_ids: Sequence[int], now: dt.datetime,
                                  lock: bool = False) -> dict[int, int]:
    """Units of each SKU that orders already count on suppliers for: placed and not yet expired, or paid and
    still being bought, with no keys of our own reserved for them. SKUs with none are absent. `lock` (checkout)
    first locks the SKUs' supplier mappings, so checkouts counting on the same supplier stock take turns
    (PostgreSQL; SQLite has one writer anyway)."""
    from quanyi.inventory.models import CardKey, CardKeyStatus
    from quanyi.orders.models import Order
    from quanyi.orders.state import OrderStatus

    if not sku_ids:
        return {}
    if lock:
        await session.execute(select(SkuSupplierMapping.id).where(SkuSupplierMapping.sku_id.in_(sku_ids))
                              .order_by(SkuSupplierMapping.id).with_for_update())
    holds_keys = select(CardKey.id).where(CardKey.order_id == Order.id,
                                          CardKey.status == CardKeyStatus.RESERVED).exists()
    being_bought = select(FulfilmentJob.id).where(FulfilmentJob.order_id == Order.id,
                                                  FulfilmentJob.status == JobStatus.OPEN).exists()
    placed = and_(Order.status == OrderStatus.PENDING_PAYMENT, Order.expires_at > now, ~holds_keys)
    paid = and_(Order.status == OrderStatus.PAID, being_bought)
    rows = await session.execute(select(Order.sku_id, func.sum(Order.quantity))
                                 .where(Order.sku_id.in_(sku_ids), or_(placed, paid)).group_by(Order.sku_id))
    return {int(sku_id): int(total) for sku_id, total in rows.all() if total}


def free_supplier_units(reported: int, promised: int) -> int:
    """What suppliers can still sell of a SKU: counted stock less what orders count on; uncounted is endless."""
    return reported if reported >= UNCOUNTED else max(0, reported - promised)


def endpoint_for(supplier: Supplier, cipher: CardKeyCipher) -> SupplierEndpoint:
    """How to reach this supplier, credentials decrypted (keep the result out of logs)."""
    credentials = open_credentials(
        cipher, supplier_code=supplier.code,
        sealed=EncryptedCode(key_id=supplier.credentials_key_id, ciphertext=supplier.credentials_ciphertext),
    )
    return SupplierEndpoint(supplier_code=supplier.code, base_url=supplier.base_url, credentials=credentials,
                            timeout_seconds=supplier.timeout_ms / 1000)


def adapter_for(supplier: Supplier, *, cipher: CardKeyCipher, http: httpx.AsyncClient) -> SupplierAdapter:
    """The adapter speaking this supplier's dialect to its endpoint."""
    return build_adapter(supplier.dialect, endpoint_for(supplier, cipher), http)


# ---------------------------------------------------------------- fulfilment by suppliers (routing.py does the work)

async def can_fulfil(*, session: AsyncSession, sku_id: int) -> bool:
    """Does an enabled mapping to an active supplier exist for this SKU (whatever its last known stock)?"""
    found = await session.scalar(
        select(SkuSupplierMapping.id)
        .join(SupplierProduct, SupplierProduct.id == SkuSupplierMapping.supplier_product_id)
        .join(Supplier, Supplier.id == SupplierProduct.supplier_id)
        .where(SkuSupplierMapping.sku_id == sku_id, SkuSupplierMapping.enabled.is_(True),
               Supplier.status == SupplierStatus.ACTIVE)
        .limit(1))
    return found is not None


async def enqueue_fulfilment(*, session: AsyncSession, order: Order, now: dt.datetime | None = None) -> None:
    """Write the job that makes suppliers fill this paid order, in the caller's (payment) transaction.
    One job per order: a second call finds it and changes nothing."""
    now = now or utcnow()
    if await session.scalar(select(FulfilmentJob.id).where(FulfilmentJob.order_id == order.id)) is not None:
        return
    kind = ProductKind.DIRECT_RECHARGE if order.delivery_type == ProductKind.DIRECT_RECHARGE.value \
        else ProductKind.CARD_KEY
    session.add(FulfilmentJob(order_id=order.id, kind=kind, status=JobStatus.OPEN, next_attempt_at=now,
                              created_at=now, updated_at=now))
    await session.flush()


async def resume_fulfilment(*, session: AsyncSession, order: Order, reason: str,
                            now: dt.datetime | None = None) -> bool:
    """The paid order's job was abandoned because all its money was on its way back, and that refund was
    withdrawn: the job is open again and the worker delivers (from what it holds or bought, or buys anew).
    Returns True if a job was reopened. The caller holds the order row lock and has checked the order is paid and
    no longer covered by refunds (the job itself checks again, under the same lock, before it buys anything)."""
    now = now or utcnow()
    job = await session.scalar(select(FulfilmentJob).where(FulfilmentJob.order_id == order.id).with_for_update()
                               .execution_options(populate_existing=True))
    if job is None or job.status is not JobStatus.DONE or job.outcome != "abandoned":
        return False  # no job (manual delivery), or still open: it goes on by itself
    job.status, job.outcome, job.finished_at = JobStatus.OPEN, None, None
    job.next_attempt_at, job.updated_at, job.locked_until, job.lease_owner = now, now, None, None
    job.last_error = reason[:500]
    return True


_STAGE_BY_ATTEMPT = {
    AttemptState.SENDING: "purchasing", AttemptState.UNKNOWN: "purchasing", AttemptState.SUBMITTED: "submitted",
    AttemptState.PROCESSING: "processing", AttemptState.SUCCEEDED: "purchasing", AttemptState.FAILED: "purchasing",
}


async def fulfilment_progress(*, session: AsyncSession, order_id: int) -> dict[str, Any] | None:
    """What a buyer may see of the suppliers' work on an order (never which supplier): None if none."""
    job = await session.scalar(select(FulfilmentJob).where(FulfilmentJob.order_id == order_id))
    if job is None:
        return None
    attempts = (await session.scalars(
        select(SupplierAttempt).where(SupplierAttempt.job_id == job.id).order_by(SupplierAttempt.id))).all()
    latest = attempts[-1] if attempts else None
    if job.status is JobStatus.DONE:
        stage = "succeeded" if job.outcome == "delivered" else "failed"
    else:
        stage = _STAGE_BY_ATTEMPT[latest.state] if latest is not None else "queued"
    updated = max([job.updated_at] + [a.updated_at for a in attempts])
    return {"kind": job.kind.value, "stage": stage, "attempts": len(attempts), "updated_at": updated}
