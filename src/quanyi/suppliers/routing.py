"""Buying from suppliers in real time (实时采购), with failover: the fulfilment worker.

Where does a paid order that local stock cannot fill get its goods? Here: `apply_payment` left it paid
with a fulfilment job; a worker claims the job (lease, FOR UPDATE SKIP LOCKED, like the notification
outbox), and steps through it: fulfilment.plan_step commits an attempt (`sending`, unique idempotency key,
prepaid debit) -> this module calls the supplier with no transaction or lock held -> fulfilment.
record_outcome writes the answer. Candidates go cheapest first; a definite failure moves on to the next,
an unclear one is asked about (`query_order`, same key) before anyone else is tried. A worker killed
mid-call leaves its attempt in `sending`; once the lease runs out another worker asks the supplier about
it with the same key, so the order is delivered exactly once.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging

from sqlalchemy import or_, select

from quanyi.context import ShopContext
from quanyi.db import utcnow
from quanyi.leased_worker import LeasedWorker, worker_owner
from quanyi.suppliers import circuit
from quanyi.suppliers.adapter import (
    CardPurchaseRequest,
    ProductKind,
    QueryState,
    RechargeRequest,
    RechargeState,
    SupplierError,
    SupplierOutcomeUnknown,
    SupplierOutOfStock,
    SupplierPriceChanged,
    SupplierPurchasePending,
    SupplierUnavailable,
)
from quanyi.suppliers.attempt_state import AttemptState
from quanyi.suppliers.fulfilment import Outcome, Step, StepPolicy, plan_step, record_outcome
from quanyi.suppliers.fulfilment_models import FulfilmentJob, JobStatus
from quanyi.urls import shop_base_url

__all__ = ["FulfilmentWorker", "call_supplier", "callback_base_url"]

logger = logging.getLogger(__name__)
_MAX_STEPS = 50  # per job per claim: bounded even if a supplier keeps answering nonsense

_RECHARGE_STATE = {RechargeState.SUBMITTED: AttemptState.SUBMITTED, RechargeState.PROCESSING: AttemptState.PROCESSING,
                   RechargeState.SUCCEEDED: AttemptState.SUCCEEDED, RechargeState.FAILED: AttemptState.FAILED}

def callback_base_url(ctx: ShopContext) -> str:
    """Where suppliers send recharge callbacks: the shop's configured address (quanyi/urls.py)."""
    return shop_base_url(ctx.settings)

def _failure(step: Step, exc: BaseException) -> Outcome:
    """A call that raised: only an unclear outcome may have bought something."""
    text = f"{type(exc).__name__}: {exc}"[:500]
    if isinstance(exc, SupplierOutcomeUnknown) or not isinstance(exc, SupplierError):
        # Unexpected errors count as unclear too: better one extra query than a second purchase. A purchase
        # the supplier took to fill later is unclear in the same way, but the supplier answered: healthy.
        return Outcome(AttemptState.UNKNOWN, error=text, healthy=isinstance(exc, SupplierPurchasePending))
    # Refusals (out of stock, price, bad account) are proper answers: the supplier itself is healthy.
    learned: dict[str, object] = {}
    if isinstance(exc, SupplierOutOfStock):
        learned["stock"] = 0
    elif isinstance(exc, SupplierPriceChanged) and isinstance(exc.context.get("unit_cost_cents"), int):
        learned["cost_cents"] = exc.context["unit_cost_cents"]
    return Outcome(AttemptState.FAILED, error=text, healthy=not isinstance(exc, SupplierUnavailable), extra=learned)

async def _query(step: Step) -> Outcome:
    try:
        result = await step.adapter.query_order(step.idempotency_key, kind=step.kind)
    except Exception as exc:  # noqa: BLE001 - any failure to learn leaves the attempt as unclear as it was
        stay = AttemptState.UNKNOWN if step.state is AttemptState.SENDING else step.state
        return Outcome(stay, error=f"query failed: {type(exc).__name__}: {exc}"[:500],
                       healthy=False if isinstance(exc, SupplierError | OSError) else None, from_query=True)
    common = {"supplier_order_no": result.supplier_order_no, "unit_cost_cents": result.unit_cost_cents,
              "from_query": True}
    if result.state is QueryState.SUCCEEDED:
        return Outcome(AttemptState.SUCCEEDED, codes=tuple(result.codes), **common)  # type: ignore[arg-type]
    if result.state is QueryState.FAILED:
        return Outcome(AttemptState.FAILED, error=f"supplier says failed: {result.message}"[:500], **common)  # type: ignore[arg-type]
    if result.state is QueryState.NOT_FOUND:
        if step.state in (AttemptState.SUBMITTED, AttemptState.PROCESSING):
            # It accepted this recharge before: a lookup gap is not a failure; keep asking.
            return Outcome(step.state, error="supplier does not find an accepted recharge", from_query=True)
        trusted_at = step.not_found_trusted_at
        if trusted_at is not None and utcnow() < trusted_at:
            # Our purchase call may still be on its way to being placed there: failing over now could buy twice.
            return Outcome(AttemptState.UNKNOWN, error="supplier has no such order yet; asking again at "
                           f"{trusted_at.isoformat(timespec='seconds')}", healthy=None, from_query=True,
                           ask_again_at=trusted_at)
        # Long enough after the call was sent: it never reached the supplier, or was refused there.
        return Outcome(AttemptState.FAILED, error="supplier has no such order", **common)  # type: ignore[arg-type]
    still = AttemptState.PROCESSING if step.kind is ProductKind.DIRECT_RECHARGE else AttemptState.UNKNOWN
    if step.kind is ProductKind.DIRECT_RECHARGE and step.state is AttemptState.PROCESSING:
        still = AttemptState.PROCESSING
    return Outcome(still, error=None, **common)  # type: ignore[arg-type]

async def call_supplier(step: Step) -> Outcome:
    """Make the step's call and say what it means. Never raises for supplier trouble."""
    if step.action == "query":
        return await _query(step)
    try:
        if step.action == "buy":
            bought = await step.adapter.buy_card_keys(CardPurchaseRequest(
                idempotency_key=step.idempotency_key, product_code=step.product_code, quantity=step.quantity,
                max_unit_cost_cents=step.max_unit_cost_cents))
            return Outcome(AttemptState.SUCCEEDED, codes=tuple(bought.codes), unit_cost_cents=bought.unit_cost_cents,
                           supplier_order_no=bought.supplier_order_no)
        status = await step.adapter.submit_recharge(RechargeRequest(
            idempotency_key=step.idempotency_key, product_code=step.product_code, account=step.account or "",
            quantity=step.quantity, max_unit_cost_cents=step.max_unit_cost_cents, callback_url=step.callback_url))
        return Outcome(_RECHARGE_STATE[status.state], unit_cost_cents=status.unit_cost_cents,
                       supplier_order_no=status.supplier_order_no,
                       error=status.message or None if status.state is RechargeState.FAILED else None)
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # noqa: BLE001 - classified by what it says about the purchase
        return _failure(step, exc)


class FulfilmentWorker(LeasedWorker):
    """Claims due fulfilment jobs and works each until it is delivered, refund-pending or waiting."""

    kind = "fulfilment worker"

    def __init__(self, ctx: ShopContext, *, owner: str | None = None, batch_size: int = 5) -> None:
        self.ctx = ctx
        self.owner = owner or worker_owner()
        self.batch_size = batch_size
        s = ctx.settings
        self.policy = StepPolicy(
            owner=self.owner, lease=dt.timedelta(seconds=s.fulfilment_lease_seconds),
            circuit=circuit.CircuitPolicy(threshold=s.circuit_failure_threshold,
                                          open_for=dt.timedelta(seconds=s.circuit_open_seconds)),
            cipher=ctx.cipher, callback_base_url=callback_base_url(ctx),
            circuit_wait=dt.timedelta(seconds=s.fulfilment_circuit_wait_seconds),
            not_found_grace=dt.timedelta(seconds=s.fulfilment_not_found_grace_seconds))

    async def claim(self, now: dt.datetime | None = None) -> list[int]:
        """Take up to batch_size due jobs: open, due, and not leased (or the lease ran out: worker died)."""
        now = now or utcnow()
        async with self.ctx.db.transaction() as session:
            # SKIP LOCKED: concurrent workers take disjoint jobs without waiting (SQLite: the writer lock).
            jobs = (await session.scalars(
                select(FulfilmentJob)
                .where(FulfilmentJob.status == JobStatus.OPEN, FulfilmentJob.next_attempt_at <= now,
                       or_(FulfilmentJob.locked_until.is_(None), FulfilmentJob.locked_until <= now))
                .order_by(FulfilmentJob.next_attempt_at, FulfilmentJob.id).limit(self.batch_size)
                .with_for_update(skip_locked=True).execution_options(populate_existing=True))).all()
            for job in jobs:
                job.lease_owner, job.locked_until = self.owner, now + self.policy.lease
                job.rounds += 1
                job.updated_at = now
            return [job.id for job in jobs]

    def _query_delay(self, checks: int) -> dt.timedelta:
        s = self.ctx.settings
        return dt.timedelta(seconds=min(s.fulfilment_query_seconds * 2 ** min(checks, 16),
                                        s.fulfilment_query_max_seconds))

    async def work(self, job_id: int) -> None:
        """Step one job until it needs nothing more from us now."""
        for _ in range(_MAX_STEPS):
            async with self.ctx.db.transaction() as session:
                step = await plan_step(session=session, job_id=job_id, policy=self.policy, http=self.ctx.http)
            if step is None:
                return
            outcome = await call_supplier(step)  # no transaction, no lock held
            logger.info("order job %s: %s at %s (%s) -> %s%s", job_id, step.action, step.supplier_code,
                        step.idempotency_key, outcome.state.value, f" ({outcome.error})" if outcome.error else "")
            async with self.ctx.db.transaction() as session:
                go_on = await record_outcome(session=session, attempt_id=step.attempt_id, outcome=outcome,
                                             policy=self.policy, query_delay=self._query_delay(step.checks))
            if not go_on:
                return
        logger.error("fulfilment job %s: still busy after %d steps; its lease will bring it back", job_id, _MAX_STEPS)

    async def run_once(self, now: dt.datetime | None = None) -> int:
        job_ids = await self.claim(now)
        results = await asyncio.gather(*(self.work(job_id) for job_id in job_ids), return_exceptions=True)
        for job_id, result in zip(job_ids, results, strict=True):
            if isinstance(result, BaseException):
                # The lease expires and another round (or worker) picks the job up again.
                logger.error("fulfilment job %s failed this round: %r", job_id, result, exc_info=result)
        return len(job_ids)

    def poll_seconds(self) -> float:
        return self.ctx.settings.fulfilment_poll_seconds

    def started_message(self) -> str:
        return f"fulfilment worker {self.owner} started"
