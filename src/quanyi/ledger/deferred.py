"""Deferred postings (延迟记账): a confirmed payment's postings written by the ledger worker, in batches.

The payment notification is the flash sale's busiest write. It used to write both of the order's postings
(payment received; delivered, with profit shares and cost of goods) itself, a dozen statements inside the
order's lock. Now it writes one `DeferredPosting` row in its own transaction instead (so a committed payment
always has either its postings or that row: nothing paid is lost if the process dies right after), and
the worker turns many rows into postings with a handful of statements, deleting them in the same transaction.
The row is the payment's one durable event: for a delivered order the worker also records, in that transaction,
what follows delivery off its hot path (the buyer's delivery message and the merchant's alert in the outbox,
loyalty points), so a notification's transaction does only what delivery itself needs.

Who runs it: the `LedgerWorker` of each `quanyi serve` and `quanyi worker` process (rows are taken with
SKIP LOCKED, so any number share the work). A process without one (tests, the CLI) posts right after the
payment's commit instead. Anything that reads or extends an order's postings settles that order's rows
first (`order_events.settle_order`, under the order lock), and the ledger's reports settle everything.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging

from sqlalchemy import delete, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from quanyi.db import Database, after_commit, utcnow
from quanyi.ledger.models import DeferredPosting
from quanyi.ledger.order_events import delivered_draft, delivery_facts, payment_received_draft, refund_due_draft
from quanyi.ledger.postings import Draft, existing_references, post_many
from quanyi.loyalty import service as loyalty_service
from quanyi.notifications import service as notifications_service
from quanyi.orders.models import Order
from quanyi.orders.state import OrderStatus
from quanyi.payments.models import Payment

__all__ = ["defer_payment_postings", "deferred_row_written", "post_deferred", "post_all_deferred", "LedgerWorker",
           "install_ledger_worker"]

logger = logging.getLogger(__name__)
_WORKER = "quanyi.ledger.worker"
BATCH = 500


async def defer_payment_postings(*, session: AsyncSession, order: Order, payment: Payment,
                                 now: dt.datetime | None = None) -> None:
    """In the payment's transaction: `payment` was applied to `order` (a payable order: the buyer's credit),
    which is now in its new status. The postings follow from this row (see the module docstring)."""
    await session.execute(insert(DeferredPosting).values(order_id=order.id, payment_id=payment.id,
                                                         order_status=order.status.value, created_at=now or utcnow()))
    deferred_row_written(session)


def deferred_row_written(session: AsyncSession) -> None:
    """A deferred row was written in `session`'s transaction (by `defer_payment_postings` or the express lane of
    a notification, payments.express): have it posted once the transaction commits."""
    worker = session.info.get(_WORKER)
    if isinstance(worker, LedgerWorker) and worker.running:
        after_commit(session, worker.kick)
    else:
        after_commit(session, _post_now(session.info.get(_DB)))


_DB = "quanyi.ledger.db"


def _post_now(db: object):  # type: ignore[no-untyped-def]
    async def post() -> None:
        if isinstance(db, Database):
            await post_all_deferred(db)
    return post


async def post_deferred(*, session: AsyncSession, order_id: int | None = None, limit: int = BATCH) -> int:
    """Write the postings of up to `limit` deferred rows (only `order_id`'s when given) and delete the rows,
    in the caller's transaction. Returns how many rows were done."""
    query = select(DeferredPosting).order_by(DeferredPosting.id).limit(limit)
    if order_id is not None:
        # The caller holds the order lock; a worker holding one of these rows finishes first, then we find none.
        query = query.where(DeferredPosting.order_id == order_id).with_for_update()
    else:
        query = query.with_for_update(skip_locked=True)  # workers share the rows, never wait on each other
    rows = list((await session.scalars(query)).all())
    if not rows:
        return 0
    orders = {o.id: o for o in (await session.scalars(select(Order).where(
        Order.id.in_({row.order_id for row in rows})))).all()}
    payments = {p.id: p for p in (await session.scalars(select(Payment).where(
        Payment.id.in_({row.payment_id for row in rows})))).all()}
    received = [payment_received_draft(orders[row.order_id], payments[row.payment_id], duplicate=False)
                for row in rows]
    known = await existing_references(session, (draft.reference for draft in received))
    later = [orders[row.order_id] for row in rows
             if row.order_status in (OrderStatus.DELIVERED.value, OrderStatus.REFUND_PENDING.value)]
    facts = await delivery_facts(session, later) if later else {}
    drafts: list[Draft] = []
    for row, draft in zip(rows, received, strict=True):
        drafts.append(draft)
        order = orders[row.order_id]
        if order.id not in facts:
            continue
        sums = facts[order.id].sums
        if draft.reference not in known:  # this batch's payment posting counts toward what the order holds
            for line in draft.lines:
                sums[line.account] = sums.get(line.account, 0) + line.amount_cents
        if row.order_status == OrderStatus.DELIVERED.value:
            drafts.append(delivered_draft(order, facts[order.id]))
        else:
            drafts.append(refund_due_draft(order, sums))
    await post_many(session, drafts)
    delivered = [orders[row.order_id] for row in rows if row.order_status == OrderStatus.DELIVERED.value]
    # Members' delivered orders earn points and count toward levels, in the same transaction (guests: no query).
    await loyalty_service.orders_delivered(session=session, orders=delivered)
    # The buyer's delivery message and the merchant's alert (outbox rows; idempotent on their dedupe keys).
    await notifications_service.on_orders_delivered(session=session, orders=delivered, now=utcnow())
    await session.execute(delete(DeferredPosting).where(DeferredPosting.id.in_([row.id for row in rows])))
    return len(rows)


async def post_all_deferred(db: Database) -> int:
    """Post every deferred row (batches, each its own transaction): what reports do before they read."""
    done = 0
    while True:
        async with db.transaction() as session:
            count = await post_deferred(session=session)
        done += count
        if count < BATCH:
            return done


class LedgerWorker:
    """Posts deferred rows of this process's payments as they commit (`kick`), and everyone's now and then."""

    def __init__(self, db: Database, *, poll_seconds: float = 1.0, gather_seconds: float = 0.02) -> None:
        self.db = db
        self.poll_seconds = poll_seconds
        self.gather_seconds = gather_seconds  # a moment for more payments to commit: bigger batches under load
        self.running = False
        self._wake = asyncio.Event()

    async def kick(self) -> None:
        self._wake.set()

    async def run_forever(self) -> None:
        self.running = True
        try:
            while True:
                try:
                    await asyncio.wait_for(self._wake.wait(), timeout=self.poll_seconds)
                    await asyncio.sleep(self.gather_seconds)
                except TimeoutError:
                    pass
                self._wake.clear()
                try:
                    await post_all_deferred(self.db)
                except asyncio.CancelledError:
                    raise
                except Exception:
                    logger.exception("ledger worker: posting deferred rows failed; will retry")
        finally:
            self.running = False


def install_ledger_worker(db: Database, *, batch_seconds: float = 0.02) -> LedgerWorker:
    """This process's ledger worker, reachable from every session (payments defer to it). Not running until
    `run_forever` is awaited: until then payments post right after their commit."""
    worker = LedgerWorker(db, gather_seconds=batch_seconds)
    db.session_info[_WORKER] = worker
    db.session_info[_DB] = db
    return worker
