"""Direct-recharge callbacks (直充回调) and the admin's view of a paid order's supplier attempts.

A supplier reports a recharge's progress by calling `/api/suppliers/{code}/recharge-callback`. The
callback is believed only after that supplier's adapter verified it (`parse_callback`), and only for
attempts sent to that same supplier. Callbacks and polling move the attempt through the one transition
table in attempt_state.py, so a duplicate callback changes nothing and a contradictory one is refused.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from quanyi.db import Database, utcnow
from quanyi.errors import DomainError, NotFound
from quanyi.inventory.crypto import CardKeyCipher
from quanyi.suppliers import service as suppliers_service
from quanyi.suppliers.adapter import CallbackAck, CallbackRejected, PurchaseNews, RechargeEvent, RechargeState
from quanyi.suppliers.attempt_state import OPEN_STATES, AttemptState
from quanyi.suppliers.fulfilment import Outcome, apply_news
from quanyi.suppliers.fulfilment_models import FulfilmentJob, JobStatus, SupplierAttempt
from quanyi.suppliers.models import Supplier

__all__ = ["RechargeCallbackRejected", "UnknownSupplierCode", "handle_recharge_callback", "order_attempts"]

logger = logging.getLogger(__name__)
_STATE = {RechargeState.SUBMITTED: AttemptState.SUBMITTED, RechargeState.PROCESSING: AttemptState.PROCESSING,
          RechargeState.SUCCEEDED: AttemptState.SUCCEEDED, RechargeState.FAILED: AttemptState.FAILED}


class RechargeCallbackRejected(DomainError):
    code = "supplier_callback_rejected"


class UnknownSupplierCode(NotFound):
    code = "supplier_not_found"


async def handle_recharge_callback(*, db: Database, cipher: CardKeyCipher, http: httpx.AsyncClient,
                                   supplier_code: str, headers: Mapping[str, str], body: bytes) -> CallbackAck:
    """Verify a supplier's recharge callback and apply each event it carries; returns what to answer."""
    async with db.read_session() as session:
        supplier = await session.scalar(select(Supplier).where(Supplier.code == supplier_code[:64]))
        if supplier is None:
            raise UnknownSupplierCode(f"no supplier {supplier_code!r}")
        adapter = suppliers_service.adapter_for(supplier, cipher=cipher, http=http)
    try:
        events = adapter.parse_callback(headers=headers, body=body)
    except CallbackRejected as exc:
        logger.warning("rejected a callback claiming to be from supplier %s: %s", supplier.code, exc)
        raise RechargeCallbackRejected(f"callback not accepted: {exc}") from None
    for event in events:
        if isinstance(event, PurchaseNews):
            await _purchase_news(db, supplier, event)
            continue
        if not isinstance(event, RechargeEvent):
            continue  # stock pushes have their own endpoint (catalog sync); nothing for routing here
        async with db.transaction() as session:
            # Only attempts sent to this supplier: one supplier can never settle another's recharge.
            attempt_id = await session.scalar(select(SupplierAttempt.id).where(
                SupplierAttempt.idempotency_key == event.idempotency_key[:64],
                SupplierAttempt.supplier_id == supplier.id))
            if attempt_id is None:
                logger.warning("supplier %s reported unknown recharge %r; ignored", supplier.code,
                               event.idempotency_key)
                continue
            outcome = Outcome(_STATE[event.state], unit_cost_cents=event.unit_cost_cents,
                              supplier_order_no=event.supplier_order_no,
                              error=(event.message or "recharge failed") if event.state is RechargeState.FAILED
                              else None)
            changed = await apply_news(session=session, attempt_id=attempt_id, outcome=outcome, cipher=cipher,
                                       now=utcnow())
        logger.info("supplier %s callback for %s: %s%s", supplier.code, event.idempotency_key, event.state.value,
                    "" if changed else " (no change)")
    return adapter.callback_ack()


async def _purchase_news(db: Database, supplier: Supplier, news: PurchaseNews) -> None:
    """A supplier says an order it took moved on: an open attempt is asked about now (its answer, not the
    callback, carries the codes); a refund at the supplier is logged for the operator (our prepaid balance
    there grew: reconciliation shows it)."""
    if news.state == "refunded":
        logger.warning("supplier %s refunded order %s (%s cents so far): check the order and the prepaid balance",
                       supplier.code, news.idempotency_key, news.refunded_cents)
        return
    async with db.transaction() as session:
        attempt = await session.scalar(select(SupplierAttempt).where(
            SupplierAttempt.idempotency_key == news.idempotency_key[:64], SupplierAttempt.supplier_id == supplier.id))
        if attempt is None or attempt.state not in OPEN_STATES:
            return
        job = await session.get(FulfilmentJob, attempt.job_id)
        if job is not None and job.status is JobStatus.OPEN:
            job.next_attempt_at = utcnow()
    logger.info("supplier %s says order %s is %s: asking it now", supplier.code, news.idempotency_key, news.state)


async def order_attempts(*, session: AsyncSession, order_id: int) -> tuple[FulfilmentJob | None,
                                                                             Sequence[tuple[SupplierAttempt, str]]]:
    """An order's fulfilment job and its attempts (oldest first) with each supplier's code."""
    job = await session.scalar(select(FulfilmentJob).where(FulfilmentJob.order_id == order_id))
    rows = await session.execute(
        select(SupplierAttempt, Supplier.code).join(Supplier, Supplier.id == SupplierAttempt.supplier_id)
        .where(SupplierAttempt.order_id == order_id).order_by(SupplierAttempt.id))
    return job, [(attempt, code) for attempt, code in rows.all()]
