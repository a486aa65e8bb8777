"""A refund that did not go through (退款异常处理): what staff do with one the gateway refused, or one the worker
stopped sending after AUTOMATIC_ATTEMPTS unanswered tries.

- retry: send it again with the same refund_no (the gateway's idempotency key), so whatever the gateway did with
  earlier sends, the buyer is refunded once. The worker takes it from there, with a fresh backoff and bound.
- withdraw: only a refused (failed) one, whose refund_no the gateway said no to: no money went back and none will
  by it; never the last one covering an order that cannot be delivered (refund pending: the buyer would get
  nothing). Its amount is free again; card keys it took back are the buyer's again; and if the order is paid and no
  longer covered by refunds, its supplier job (abandoned while the refund covered the order) is opened again, so
  the buyer gets the goods. A refund without an answer cannot be withdrawn: the gateway may have paid it.

Both take the order row lock first, like every writer of refunds and orders: an operator's two clicks, two
operators, the worker recording a gateway answer and a supplier's late success queue there, so a refund is
never both retried and withdrawn, and an order never both refunded and delivered.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from quanyi.db import utcnow
from quanyi.errors import Conflict
from quanyi.inventory import service as inventory_service
from quanyi.ledger import service as ledger_service
from quanyi.orders import service as orders_service
from quanyi.orders.state import OrderStatus
from quanyi.payments import service as payments_service
from quanyi.payments.models import PaymentStatus
from quanyi.refunds import service as refunds_service
from quanyi.refunds.models import Refund, RefundEvent, RefundKey
from quanyi.refunds.policy import RefundExceedsPayment, RefundNotAllowed
from quanyi.refunds.state import OPEN, IllegalRefundTransition, RefundStatus, check_transition
from quanyi.scope import PLATFORM, Scope
from quanyi.suppliers import service as suppliers_service

__all__ = ["RefundNotStalled", "Withdrawal", "retry_refund", "withdraw_refund", "withdrawal_summary"]

logger = logging.getLogger(__name__)


class RefundNotStalled(Conflict):
    code = "refund_not_stalled"


@dataclass(frozen=True, slots=True)
class Withdrawal:
    refund: Refund
    keys_returned: int  # card keys handed back to the buyer
    delivery_resumed: bool  # the order's supplier job was opened again


async def retry_refund(
    *, session: AsyncSession, refund_no: str, actor: str, reason: str, now: dt.datetime | None = None,
    scope: Scope = PLATFORM,
) -> Refund:
    """Send a refused refund again (same refund_no), if what is left of its payment still covers it; or schedule
    a stalled one again. Either way its attempts (and so its backoff and bound) start afresh."""
    now = now or utcnow()
    refund = await refunds_service.get_refund(session=session, refund_no=refund_no, scope=scope)
    await orders_service.lock_order(session=session, order_id=refund.order_id)
    refund = await refunds_service.lock_refund(session, refund.id)
    if refund.status == RefundStatus.REQUESTED:
        if refund.next_attempt_at is not None:
            raise RefundNotStalled(f"refund {refund.refund_no} is being sent by the worker; nothing to retry yet",
                                   next_attempt_at=refund.next_attempt_at.isoformat())
        # Stalled: still requested (its ledger request stands), only scheduled again. The event says who did it.
        session.add(RefundEvent(refund_id=refund.id, from_status=refund.status, to_status=refund.status,
                                actor=actor[:64], reason=reason[:500], created_at=now))
    else:
        check_transition(RefundStatus(refund.status), RefundStatus.REQUESTED)
        payment = await payments_service.get_payment(session=session, payment_id=refund.payment_id)
        if await refunds_service.committed_cents(session, payment.id) + refund.amount_cents > payment.amount_cents:
            raise RefundExceedsPayment("other refunds have used this payment up since; this one cannot be retried")
        refunds_service.move_refund(session, refund, RefundStatus.REQUESTED, actor=actor, reason=reason, now=now)
        order = await orders_service.get_order_by_id(session=session, order_id=refund.order_id)
        await ledger_service.record_refund_requested(session=session, refund=refund, payment=payment, order=order,
                                                     now=now)
    refund.attempts, refund.next_attempt_at, refund.last_error, refund.lease_until = 0, now, None, None
    refund.updated_at = now
    logger.info("refund %s retried by %s: %s", refund.refund_no, actor, reason)
    return refund


async def withdraw_refund(
    *, session: AsyncSession, refund_no: str, actor: str, reason: str, now: dt.datetime | None = None,
    scope: Scope = PLATFORM,
) -> Withdrawal:
    """Give up a refused refund: the buyer keeps (or gets) the goods instead of the money. Keys it took back are
    handed back; a paid order no longer covered by refunds has its delivery resumed."""
    now = now or utcnow()
    refund = await refunds_service.get_refund(session=session, refund_no=refund_no, scope=scope)
    # Order lock first: a retry, the worker's record of a gateway answer, a supplier's late success wait here.
    order = await orders_service.lock_order(session=session, order_id=refund.order_id)
    refund = await refunds_service.lock_refund(session, refund.id)
    if refund.status in OPEN:
        raise IllegalRefundTransition(
            f"refund {refund.refund_no} is {refund.status}: the gateway has not refused it and may still pay it, "
            "so it cannot be withdrawn (only a refused one can)", current=refund.status,
            target=RefundStatus.WITHDRAWN.value)
    check_transition(RefundStatus(refund.status), RefundStatus.WITHDRAWN)
    payment = await payments_service.get_payment(session=session, payment_id=refund.payment_id)
    if payment.status == PaymentStatus.DUPLICATE:
        raise RefundNotAllowed("a duplicate payment's money is not the order's: retry its refund instead")
    refunds_service.move_refund(session, refund, RefundStatus.WITHDRAWN, actor=actor, reason=reason, now=now)
    refund.next_attempt_at = refund.lease_until = None
    # The ledger reversed its request when the gateway refused it: nothing is payable by it any more.
    key_ids = list((await session.scalars(select(RefundKey.card_key_id).where(RefundKey.refund_id == refund.id))).all())
    returned = await inventory_service.return_withdrawn_keys(session=session, order_id=order.id, key_ids=key_ids)
    if key_ids:  # free for a later refund of the same keys (a key is taken back by one refund at a time)
        await session.execute(delete(RefundKey).where(RefundKey.refund_id == refund.id))
    await session.flush()  # the sessions do not autoflush: full_refund_pending must read the refund as withdrawn
    covered = await refunds_service.full_refund_pending(session=session, order=order)
    if order.status is OrderStatus.REFUND_PENDING and not covered:
        # Paid and undeliverable: it only goes on to refunded, so the buyer would get neither the money nor the goods.
        # (Raised inside the caller's transaction, which rolls back.)
        raise RefundNotAllowed(f"order {order.order_no} cannot be delivered (refund pending): withdrawing refund "
                               f"{refund.refund_no} would leave the buyer neither the money nor the goods; retry it, "
                               "or refund the order another way first", order_status=order.status.value)
    resumed = False
    if order.status is OrderStatus.PAID and not covered:
        resumed = await suppliers_service.resume_fulfilment(
            session=session, order=order, reason=f"refund {refund.refund_no} withdrawn: delivery resumed", now=now)
    logger.warning("refund %s withdrawn by %s (%s): %d keys back to the buyer, delivery %s", refund.refund_no,
                   actor, reason, returned, "resumed" if resumed else "unchanged")
    return Withdrawal(refund=refund, keys_returned=returned, delivery_resumed=resumed)


def withdrawal_summary(done: Withdrawal, reason: str) -> str:
    """The staff audit log's line for a withdrawal (the console's and the API's)."""
    return (f"{done.keys_returned} keys back, delivery {'resumed' if done.delivery_resumed else 'unchanged'}: "
            f"{reason}")
