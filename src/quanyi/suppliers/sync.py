"""Stock and price sync with suppliers (库存价格同步): periodic pull here, push in `push.py`.

A pull claims the supplier first (a lease in `suppliers_sync_state`, taken by one conditional UPDATE), so
several shop processes never pull the same supplier at once; then it asks the supplier with no database
transaction open, and writes the answer in one short transaction together with the supplier's health and
whatever the price policy decides. One supplier's failure is recorded on it and never stops the others.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import secrets
from collections.abc import Callable, Sequence

import httpx
from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from quanyi.db import Database, utcnow
from quanyi.errors import Conflict, DomainError
from quanyi.inventory.crypto import CardKeyCipher
from quanyi.suppliers import service as suppliers_service
from quanyi.suppliers.adapter import SupplierError
from quanyi.suppliers.credentials import CredentialsUnreadable
from quanyi.suppliers.models import SkuSupplierMapping, Supplier, SupplierProduct, SupplierStatus
from quanyi.suppliers.pricing import apply_price_policies
from quanyi.suppliers.records import get_supplier, scrub_secrets
from quanyi.suppliers.schemas import PriceChangeRead, SyncResultRead
from quanyi.suppliers.sync_apply import Applied, apply_catalog, apply_quotes, mapped_sku_ids
from quanyi.suppliers.sync_models import SupplierSyncState

__all__ = ["SyncInProgress", "SupplierDisabled", "SyncFailed",
           "pull_supplier", "sync_due_suppliers", "ensure_sync_state",
           "result_from"]

logger = logging.getLogger(__name__)


class SyncInProgress(Conflict):
    code = "sync_in_progress"


class SupplierDisabled(Conflict):
    code = "supplier_disabled"


class SyncFailed(DomainError):
    """The supplier did not answer the sync (recorded on its health); answered 502."""

    code = "supplier_sync_failed"


async def ensure_sync_state(session: AsyncSession, supplier_id: int) -> SupplierSyncState:
    state = await session.get(SupplierSyncState, supplier_id)
    if state is not None:
        return state
    try:
        async with session.begin_nested():  # another process may create it at the same moment
            state = SupplierSyncState(supplier_id=supplier_id)
            session.add(state)
    except IntegrityError:
        state = await session.get(SupplierSyncState, supplier_id, populate_existing=True)
        assert state is not None
    return state


def _lease(supplier: Supplier) -> dt.timedelta:
    # Outlasts the slowest answer (the adapter times out before that); a crashed puller's claim expires.
    return dt.timedelta(seconds=supplier.timeout_ms / 1000 * 3 + 30)


async def _claim(session: AsyncSession, supplier: Supplier, now: dt.datetime,
                 due_before: dt.datetime | None) -> str | None:
    await ensure_sync_state(session, supplier.id)
    token = secrets.token_hex(8)
    conditions = [SupplierSyncState.supplier_id == supplier.id,
                  or_(SupplierSyncState.claimed_until.is_(None), SupplierSyncState.claimed_until < now)]
    if due_before is not None:  # the loop: someone may just have pulled it
        conditions.append(or_(SupplierSyncState.last_pull_started_at.is_(None),
                              SupplierSyncState.last_pull_started_at <= due_before))
    result = await session.execute(update(SupplierSyncState).where(*conditions).values(
        claimed_until=now + _lease(supplier), claim_token=token, last_pull_started_at=now))
    return token if result.rowcount == 1 else None  # type: ignore[attr-defined]


async def _release(session: AsyncSession, supplier_id: int, token: str, *, ok: bool | None, error: str | None,
                   catalog: bool, now: dt.datetime) -> None:
    values: dict[str, object] = {"claimed_until": None, "claim_token": None}
    if ok:
        values.update(last_pull_ok_at=now, last_pull_error=None)
        if catalog:
            values["last_catalog_at"] = now
    elif ok is False:
        values.update(last_pull_failed_at=now, last_pull_error=error)
    await session.execute(update(SupplierSyncState).where(
        SupplierSyncState.supplier_id == supplier_id, SupplierSyncState.claim_token == token).values(**values))


def _record_health(supplier: Supplier, *, ok: bool, error: str | None, now: dt.datetime) -> None:
    # Sync only notes whether the supplier answered; the failure count and circuit belong to routing,
    # which judges purchases.
    if ok:
        supplier.last_success_at = now
    else:
        supplier.last_failure_at = now
        supplier.last_error = error


async def _mapped_codes(session: AsyncSession, supplier: Supplier) -> list[str]:
    return sorted(set((await session.scalars(
        select(SupplierProduct.product_code)
        .join(SkuSupplierMapping, SkuSupplierMapping.supplier_product_id == SupplierProduct.id)
        .where(SupplierProduct.supplier_id == supplier.id))).all()))


def result_from(supplier: Supplier, mode: str, applied: Applied, changes: Sequence[object]) -> SyncResultRead:
    return SyncResultRead(
        supplier_code=supplier.code, ok=True, mode=mode, products_seen=applied.products_seen,
        new_products=applied.new_products, updated=applied.updated, vanished=applied.vanished,
        stale_ignored=applied.stale_ignored, unknown_products=applied.unknown_products,
        price_changes=[PriceChangeRead.model_validate(c) for c in changes])


async def pull_supplier(*, db: Database, cipher: CardKeyCipher, http: httpx.AsyncClient, supplier_id: int,
                        full: bool = True, due_before: dt.datetime | None = None) -> SyncResultRead:
    """Pull one supplier now: its whole catalog (`full`) or quotes for its mapped products. Raises
    SyncInProgress if another process is pulling it; a supplier failure is recorded and returned."""
    now = utcnow()
    async with db.transaction() as session:
        supplier = await get_supplier(session=session, supplier_id=supplier_id)
        if supplier.status is SupplierStatus.DISABLED:
            raise SupplierDisabled(f"supplier {supplier.code} is disabled; enable it before syncing")
        token = await _claim(session, supplier, now, due_before)
        if token is None:
            raise SyncInProgress(f"supplier {supplier.code} is being synced right now")
        state = await session.get(SupplierSyncState, supplier.id)
        full = full or state is None or state.last_catalog_at is None
        codes = [] if full else await _mapped_codes(session, supplier)
    mode = "catalog" if full else "quotes"
    observed_at = utcnow()  # anything pushed after we ask is newer than this answer
    try:
        try:
            adapter = suppliers_service.adapter_for(supplier, cipher=cipher, http=http)
            if full:
                items = await adapter.fetch_catalog()
            else:
                quotes = await adapter.fetch_quotes(codes) if codes else []
        except (SupplierError, CredentialsUnreadable, httpx.HTTPError) as exc:
            message = scrub_secrets(f"{type(exc).__name__}: {getattr(exc, 'message', None) or exc}", supplier,
                                    cipher)
            async with db.transaction() as session:
                fresh = await get_supplier(session=session, supplier_id=supplier_id)
                _record_health(fresh, ok=False, error=message, now=utcnow())
                await _release(session, supplier_id, token, ok=False, error=message, catalog=full, now=utcnow())
            logger.warning("supplier %s: %s sync failed: %s", supplier.code, mode, message)
            return SyncResultRead(supplier_code=supplier.code, ok=False, mode=mode, error=message)
        async with db.transaction() as session:
            fresh = await get_supplier(session=session, supplier_id=supplier_id)
            if full:
                applied = await apply_catalog(session=session, supplier=fresh, items=items, observed_at=observed_at)
            else:
                applied = await apply_quotes(session=session, supplier=fresh, requested=codes, quotes=quotes,
                                             observed_at=observed_at)
            changes = await apply_price_policies(
                session=session, sku_ids=await mapped_sku_ids(session=session,
                                                              product_ids=sorted(applied.changed_product_ids)))
            finished = utcnow()
            _record_health(fresh, ok=True, error=None, now=finished)
            await _release(session, supplier_id, token, ok=True, error=None, catalog=full, now=finished)
            return result_from(fresh, mode, applied, changes)
    except BaseException:
        # Unexpected: give the claim back so the next round can try again, then let it propagate.
        try:
            async with db.transaction() as session:
                await _release(session, supplier_id, token, ok=None, error=None, catalog=False, now=utcnow())
        except Exception:
            logger.exception("could not release the sync claim of supplier %s", supplier.code)
        raise


async def sync_due_suppliers(*, db: Database, cipher: CardKeyCipher, http: httpx.AsyncClient,
                             interval_seconds: float, catalog_interval_seconds: float, concurrency: int = 4,
                             on_done: Callable[[SyncResultRead], None] | None = None) -> list[SyncResultRead]:
    """The background round: pull every active or paused supplier whose last pull is older than the
    interval (quotes; the whole catalog when that is due). Returns what was pulled by this process."""
    now = utcnow()
    due_before = now - dt.timedelta(seconds=interval_seconds * 0.9)  # tolerate timer jitter
    catalog_due = now - dt.timedelta(seconds=catalog_interval_seconds)
    async with db.read_session() as session:
        rows = (await session.execute(
            select(Supplier.id, Supplier.code, SupplierSyncState.last_pull_started_at,
                   SupplierSyncState.last_catalog_at, SupplierSyncState.claimed_until)
            .outerjoin(SupplierSyncState, SupplierSyncState.supplier_id == Supplier.id)
            .where(Supplier.status.in_([SupplierStatus.ACTIVE, SupplierStatus.PAUSED]))
            .order_by(Supplier.id))).all()
    due = [(sid, code, last_catalog is None or last_catalog <= catalog_due)
           for sid, code, started, last_catalog, claimed in rows
           if (claimed is None or claimed < now) and (started is None or started <= due_before)]
    gate = asyncio.Semaphore(concurrency)

    async def one(supplier_id: int, code: str, full: bool) -> SyncResultRead | None:
        async with gate:
            try:
                result = await pull_supplier(db=db, cipher=cipher, http=http, supplier_id=supplier_id, full=full,
                                             due_before=due_before)
            except (SyncInProgress, SupplierDisabled):
                return None  # another process has it, or it was disabled meanwhile
            except Exception:
                logger.exception("supplier %s: sync crashed; the other suppliers go on", code)
                return None
        if on_done is not None:
            on_done(result)
        return result

    results = await asyncio.gather(*(one(*item) for item in due))
    return [r for r in results if r is not None]
