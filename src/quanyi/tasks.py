"""Background loops run inside `quanyi serve` (every process runs them; they share work safely):
the reservation sweeper, sandbox notification retries and (unless turned off) the notification outbox worker."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from pathlib import Path

from quanyi.context import ShopContext
from quanyi.enterprises import campaigns as enterprise_campaigns
from quanyi.enterprises import purchases as enterprise_purchases
from quanyi.enterprises import top_up_payments as enterprise_top_up_payments
from quanyi.inventory import import_jobs
from quanyi.leased_worker import worker_owner
from quanyi.members import service as members_service
from quanyi.notifications.worker import OutboxWorker
from quanyi.orders import service as orders_service
from quanyi.payments import configuration as gateway_configuration
from quanyi.payments import reconciliation
from quanyi.payments.sandbox import server as sandbox_server
from quanyi.refunds import service as refunds_service
from quanyi.refunds.automatic import refund_undeliverable_balance_orders
from quanyi.suppliers import sync as supplier_sync
from quanyi.suppliers.routing import FulfilmentWorker

__all__ = ["run_background_loops", "sweep_once", "expire_points_once", "refresh_gateways", "query_payments_once",
           "execute_refunds_once", "sync_suppliers_once", "resume_imports_once"]

logger = logging.getLogger(__name__)


async def sweep_once(ctx: ShopContext) -> int:
    """Expire overdue reservations (in batches until none are left) and drop stale rate counters."""
    expired = 0
    while True:
        async with ctx.db.transaction() as session:
            count = await orders_service.expire_due_orders(session=session)
        expired += count
        if count == 0:
            break
    await ctx.limiter.purge(older_than_seconds=2 * max(ctx.settings.lookup_window_seconds,
                                                       ctx.settings.member_login_window_seconds))
    await ctx.nonces.purge()  # open API nonces older than the replay window
    async with ctx.db.transaction() as session:
        await members_service.purge_expired(session=session)  # old sign-in codes and ended member sessions
    if expired:
        ctx.sold_out.forget()  # released keys are for sale again
        logger.info("released the stock of %d expired orders", expired)
    return expired


async def refresh_gateways(ctx: ShopContext) -> None:
    """Take up gateway configuration changes made through any server process."""
    async with ctx.db.read_session() as session:
        await gateway_configuration.refresh_registry(session=session, cipher=ctx.cipher, http=ctx.http,
                                                     registry=ctx.gateways,
                                                     public_base_url=ctx.settings.public_base_url)


async def query_payments_once(ctx: ShopContext) -> reconciliation.QueryRound:
    """Active query (主动查单) of unconfirmed payments that are due."""
    window = dt.timedelta(hours=ctx.settings.payment_query_window_hours)
    return await reconciliation.query_open_payments(db=ctx.db, gateways=ctx.gateways, window=window)


async def execute_refunds_once(ctx: ShopContext) -> int:
    """Refund undeliverable balance-paid orders to their balance, send due refunds to their gateways (retries
    with backoff) and poll processing ones."""
    automatic = await refund_undeliverable_balance_orders(db=ctx.db, gateways=ctx.gateways)
    return automatic + await refunds_service.execute_due_refunds(db=ctx.db, gateways=ctx.gateways)


async def sync_suppliers_once(ctx: ShopContext) -> list:  # type: ignore[type-arg]
    """Pull the suppliers that are due (stock and cost; whole catalogs when due). Every process runs this:
    a claim per supplier makes sure only one of them pulls it."""
    return await supplier_sync.sync_due_suppliers(
        db=ctx.db, cipher=ctx.cipher, http=ctx.http, interval_seconds=ctx.settings.supplier_sync_interval_seconds,
        catalog_interval_seconds=ctx.settings.supplier_catalog_interval_seconds)


async def resume_imports_once(ctx: ShopContext) -> int:
    """Work the import jobs no process holds (queued, or left by a process that died); drop orphaned uploads."""
    await import_jobs.remove_orphan_spools(db=ctx.db, spool_dir=Path(ctx.settings.import_spool_dir))
    return await import_jobs.resume_import_jobs(
        db=ctx.db, cipher=ctx.cipher, spool_dir=Path(ctx.settings.import_spool_dir), owner=worker_owner(),
        lease_seconds=ctx.settings.import_lease_seconds, chunk_lines=ctx.settings.import_chunk_lines)


async def expire_points_once(ctx: ShopContext) -> int:
    """Points whose time is over (积分过期) are expired and posted to the ledger (any use of a member's points
    expires theirs too): the books stop counting them as owed."""
    from quanyi.loyalty import points as points_service

    async with ctx.db.transaction() as session:
        return await points_service.expire_all_due(session=session)


async def _every(seconds: float, name: str, job) -> None:  # type: ignore[no-untyped-def]
    while True:
        try:
            await job()
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("background job %s failed; will retry", name)
        await asyncio.sleep(seconds)


async def run_background_loops(ctx: ShopContext) -> None:
    secret = ctx.settings.sandbox_secret.get_secret_value()
    loops = [_every(ctx.settings.sweep_interval_seconds, "reservation sweeper", lambda: sweep_once(ctx)),
             _every(30.0, "gateway configuration", lambda: refresh_gateways(ctx))]
    if ctx.settings.sandbox_enabled:
        loops.append(_every(2.0, "sandbox notifications",
                            lambda: sandbox_server.retry_due_notifications(db=ctx.db, client=ctx.http, secret=secret)))
    if ctx.settings.notification_worker_in_serve:
        loops.append(OutboxWorker(ctx).run_forever())
    loops.append(_every(ctx.settings.payment_query_interval_seconds, "payment queries",
                        lambda: query_payments_once(ctx)))
    loops.append(_every(ctx.settings.refund_retry_interval_seconds, "refunds", lambda: execute_refunds_once(ctx)))
    # Ticks often; each supplier is pulled once per supplier_sync_interval_seconds across all processes.
    loops.append(_every(min(5.0, ctx.settings.supplier_sync_interval_seconds), "supplier sync",
                        lambda: sync_suppliers_once(ctx)))

    purchase_owner = worker_owner()  # enterprise bulk purchases (批量采购): resumable, leased jobs
    loops.append(_every(1.0, "enterprise purchases",
                        lambda: enterprise_purchases.run_due_purchases(db=ctx.db, owner=purchase_owner)))
    # Benefit campaigns whose end has come: their unclaimed budget goes back to the enterprise (once).
    loops.append(_every(30.0, "benefit campaigns", lambda: enterprise_campaigns.end_due_campaigns(db=ctx.db)))
    # Online top-ups still unpaid: asked about at their gateway once a minute for two hours (a lost notification
    # still credits them).
    loops.append(_every(60.0, "enterprise top-up queries",
                        lambda: enterprise_top_up_payments.query_unpaid_once(db=ctx.db, registry=ctx.gateways)))
    if ctx.ledger_worker is not None:  # payments' deferred postings, in batches (ledger.deferred)
        loops.append(ctx.ledger_worker.run_forever())
    if ctx.settings.fulfilment_worker_in_serve:  # supplier purchases, failover, recharge polling
        loops.append(FulfilmentWorker(ctx).run_forever())
    # Streamed imports nobody works (queued, or their process died mid-way): resumed after the last chunk.
    loops.append(_every(ctx.settings.import_poll_seconds, "import jobs", lambda: resume_imports_once(ctx)))
    loops.append(_every(300.0, "points expiry", lambda: expire_points_once(ctx)))
    await asyncio.gather(*loops)
