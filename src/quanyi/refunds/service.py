"""Refunds (退款): request one under the order lock, then execute it through its payment's gateway.

The refund row is the outbox. `request_refund` writes it (status requested) in the caller's
transaction, together with the card keys it takes back, so the buyer can no longer reveal them from
that moment. `execute_refund` then calls the gateway OUTSIDE any database transaction and records
the answer in a new one. A gateway that cannot be reached (timeout, 5xx, connection refused) leaves the
refund requested with a backoff; the background loop (`execute_due_refunds`) retries it, up to
AUTOMATIC_ATTEMPTS unanswered sends (then it is stalled until an operator retries it), and polls `processing`
ones (or sends them again with the same refund_no, for gateways that say so, like Alipay). A refusal is final
for the loop: the refund is failed, and an operator retries or withdraws it (refunds/recovery.py).

Money safety, twice over:
1. Two workers never call the gateway for the same refund at the same time: a worker first claims
   the refund with a lease (`lease_until`), taken with FOR UPDATE SKIP LOCKED on PostgreSQL and under
   the single writer lock on SQLite; a crashed worker's lease simply runs out.
2. Even if they did (a lease outlived by a very slow call), every attempt sends the same refund_no,
   the gateway's idempotency key, so the gateway refunds once and answers the same refund again.

Keys withdrawn when a refund is requested are not restored when the gateway refuses: the buyer is owed that
money, so the refund waits for an operator, who retries it (same refund_no) or withdraws it, handing the keys back.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import secrets
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from quanyi.catalog.models import DeliveryType
from quanyi.db import Database, utcnow
from quanyi.errors import Conflict, NotFound
from quanyi.inventory import service as inventory_service
from quanyi.ledger import service as ledger_service
from quanyi.money import format_money
from quanyi.orders import service as orders_service
from quanyi.orders.models import Order
from quanyi.orders.state import OrderStatus
from quanyi.payments import service as payments_service
from quanyi.payments.gateway import GatewayRegistry, GatewayUnavailable, RefundRequest, RefundResult
from quanyi.payments.models import Payment, PaymentStatus
from quanyi.refunds.alerts import refund_awaits_staff
from quanyi.refunds.models import Refund, RefundEvent, RefundKey
from quanyi.refunds.policy import RefundNotAllowed, RefundSituation, plan_refund
from quanyi.refunds.schemas import RefundEventRead, RefundRead
from quanyi.refunds.state import NOT_PAYING, OPEN, RefundStatus, check_transition
from quanyi.scope import PLATFORM, PLATFORM_MERCHANT_ID, Scope

__all__ = [
    "RefundNotFound", "RefundRequestConflict", "RefundAwaitingStaff", "request_refund", "execute_refund", "lock_refund",
    "execute_due_refunds", "get_refund", "get_refund_by_id", "payment_refunds", "list_refunds", "refund_events",
    "describe_refunds", "full_refund_pending", "orders_being_refunded", "committed_cents", "move_refund",
    "operator_actions", "LEASE", "BACKOFF_SECONDS", "AUTOMATIC_ATTEMPTS",
]

logger = logging.getLogger(__name__)
_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
# Longer than any gateway call may take (httpx timeouts are 10 s), so a live worker never loses its lease.
LEASE = dt.timedelta(seconds=120)
BACKOFF_SECONDS = (5, 15, 60, 300, 900, 3600)
# Sends of a requested refund that got no answer (timeout, 5xx, connection refused) before the worker stops
# retrying it by itself (after about 4 hours with the backoff above): a gateway down that long needs a person,
# who retries it from the console or the API. Polls of a processing refund are not bounded: the gateway has it.
AUTOMATIC_ATTEMPTS = 10


class RefundNotFound(NotFound):
    code = "refund_not_found"


class RefundRequestConflict(Conflict):
    code = "refund_request_conflict"


class RefundAwaitingStaff(Conflict):
    """A refund of this payment waits for staff (退款待处理): refused by the gateway, or stalled without answers."""

    code = "refund_awaiting_staff"


def _new_refund_no() -> str:
    return "RF" + "".join(secrets.choice(_ALPHABET) for _ in range(18))


def _merchant_key(request_key: str, merchant_id: int) -> str:
    """Idempotency keys are per merchant: the same key sent by two merchants' staff are two requests, and one
    merchant can never learn of another's refund through a key (the platform's own store keeps its keys as sent)."""
    if merchant_id == PLATFORM_MERCHANT_ID:
        return request_key
    return f"m{merchant_id}:{hashlib.sha256(request_key.encode()).hexdigest()[:48]}"


def _backoff(attempts: int) -> dt.timedelta:
    return dt.timedelta(seconds=BACKOFF_SECONDS[min(max(attempts, 1) - 1, len(BACKOFF_SECONDS) - 1)])


def move_refund(session: AsyncSession, refund: Refund, target: RefundStatus, *, actor: str, reason: str | None,
          now: dt.datetime) -> None:
    allowed_because = check_transition(RefundStatus(refund.status), target)
    session.add(RefundEvent(refund_id=refund.id, from_status=refund.status, to_status=target.value, actor=actor[:64],
                            reason=(reason or allowed_because)[:500], created_at=now))
    refund.status = target.value
    refund.updated_at = now


async def committed_cents(session: AsyncSession, payment_id: int) -> int:
    """Money of this payment gone back or on its way (every refund neither refused nor withdrawn)."""
    return int(await session.scalar(
        select(func.coalesce(func.sum(Refund.amount_cents), 0))
        .where(Refund.payment_id == payment_id, Refund.status.not_in([s.value for s in NOT_PAYING]))
    ) or 0)


async def full_refund_pending(*, session: AsyncSession, order: Order) -> bool:
    """Is all of this order's money gone back or on its way back (refunds requested or processing, or a refused
    one an operator may still retry)? Then nothing more is the buyer's to deliver, as if the refund had completed.
    A partial refund is not: the rest is still the buyer's. The caller holds the order row lock."""
    return order.id in await orders_being_refunded(session=session, orders=[order])


async def orders_being_refunded(*, session: AsyncSession, orders: Sequence[Order]) -> set[int]:
    """Of these orders, the ids of those whose refunds cover all they paid (full_refund_pending, in one query)."""
    if not orders:
        return set()
    rows = (await session.execute(
        select(Refund.order_id, Refund.status, Refund.amount_cents, Payment.amount_cents)
        .join(Payment, Payment.id == Refund.payment_id)
        .where(Refund.order_id.in_([order.id for order in orders]),
               Payment.status == PaymentStatus.SUCCEEDED)  # not duplicate payments
    )).all()
    covered = set()
    for order in orders:
        mine = [(status, amount, paid) for order_id, status, amount, paid in rows if order_id == order.id]
        if not mine:
            continue
        paid = mine[0][2]
        committed = sum(amount for status, amount, _ in mine if status not in NOT_PAYING)
        # A refused refund still counts while retrying it fits what is left (retry_refund's own check), until an
        # operator withdraws it: then the buyer is owed the goods again.
        retriable = [amount for status, amount, _ in mine
                     if status == RefundStatus.FAILED and committed + amount <= paid]
        if committed + max(retriable, default=0) >= order.total_cents:
            covered.add(order.id)
    return covered


def _pick_payment(payments: Sequence[Payment], payment_no: str | None) -> Payment:
    if payment_no is not None:
        for payment in payments:
            if payment.payment_no == payment_no:
                if payment.status == PaymentStatus.CREATED:
                    raise RefundNotAllowed(f"payment {payment_no} was never paid")
                return payment
        raise payments_service.UnknownPayment(f"payment {payment_no!r} does not belong to this order")
    for payment in payments:
        if payment.status == PaymentStatus.SUCCEEDED:
            return payment
    raise RefundNotAllowed("this order has no confirmed payment to refund")


async def request_refund(
    *,
    session: AsyncSession,
    order_id: int,
    reason: str,
    requested_by: str,
    amount_cents: int | None = None,
    quantity: int | None = None,
    payment_no: str | None = None,
    request_key: str | None = None,
    refund_revealed_keys: bool = False,
    now: dt.datetime | None = None,
) -> tuple[Refund, bool]:
    """Record a refund (requested) and withdraw the card keys it takes back. Returns (refund, created):
    a repeated request_key returns the first refund instead of refunding twice."""
    now = now or utcnow()
    # Order row lock first, like every writer of orders: concurrent refunds of one order queue here, so
    # the sum checked below cannot be overtaken by another refund committing in between.
    order = await orders_service.lock_order(session=session, order_id=order_id)
    if request_key is not None:
        request_key = _merchant_key(request_key, order.merchant_id)
        existing = await session.scalar(select(Refund).where(Refund.request_key == request_key))
        if existing is not None:
            if (existing.order_id != order.id or (amount_cents is not None and amount_cents != existing.amount_cents)
                    or (quantity is not None and quantity != existing.quantity)):
                raise RefundRequestConflict("this Idempotency-Key was already used for a different refund",
                                            refund_no=existing.refund_no)
            return existing, False
    payment = _pick_payment(await payments_service.list_order_payments(session=session, order_id=order.id),
                            payment_no)
    await _no_refund_awaiting_staff(session, payment)
    duplicate = payment.status == PaymentStatus.DUPLICATE
    held = unrevealed = 0
    if not duplicate and order.status is OrderStatus.DELIVERED and order.delivery_type == DeliveryType.CARD_KEY.value:
        held, unrevealed = await inventory_service.withdrawable_keys(session=session, order_id=order.id)
    plan = plan_refund(
        RefundSituation(
            order_status=order.status, delivery_type=order.delivery_type, unit_price_cents=order.unit_price_cents,
            payment_amount_cents=payment.amount_cents,
            committed_cents=await committed_cents(session, payment.id), duplicate_payment=duplicate,
            held_keys=held, unrevealed_keys=unrevealed, refund_revealed_keys=refund_revealed_keys,
            order_quantity=order.quantity, order_total_cents=order.total_cents,
        ),
        amount_cents=amount_cents, quantity=quantity,
    )
    refund = Refund(
        refund_no=_new_refund_no(), request_key=request_key, order_id=order.id, payment_id=payment.id,
        gateway=payment.gateway, amount_cents=plan.amount_cents, currency=payment.currency, quantity=plan.quantity,
        reason=reason[:500], requested_by=requested_by[:64], status=RefundStatus.REQUESTED.value, attempts=0,
        next_attempt_at=now, created_at=now, updated_at=now,
    )
    session.add(refund)
    await session.flush()
    session.add(RefundEvent(refund_id=refund.id, from_status=None, to_status=refund.status, actor=requested_by[:64],
                            reason=reason[:500], created_at=now))
    if plan.quantity:
        try:
            key_ids = await inventory_service.withdraw_card_keys(
                session=session, order_id=order.id, quantity=plan.quantity, include_revealed=plan.include_revealed,
                now=now)
        except inventory_service.OutOfStock:
            raise RefundNotAllowed("the card keys to take back are no longer with the buyer") from None
        session.add_all([RefundKey(refund_id=refund.id, card_key_id=key_id) for key_id in key_ids])
    await ledger_service.record_refund_requested(session=session, refund=refund, payment=payment, order=order, now=now)
    logger.info("refund %s requested by %s: order %s payment %s %d cents, %d keys withdrawn",
                refund.refund_no, requested_by, order.order_no, payment.payment_no, plan.amount_cents, plan.quantity)
    return refund, True


async def _no_refund_awaiting_staff(session: AsyncSession, payment: Payment) -> None:
    """The shop's rule: no new refund of a payment while one of its refunds waits for staff, refused (to retry or
    withdraw) or stalled (to retry). Both would compete for what is left of the payment, and staff would be
    deciding on a payment they no longer see whole. The caller holds the order lock, which every writer of this
    payment's refunds (the worker recording a refusal or a stall, a retry, a withdrawal) takes first, so no
    refund can become refused or stalled between this check and the new refund's commit."""
    waiting = await session.scalar(
        select(Refund).where(Refund.payment_id == payment.id, or_(
            Refund.status == RefundStatus.FAILED.value,
            (Refund.status == RefundStatus.REQUESTED.value) & Refund.next_attempt_at.is_(None)))
        .order_by(Refund.id).limit(1))
    if waiting is None:
        return
    if waiting.status == RefundStatus.FAILED:
        raise RefundAwaitingStaff(
            f"refund {waiting.refund_no} of this payment was refused by the gateway and waits for staff: "
            "retry or withdraw it before requesting another refund", refund_no=waiting.refund_no,
            refund_status=waiting.status, actions=operator_actions(waiting))
    raise RefundAwaitingStaff(
        f"refund {waiting.refund_no} of this payment got no answer from the gateway and waits for staff: "
        "retry it before requesting another refund", refund_no=waiting.refund_no, refund_status=waiting.status,
        actions=operator_actions(waiting))


async def get_refund(*, session: AsyncSession, refund_no: str, scope: Scope = PLATFORM) -> Refund:
    """A refund by number; another merchant's (through its order) is not found."""
    stmt = select(Refund).where(Refund.refund_no == refund_no)
    if not scope.is_platform:
        stmt = stmt.join(Order, Order.id == Refund.order_id).where(scope.where(Order.merchant_id))
    refund = await session.scalar(stmt)
    if refund is None:
        raise RefundNotFound(f"refund {refund_no!r} not found")
    return refund


async def get_refund_by_id(*, session: AsyncSession, refund_id: int) -> Refund:
    refund = await session.get(Refund, refund_id)
    if refund is None:
        raise RefundNotFound(f"refund {refund_id} not found")
    return refund


async def lock_refund(session: AsyncSession, refund_id: int) -> Refund:
    """The refund row, locked (the caller holds its order's lock first: the shop's lock order)."""
    refund = await session.scalar(
        select(Refund).where(Refund.id == refund_id).with_for_update().execution_options(populate_existing=True))
    if refund is None:
        raise RefundNotFound(f"refund {refund_id} not found")
    return refund


def operator_actions(refund: Refund) -> list[str]:
    """What staff may do with this refund now: "retry" a refused or stalled one (same refund_no), "withdraw" a
    refused one. A refund the worker is still sending or polling needs nobody."""
    if refund.status == RefundStatus.FAILED:
        return ["retry", "withdraw"]
    if refund.status == RefundStatus.REQUESTED and refund.next_attempt_at is None:
        return ["retry"]  # stalled: the worker gave up after AUTOMATIC_ATTEMPTS unanswered sends
    return []


# ---------------------------------------------------------------- execution (outside transactions)

@dataclass(frozen=True, slots=True)
class _Claim:
    refund_id: int
    status: RefundStatus
    gateway: str
    request: RefundRequest


async def _claim(db: Database, refund_id: int, now: dt.datetime) -> _Claim | None:
    async with db.transaction() as session:
        # SKIP LOCKED: a refund another worker is claiming right now is theirs; we do not wait for it.
        refund = await session.scalar(
            select(Refund)
            .where(Refund.id == refund_id, Refund.status.in_([s.value for s in OPEN]),
                   or_(Refund.lease_until.is_(None), Refund.lease_until <= now))
            .with_for_update(skip_locked=True)
            .execution_options(populate_existing=True)
        )
        if refund is None:
            return None
        payment = await payments_service.get_payment(session=session, payment_id=refund.payment_id)
        refund.lease_until = now + LEASE
        refund.attempts += 1
        refund.updated_at = now
        return _Claim(refund.id, RefundStatus(refund.status), refund.gateway, RefundRequest(
            refund_no=refund.refund_no, payment_no=payment.gateway_payment_no,
            gateway_trade_no=payment.gateway_trade_no or "",
            amount_cents=refund.amount_cents, payment_amount_cents=payment.amount_cents, currency=refund.currency,
            reason=refund.reason,
        ))


async def execute_refund(
    *, db: Database, gateways: GatewayRegistry, refund_id: int, now: dt.datetime | None = None
) -> str | None:
    """One attempt at a refund: send it (requested) or ask about it (processing), then record the answer.
    Returns the refund's status afterwards, or None if it was not due or another worker holds it."""
    now = now or utcnow()
    claim = await _claim(db, refund_id, now)
    if claim is None:
        return None
    result: RefundResult | None = None
    error = ""
    try:
        gateway = gateways.lookup(claim.gateway)
        if claim.status is RefundStatus.REQUESTED or gateway.resends_processing_refunds:
            result = await gateway.refund(claim.request)  # the same refund_no: the gateway refunds it once
        else:
            result = await gateway.query_refund(refund_no=claim.request.refund_no,
                                                payment_no=claim.request.payment_no)
    except GatewayUnavailable as exc:
        error = exc.message
    except Exception as exc:  # an unconfigured gateway or a bug: keep the refund open, retry later
        logger.exception("refund %s: unexpected error calling %s", claim.request.refund_no, claim.gateway)
        error = f"{type(exc).__name__}: {exc}"
    return await _record(db, claim, result, error, now)


async def _record(db: Database, claim: _Claim, result: RefundResult | None, error: str, now: dt.datetime) -> str:
    async with db.transaction() as session:
        refund = await session.get(Refund, claim.refund_id)
        assert refund is not None
        order = await orders_service.lock_order(session=session, order_id=refund.order_id)
        refund = await lock_refund(session, claim.refund_id)
        refund.lease_until = None
        if refund.status not in OPEN:
            return refund.status  # another worker recorded the same gateway answer first
        if result is None or (result.state == "succeeded" and result.amount_cents != refund.amount_cents):
            if result is not None:
                error = f"gateway reports {result.amount_cents} cents refunded, we asked {refund.amount_cents}"
                logger.error("refund %s: %s; needs an operator", refund.refund_no, error)
            refund.updated_at = now
            if refund.status == RefundStatus.REQUESTED and refund.attempts >= AUTOMATIC_ATTEMPTS:
                # Stalled: not scheduled again until an operator retries it (the same refund_no, so whatever the
                # gateway did with the unanswered sends, it refunds once). It still covers the order meanwhile.
                refund.next_attempt_at = None
                refund.last_error = f"no answer after {refund.attempts} attempts; retry by hand: {error}"[:500]
                logger.error("refund %s: %s", refund.refund_no, refund.last_error)
                await refund_awaits_staff(session=session, refund=refund, order=order, state="stalled", now=now)
                return refund.status
            refund.last_error = error[:500]
            refund.next_attempt_at = now + _backoff(refund.attempts)
            logger.warning("refund %s attempt %d failed (%s); retry at %s", refund.refund_no, refund.attempts,
                           error, refund.next_attempt_at)
            return refund.status
        if result.gateway_refund_no:
            refund.gateway_refund_no = result.gateway_refund_no
        if result.state == "processing":
            if refund.status == RefundStatus.REQUESTED:
                move_refund(session, refund, RefundStatus.PROCESSING, actor="system", reason=result.detail or None,
                            now=now)
            refund.next_attempt_at = now + _backoff(refund.attempts)
        elif result.state == "failed":
            move_refund(session, refund, RefundStatus.FAILED, actor="system",
                  reason=f"gateway refused: {result.detail}" if result.detail else None, now=now)
            refund.last_error, refund.next_attempt_at = (result.detail or "refused")[:500], None
            await ledger_service.record_refund_failed(session=session, refund=refund, now=now)
            logger.error("refund %s refused by %s: %s", refund.refund_no, claim.gateway, result.detail)
            await refund_awaits_staff(session=session, refund=refund, order=order, state="refused", now=now)
        else:
            move_refund(session, refund, RefundStatus.SUCCEEDED, actor="system", reason=None, now=now)
            refund.completed_at, refund.next_attempt_at, refund.last_error = now, None, None
            payment = await payments_service.get_payment(session=session, payment_id=refund.payment_id)
            await ledger_service.record_refund_paid(session=session, refund=refund, payment=payment, now=now)
            # A duplicate payment is money beyond the order's total: its refund leaves the order as it is.
            if payment.status == PaymentStatus.SUCCEEDED:
                await orders_service.apply_refund(session=session, order=order, amount_cents=refund.amount_cents,
                                                  reason=f"refund {refund.refund_no}: {refund.reason}", now=now)
            logger.info("refund %s succeeded: %d cents back to the buyer of order %s", refund.refund_no,
                        refund.amount_cents, order.order_no)
        return refund.status


async def execute_due_refunds(
    *, db: Database, gateways: GatewayRegistry, now: dt.datetime | None = None, limit: int = 50
) -> int:
    """Background job: send refunds whose next attempt is due and poll processing ones. Returns attempts made."""
    now = now or utcnow()
    async with db.read_session() as session:
        due = (await session.scalars(
            select(Refund.id)
            .where(Refund.status.in_([s.value for s in OPEN]), Refund.next_attempt_at <= now,
                   or_(Refund.lease_until.is_(None), Refund.lease_until <= now))
            .order_by(Refund.next_attempt_at)
            .limit(limit)
        )).all()
    attempts = 0
    for refund_id in due:
        attempts += await execute_refund(db=db, gateways=gateways, refund_id=refund_id, now=now) is not None
    return attempts


# ---------------------------------------------------------------- reading

async def list_refunds(
    *, session: AsyncSession, order_id: int | None = None, status: str | None = None, limit: int = 200,
    scope: Scope = PLATFORM,
) -> list[Refund]:
    stmt = select(Refund).order_by(Refund.id.desc()).limit(limit)
    if not scope.is_platform:
        stmt = stmt.join(Order, Order.id == Refund.order_id).where(scope.where(Order.merchant_id))
    if order_id is not None:
        stmt = stmt.where(Refund.order_id == order_id)
    if status is not None:
        stmt = stmt.where(Refund.status == status)
    return list((await session.scalars(stmt)).all())


async def refund_events(*, session: AsyncSession, refund_ids: Sequence[int]) -> dict[int, list[RefundEvent]]:
    rows = await session.scalars(select(RefundEvent).where(RefundEvent.refund_id.in_(refund_ids))
                                 .order_by(RefundEvent.id))
    events: dict[int, list[RefundEvent]] = {refund_id: [] for refund_id in refund_ids}
    for event in rows.all():
        events[event.refund_id].append(event)
    return events


async def describe_refunds(*, session: AsyncSession, refunds: Sequence[Refund]) -> list[RefundRead]:
    """Refunds as the admin API shows them, each with its audit trail."""
    events = await refund_events(session=session, refund_ids=[refund.id for refund in refunds])
    described = []
    for refund in refunds:
        order = await orders_service.get_order_by_id(session=session, order_id=refund.order_id)
        payment = await payments_service.get_payment(session=session, payment_id=refund.payment_id)
        described.append(RefundRead(
            refund_no=refund.refund_no, order_no=order.order_no, payment_no=payment.payment_no,
            gateway=refund.gateway, status=RefundStatus(refund.status), amount_cents=refund.amount_cents,
            currency=refund.currency, amount_display=format_money(refund.amount_cents, refund.currency),
            quantity=refund.quantity, reason=refund.reason, requested_by=refund.requested_by,
            gateway_refund_no=refund.gateway_refund_no, attempts=refund.attempts,
            next_attempt_at=refund.next_attempt_at, last_error=refund.last_error, created_at=refund.created_at,
            completed_at=refund.completed_at, actions=operator_actions(refund),
            events=[RefundEventRead.model_validate(event) for event in events[refund.id]],
        ))
    return described


async def payment_refunds(*, session: AsyncSession, payment_ids: Sequence[int]) -> dict[int, list[Refund]]:
    """Every refund of these payments, oldest first (for reconciliation)."""
    found: dict[int, list[Refund]] = {payment_id: [] for payment_id in payment_ids}
    if payment_ids:
        rows = await session.scalars(select(Refund).where(Refund.payment_id.in_(payment_ids)).order_by(Refund.id))
        for refund in rows.all():
            found[refund.payment_id].append(refund)
    return found
