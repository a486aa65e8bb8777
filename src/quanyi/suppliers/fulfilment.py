"""Fulfilment bookkeeping (履约记账): the database side of buying from suppliers, one transaction per step.

`plan_step` decides what the worker does next for a job (ask about an open attempt, buy from the next
candidate, or nothing: delivered / refund pending), and commits a new attempt in state `sending`, its
prepaid charge and a renewed lease BEFORE the worker calls anyone. `record_outcome` writes what the
supplier said, under the order row lock (order first, then attempt: the shop's lock order), and is
idempotent: an attempt already settled by someone else (a callback, a second worker) is left alone.
The network calls themselves live in routing.py, outside every transaction.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field
from typing import Literal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from quanyi.db import utcnow
from quanyi.inventory import service as inventory_service
from quanyi.inventory.crypto import CardKeyCipher
from quanyi.ledger import service as ledger_service
from quanyi.orders import service as orders_service
from quanyi.orders.models import Order
from quanyi.orders.state import OrderStatus
from quanyi.refunds import service as refunds_service
from quanyi.suppliers import circuit
from quanyi.suppliers.adapter import ProductKind, SupplierAdapter, SupplierCode
from quanyi.suppliers.attempt_state import (
    FINAL_STATES,
    OPEN_STATES,
    AttemptState,
    IllegalAttemptTransition,
    check_attempt_transition,
)
from quanyi.suppliers.candidates import find_candidates, next_circuit_reopen
from quanyi.suppliers.fulfilment_models import FulfilmentJob, JobStatus, SupplierAttempt
from quanyi.suppliers.models import Supplier
from quanyi.suppliers.pricing import apply_price_policies
from quanyi.suppliers.sync_apply import apply_purchase_refusal, apply_purchase_taken, mapped_sku_ids

__all__ = ["Step", "Outcome", "StepPolicy", "plan_step", "record_outcome", "apply_news", "finish_job", "schedule_job"]

logger = logging.getLogger(__name__)
Action = Literal["buy", "recharge", "query"]


@dataclass(frozen=True, slots=True)
class StepPolicy:
    owner: str
    lease: dt.timedelta
    circuit: circuit.CircuitPolicy
    cipher: CardKeyCipher
    callback_base_url: str
    # How long after it was queued an order may wait for suppliers paused by an open circuit.
    circuit_wait: dt.timedelta = dt.timedelta(0)
    # How long after a purchase call was sent a "no such order" is believed (see not_found_trusted_at).
    not_found_grace: dt.timedelta = dt.timedelta(0)


@dataclass(frozen=True, slots=True)
class Step:
    """One supplier call to make, with everything it needs after the transaction has ended."""

    action: Action
    attempt_id: int
    state: AttemptState  # the attempt's state when planned (a query that learns nothing keeps it)
    checks: int  # queries already sent about it (the next one waits longer)
    supplier_id: int
    supplier_code: str
    adapter: SupplierAdapter
    kind: ProductKind
    idempotency_key: str
    product_code: str
    quantity: int
    max_unit_cost_cents: int
    account: str | None = None
    callback_url: str | None = None
    # Before this, the supplier's "no such order" may only mean our call has not been placed *yet*.
    not_found_trusted_at: dt.datetime | None = None


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a call told us. `healthy`: True the supplier answered, False it failed us (circuit), None n/a."""

    state: AttemptState
    codes: tuple[SupplierCode, ...] = ()
    unit_cost_cents: int | None = None
    supplier_order_no: str | None = None
    error: str | None = None
    healthy: bool | None = True
    from_query: bool = False
    extra: dict[str, object] = field(default_factory=dict)
    ask_again_at: dt.datetime | None = None  # no news yet: when to ask next (instead of the usual backoff)


# ---------------------------------------------------------------- job bookkeeping

async def finish_job(session: AsyncSession, job: FulfilmentJob, outcome: str, now: dt.datetime,
                     error: str | None = None) -> None:
    job.status, job.outcome, job.finished_at, job.updated_at = JobStatus.DONE, outcome, now, now
    job.locked_until = job.lease_owner = None
    if error:
        job.last_error = error[:500]


def schedule_job(job: FulfilmentJob, *, delay: dt.timedelta, now: dt.datetime, error: str | None = None) -> None:
    """Leave the job for later (an unclear attempt, a recharge in progress) and give up its lease."""
    job.next_attempt_at, job.updated_at = now + delay, now
    job.locked_until = job.lease_owner = None
    if error:
        job.last_error = error[:500]


async def settled_by_hand(session: AsyncSession, order: Order) -> bool:
    """Is the order no longer ours to deliver: it left "paid" another way (refunded, ...), or all its money is on
    its way back (a refund whose gateway call has not completed leaves it paid)? The caller holds its row lock."""
    return order.status is not OrderStatus.PAID or await refunds_service.full_refund_pending(session=session,
                                                                                            order=order)


async def _locked(session: AsyncSession, job_id: int) -> tuple[FulfilmentJob, Order] | None:
    order_id = await session.scalar(select(FulfilmentJob.order_id).where(FulfilmentJob.id == job_id))
    if order_id is None:
        return None
    order = await orders_service.lock_order(session=session, order_id=order_id)  # order row first
    job = await session.scalar(select(FulfilmentJob).where(FulfilmentJob.id == job_id).with_for_update()
                               .execution_options(populate_existing=True))
    return (job, order) if job is not None else None


# ---------------------------------------------------------------- planning

async def plan_step(*, session: AsyncSession, job_id: int, policy: StepPolicy, http: object,
                    now: dt.datetime | None = None) -> Step | None:
    """Decide and prepare the next supplier call for a job this worker leases; None: nothing to call now."""
    now = now or utcnow()
    found = await _locked(session, job_id)
    if found is None:
        return None
    job, order = found
    if job.status is not JobStatus.OPEN or job.lease_owner != policy.owner:
        return None  # our lease expired and another worker owns the job now
    attempts = (await session.scalars(select(SupplierAttempt).where(SupplierAttempt.job_id == job.id)
                                      .order_by(SupplierAttempt.id).with_for_update()
                                      .execution_options(populate_existing=True))).all()
    open_attempt = next((a for a in attempts if a.state in OPEN_STATES), None)
    if open_attempt is not None:
        # Never buy elsewhere while this one might still succeed: ask its supplier first. Also when the order
        # was settled by hand meanwhile: what the supplier did with our money must still be found out.
        return await _prepare(session, job, open_attempt, "query", policy, http, now)
    if await settled_by_hand(session, order):
        # Refunded (or being refunded in full) or otherwise settled by hand while we waited: nothing left to buy.
        if order.status is not OrderStatus.DELIVERED:
            await _stock_held_codes(session, order, job, now)
        await finish_job(session, job, "delivered" if order.status is OrderStatus.DELIVERED else "abandoned", now)
        return None

    need = order.quantity
    if job.kind is ProductKind.CARD_KEY:
        try:  # keys already held (bought, or local stock that came back) may complete it
            await inventory_service.deliver_card_keys(session=session, sku_id=order.sku_id, order_id=order.id,
                                                      quantity=order.quantity, now=now)
        except inventory_service.OutOfStock:
            need = order.quantity - await inventory_service.count_held_keys(session=session, order_id=order.id)
        else:
            await orders_service.mark_fulfilled(session=session, order=order, now=now)
            await finish_job(session, job, "delivered", now)
            return None
    elif any(a.state is AttemptState.SUCCEEDED for a in attempts):
        await orders_service.mark_fulfilled(session=session, order=order, now=now)
        await finish_job(session, job, "delivered", now)
        return None

    tried = {a.supplier_product_id for a in attempts}
    for candidate in await find_candidates(session=session, sku_id=order.sku_id, kind=job.kind, quantity=need,
                                           exclude_products=tried, now=now):
        key = f"{order.order_no}-{len(attempts) + 1:02d}"
        if not await _reachable(session, candidate.supplier_id, policy, http):
            continue
        try:
            # Savepoint: a circuit that another process just took the trial of, or a prepaid balance that
            # does not cover the purchase, skips this supplier and undoes both.
            async with session.begin_nested():
                if not await circuit.take_circuit_pass(session=session, supplier_id=candidate.supplier_id,
                                                       policy=policy.circuit, now=now):
                    raise _Skip("circuit open")
                # Debit before calling, so the prepaid balance can never be overdrawn by what we buy.
                await ledger_service.charge_supplier(session=session, supplier_id=candidate.supplier_id,
                                                     amount_cents=candidate.cost_cents * need, reference=key,
                                                     order_id=order.id, now=now)
        except (_Skip, ledger_service.SupplierBalanceInsufficient) as exc:
            logger.info("order %s: skipping supplier %s: %s", order.order_no, candidate.supplier_code, exc)
            continue
        attempt = SupplierAttempt(
            job_id=job.id, order_id=order.id, supplier_id=candidate.supplier_id,
            supplier_product_id=candidate.supplier_product_id, product_code=candidate.product_code,
            kind=job.kind, idempotency_key=key, state=AttemptState.SENDING, quantity=need,
            max_unit_cost_cents=candidate.cost_cents, charged_cents=candidate.cost_cents * need,
            recharge_account=order.recharge_account, created_at=now, updated_at=now)
        session.add(attempt)
        await session.flush()
        action: Action = "buy" if job.kind is ProductKind.CARD_KEY else "recharge"
        return await _prepare(session, job, attempt, action, policy, http, now)

    reopens = await next_circuit_reopen(session=session, sku_id=order.sku_id, kind=job.kind, quantity=need,
                                        exclude_products=tried, now=now)
    give_up_at = job.created_at + policy.circuit_wait
    if reopens is not None and now < give_up_at:
        # Every supplier left is paused after failing other orders: wait for the first to get its trial call
        # rather than refund a paid order over a short outage.
        wake = min(reopens, give_up_at)
        schedule_job(job, delay=wake - now, now=now,
                     error=f"waiting for a supplier paused by its circuit breaker (until {wake.isoformat()})")
        logger.warning("order %s: every supplier left is paused (circuit open); waiting until %s",
                       order.order_no, wake.isoformat())
        return None
    reason = "no supplier could fill it" if attempts else "no supplier available"
    await _stock_held_codes(session, order, job, now)  # codes that came (a short delivery) go on sale, at cost
    await orders_service.mark_unfulfillable(session=session, order=order, reason=reason, now=now)
    await finish_job(session, job, "refund_pending", now, error=reason)
    return None


class _Skip(Exception):
    pass


async def _reachable(session: AsyncSession, supplier_id: int, policy: StepPolicy, http: object) -> bool:
    """Can we build this supplier's adapter at all (credentials readable, dialect known)? Checked before
    anything is committed, so a misconfigured supplier is skipped instead of blocking the order."""
    from quanyi.suppliers import service as suppliers_service

    supplier = await session.get(Supplier, supplier_id)
    try:
        suppliers_service.adapter_for(supplier, cipher=policy.cipher, http=http)  # type: ignore[arg-type]
    except Exception as exc:  # noqa: BLE001 - any reason to be unusable skips it
        logger.error("supplier %s cannot be called (%s: %s); skipped", supplier_id, type(exc).__name__, exc)
        return False
    return True


async def _prepare(session: AsyncSession, job: FulfilmentJob, attempt: SupplierAttempt, action: Action,
                   policy: StepPolicy, http: object, now: dt.datetime) -> Step:
    from quanyi.suppliers import service as suppliers_service

    supplier = await session.get(Supplier, attempt.supplier_id)
    assert supplier is not None
    # The lease outlasts the call (its timeout), so no other worker asks about an attempt still in flight.
    job.locked_until = now + policy.lease + dt.timedelta(milliseconds=supplier.timeout_ms)
    job.updated_at = now
    adapter = suppliers_service.adapter_for(supplier, cipher=policy.cipher, http=http)  # type: ignore[arg-type]
    callback = f"{policy.callback_base_url.rstrip('/')}/api/suppliers/{supplier.code}/recharge-callback"
    # The purchase call was sent when the attempt was made (it is never sent again: later steps only query).
    grace = max(policy.not_found_grace, 3 * dt.timedelta(milliseconds=supplier.timeout_ms))
    return Step(action=action, attempt_id=attempt.id, state=attempt.state, checks=attempt.checks,
                not_found_trusted_at=attempt.created_at + grace,
                supplier_id=supplier.id,
                supplier_code=supplier.code, adapter=adapter, kind=attempt.kind,
                idempotency_key=attempt.idempotency_key, product_code=attempt.product_code, quantity=attempt.quantity,
                max_unit_cost_cents=attempt.max_unit_cost_cents, account=attempt.recharge_account,
                callback_url=callback if attempt.kind is ProductKind.DIRECT_RECHARGE else None)


# ---------------------------------------------------------------- recording

async def record_outcome(*, session: AsyncSession, attempt_id: int, outcome: Outcome, policy: StepPolicy,
                         query_delay: dt.timedelta, now: dt.datetime | None = None) -> bool:
    """Write a call's outcome. Returns True if the worker should go on with the job right away."""
    now = now or utcnow()
    order_id = await session.scalar(select(SupplierAttempt.order_id).where(SupplierAttempt.id == attempt_id))
    order = await orders_service.lock_order(session=session, order_id=order_id)  # type: ignore[arg-type]
    attempt = await session.scalar(select(SupplierAttempt).where(SupplierAttempt.id == attempt_id)
                                   .with_for_update().execution_options(populate_existing=True))
    assert attempt is not None
    if outcome.healthy is True:
        await circuit.record_supplier_success(session=session, supplier_id=attempt.supplier_id, now=now)
    elif outcome.healthy is False:
        await circuit.record_supplier_failure(session=session, supplier_id=attempt.supplier_id,
                                              error=outcome.error or "failed", policy=policy.circuit, now=now)
    if outcome.from_query:
        attempt.checks += 1
    job = await session.scalar(select(FulfilmentJob).where(FulfilmentJob.id == attempt.job_id).with_for_update()
                               .execution_options(populate_existing=True))
    assert job is not None
    if attempt.state in FINAL_STATES:
        return True  # settled meanwhile (callback, another worker): their record counts
    if outcome.error:
        attempt.error = outcome.error[:500]
    attempt.updated_at = now
    if outcome.ask_again_at is not None:
        query_delay = max(outcome.ask_again_at - now, dt.timedelta(0))
    if not _moves(attempt, outcome.state):
        schedule_job(job, delay=query_delay, now=now, error=outcome.error)
        return False  # no news (or news older than what we know): ask again later
    await apply_transition(session, order, job, attempt, outcome, policy.cipher, now)
    if outcome.state in (AttemptState.SUBMITTED, AttemptState.PROCESSING) or (
            outcome.state is AttemptState.UNKNOWN and outcome.from_query):
        schedule_job(job, delay=query_delay, now=now, error=outcome.error)
        return False
    return job.status is JobStatus.OPEN


def _moves(attempt: SupplierAttempt, target: AttemptState) -> bool:
    """Should the attempt move to `target`? A callback may have overtaken the answer we are recording (it says
    processing, the late submit answer says submitted): news older than what we know changes nothing."""
    try:
        return check_attempt_transition(attempt.state, target)
    except IllegalAttemptTransition:
        logger.warning("attempt %s: ignoring %s -> %s (out of order or contradictory news)",
                       attempt.idempotency_key, attempt.state.value, target.value)
        return False


async def apply_transition(session: AsyncSession, order: Order, job: FulfilmentJob, attempt: SupplierAttempt,
                           outcome: Outcome, cipher: CardKeyCipher, now: dt.datetime) -> None:
    """Move an attempt (already checked legal) and do what its new state means for the order and money.
    Shared by the worker and recharge callbacks. The caller holds the order, job and attempt locks."""
    attempt.state = outcome.state
    attempt.updated_at = now
    if outcome.supplier_order_no:
        attempt.supplier_order_no = outcome.supplier_order_no[:128]
    if outcome.unit_cost_cents is not None:
        attempt.unit_cost_cents = outcome.unit_cost_cents
    if outcome.state is AttemptState.FAILED:
        attempt.finished_at = now
        # Definitely not taken: the prepaid debit goes back to the supplier's balance.
        await ledger_service.release_supplier_charge(session=session, reference=attempt.idempotency_key,
                                                     reason=outcome.error or "purchase failed", now=now)
        if outcome.extra:
            await _learn_from_refusal(session, attempt, outcome, now)
        job.next_attempt_at = now  # the next supplier, at once
    elif outcome.state is AttemptState.SUCCEEDED:
        attempt.finished_at = now
        await _settle_cost(session, attempt, now)
        await apply_purchase_taken(session=session, supplier_product_id=attempt.supplier_product_id,
                                   quantity=attempt.quantity)
        settled = await settled_by_hand(session, order)
        if attempt.kind is ProductKind.CARD_KEY:
            await _receive_codes(session, order, attempt, outcome, cipher, now)
            if settled:
                # Settled by hand meanwhile (e.g. refunded): the codes were paid for; put them on sale, at cost.
                await _stock_held_codes(session, order, job, now)
        elif not settled:
            await orders_service.mark_fulfilled(session=session, order=order, now=now)
            await finish_job(session, job, "delivered", now)
        else:
            logger.error("order %s is %s or being refunded in full, but supplier recharge %s succeeded: the "
                         "account was credited anyway", order.order_no, order.status.value, attempt.idempotency_key)
            await ledger_service.book_late_supplier_goods(session=session, reference=attempt.idempotency_key,
                                                          amount_cents=attempt.charged_cents, to_stock=False, now=now)


async def _learn_from_refusal(session: AsyncSession, attempt: SupplierAttempt, outcome: Outcome,
                              now: dt.datetime) -> None:
    cost = outcome.extra.get("cost_cents")
    applied = await apply_purchase_refusal(session=session, supplier_product_id=attempt.supplier_product_id,
                                           cost_cents=cost if isinstance(cost, int) else None,
                                           out_of_stock=outcome.extra.get("stock") == 0, observed_at=now)
    if applied.changed_product_ids:
        # A dearer cost may breach a SKU's margin floor: reprice or take it off sale, as a sync would.
        await apply_price_policies(session=session, sku_ids=await mapped_sku_ids(
            session=session, product_ids=sorted(applied.changed_product_ids)))


async def _stock_late_codes(session: AsyncSession, attempt: SupplierAttempt, now: dt.datetime) -> None:
    if attempt.batch_id is None or not attempt.codes_received:
        return  # nothing new came (codes we already had): the charge stays a claim on the supplier
    unit = attempt.unit_cost_cents if attempt.unit_cost_cents is not None else attempt.charged_cents // attempt.quantity
    await inventory_service.set_batch_unit_cost(session=session, batch_id=attempt.batch_id, unit_cost_cents=unit)
    await ledger_service.book_late_supplier_goods(session=session, reference=attempt.idempotency_key,
                                                  amount_cents=unit * attempt.codes_received, to_stock=True, now=now)


async def _stock_held_codes(session: AsyncSession, order: Order, job: FulfilmentJob, now: dt.datetime) -> None:
    """A card-key order settled by hand, or that no supplier can fill, while it held codes bought for it (a late
    purchase, or a short delivery whose rest never came): they go on sale, each purchase's at its cost (else they
    stayed reserved for it for ever, or went on sale with their cost left with the supplier's payable)."""
    if not await inventory_service.release_card_keys(session=session, order_id=order.id):
        return
    for attempt in (await session.scalars(select(SupplierAttempt).where(SupplierAttempt.job_id == job.id)
                                          .order_by(SupplierAttempt.id))).all():
        if attempt.kind is ProductKind.CARD_KEY and attempt.state is AttemptState.SUCCEEDED:
            await _stock_late_codes(session, attempt, now)  # once per charge


async def _settle_cost(session: AsyncSession, attempt: SupplierAttempt, now: dt.datetime) -> None:
    """The debit was made at the synced cost; the supplier says what it really took. Cheaper: credit the rest
    back. Dearer than the cap we sent: not ours to pay without a look, so it is logged for reconciliation."""
    if attempt.unit_cost_cents is None:
        return
    actual = attempt.unit_cost_cents * attempt.quantity
    if actual > attempt.charged_cents:
        logger.error("supplier attempt %s: supplier reports %d, more than the %d debited (cap %d per unit)",
                     attempt.idempotency_key, actual, attempt.charged_cents, attempt.max_unit_cost_cents)
    elif actual < attempt.charged_cents:
        await ledger_service.settle_supplier_charge(session=session, reference=attempt.idempotency_key,
                                                    actual_cents=actual, now=now)
        attempt.charged_cents = actual


async def _receive_codes(session: AsyncSession, order: Order, attempt: SupplierAttempt, outcome: Outcome,
                         cipher: CardKeyCipher, now: dt.datetime) -> None:
    supplier_code = await session.scalar(select(Supplier.code).where(Supplier.id == attempt.supplier_id))
    codes = [(c.code, c.expires_at) for c in outcome.codes]
    batch_id, stored, duplicates = await inventory_service.receive_supplier_codes(
        session=session, cipher=cipher, sku_id=order.sku_id, merchant_id=order.merchant_id, order_id=order.id,
        codes=codes,
        source_name=f"supplier:{supplier_code}:{attempt.supplier_order_no or attempt.idempotency_key}",
        imported_by=f"attempt:{attempt.id}:{attempt.idempotency_key}", now=now)
    attempt.batch_id, attempt.codes_received, attempt.codes_duplicate = batch_id, stored, duplicates
    if stored < attempt.quantity:
        # Paid for, but short or already ours: keep what is new (held for this order), record the gap for
        # the operator's claim against the supplier, and let the job buy the rest elsewhere.
        attempt.error = (f"asked {attempt.quantity}, got {len(codes)} codes, {stored} new, "
                         f"{duplicates} already known (not delivered)")[:500]
        logger.error("order %s: supplier %s delivered %d new codes of %d asked (%d duplicates)", order.order_no,
                     supplier_code, stored, attempt.quantity, duplicates)


async def apply_news(*, session: AsyncSession, attempt_id: int, outcome: Outcome, cipher: CardKeyCipher,
                     now: dt.datetime | None = None) -> bool:
    """News about an attempt from outside the worker (a recharge callback): move it if the news is new and legal.
    Returns True if anything changed. A success delivers the order; a failure lets the worker try the next."""
    now = now or utcnow()
    order_id = await session.scalar(select(SupplierAttempt.order_id).where(SupplierAttempt.id == attempt_id))
    order = await orders_service.lock_order(session=session, order_id=order_id)  # type: ignore[arg-type]
    attempt = await session.scalar(select(SupplierAttempt).where(SupplierAttempt.id == attempt_id)
                                   .with_for_update().execution_options(populate_existing=True))
    job = await session.scalar(select(FulfilmentJob).where(FulfilmentJob.id == attempt.job_id)  # type: ignore[union-attr]
                               .with_for_update().execution_options(populate_existing=True))
    assert attempt is not None and job is not None
    if not _moves(attempt, outcome.state):
        return False
    if outcome.error:
        attempt.error = outcome.error[:500]
    await apply_transition(session, order, job, attempt, outcome, cipher, now)
    return True
