"""Reconciliation (对账) with the gateways, for any gateway behind the PaymentGateway interface.

(a) Active query (主动查单): a payment still `created` whose order waits for it (or was cancelled
    meanwhile) is asked about at its gateway with a backoff, for `payment_query_window_hours`. A paid
    answer is applied exactly like a notification (`confirm_payment`), so a lost notification still
    completes the order; a late payment after cancellation delivers if stock remains, else the order
    waits for a refund (the order service decides).
(b) The daily report: every payment created on a shop-local day is checked against its gateway, and
    the differences are listed. A payment the gateway has but we do not is repaired at once by
    confirming it, and the report line says so. Enterprises' online top-ups (and second payments of them)
    went through the same gateways and are checked the same way, by our trade number
    (enterprises/top_up_reconciliation.py).

Gateway calls happen outside database transactions; each applied answer is its own transaction.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import or_, select

from quanyi.db import Database, utcnow
from quanyi.enterprises import top_up_reconciliation
from quanyi.errors import DomainError, InvalidInput
from quanyi.orders.models import Order
from quanyi.orders.state import OrderStatus
from quanyi.payments import service as payments_service
from quanyi.payments.gateway import GatewayRegistry, GatewayUnavailable, PaymentGateway, TradeQuery
from quanyi.payments.models import Payment, PaymentStatus
from quanyi.payments.schemas import Mismatch, ReconciliationReport
from quanyi.refunds import service as refunds_service
from quanyi.refunds.models import Refund
from quanyi.refunds.state import RefundStatus
from quanyi.shoptime import day_bounds, shop_zone

__all__ = ["QueryRound", "query_open_payments", "reconcile_day", "InvalidReconciliationDay",
           "FIRST_QUERY_AFTER", "QUERY_BACKOFF_SECONDS", "PaymentCheck", "recheck_order_payments"]

logger = logging.getLogger(__name__)
# The buyer is probably still on the cashier page; the notification usually arrives within seconds.
FIRST_QUERY_AFTER = dt.timedelta(seconds=60)
QUERY_BACKOFF_SECONDS = (30, 60, 120, 300, 600, 1800, 3600)

ProgressCallback = Callable[[int, int], None]


class InvalidReconciliationDay(InvalidInput):
    code = "invalid_reconciliation_day"


@dataclass(frozen=True, slots=True)
class QueryRound:
    queried: int
    confirmed: int
    unreachable: int


@dataclass(frozen=True, slots=True)
class _Open:
    payment_no: str
    gateway: str
    session_id: str | None


async def _confirm(db: Database, gateway_name: str, trade: TradeQuery, now: dt.datetime) -> str:
    """Apply a paid trade answer like a verified notification; returns the effect (or raises DomainError)."""
    async with db.transaction() as session:
        effect = await payments_service.confirm_payment(
            session=session, gateway_name=gateway_name, notification=trade.as_notification(), now=now)
    return effect.value


async def query_open_payments(
    *, db: Database, gateways: GatewayRegistry, window: dt.timedelta, now: dt.datetime | None = None,
    limit: int = 50,
) -> QueryRound:
    """Background job: ask the gateways about unconfirmed payments that are due for a query."""
    now = now or utcnow()
    async with db.transaction() as session:
        # Claim by pushing next_query_at forward, under FOR UPDATE SKIP LOCKED (PostgreSQL; SQLite has one
        # writer): two workers do not query the same payment in the same round. Were they to, nothing
        # breaks: confirm_payment applies a payment once under the order row lock.
        payments = (await session.scalars(
            select(Payment)
            .join(Order, Order.id == Payment.order_id)
            .where(Payment.status == PaymentStatus.CREATED,
                   Order.status.in_([OrderStatus.PENDING_PAYMENT, OrderStatus.CANCELLED]),
                   # Implied by the window (a payment is only started while its order's reservation runs,
                   # created_at < expires_at: payments.service, payments.balance), and what lets this read only
                   # the orders of the window on their (status, expires_at) index, not every payment ever made.
                   Order.expires_at > now - window,
                   Payment.created_at >= now - window, Payment.created_at <= now - FIRST_QUERY_AFTER,
                   or_(Payment.next_query_at.is_(None), Payment.next_query_at <= now))
            .order_by(Payment.id)
            .limit(limit)
            .with_for_update(of=Payment, skip_locked=True)
        )).all()
        due = []
        for payment in payments:
            payment.query_count += 1
            payment.last_queried_at = now
            delay = QUERY_BACKOFF_SECONDS[min(payment.query_count - 1, len(QUERY_BACKOFF_SECONDS) - 1)]
            payment.next_query_at = now + dt.timedelta(seconds=delay)
            due.append(_Open(payment.payment_no, payment.gateway, payment.gateway_session_id))
    confirmed = unreachable = 0
    for item in due:
        try:
            trade = await gateways.lookup(item.gateway).query_trade(item.payment_no, gateway_session_id=item.session_id)
        except DomainError as exc:  # GatewayUnavailable, or a gateway no longer configured
            unreachable += 1
            logger.warning("trade query of %s at %s failed: %s", item.payment_no, item.gateway, exc.message)
            continue
        if trade.state != "paid":
            continue
        try:
            effect = await _confirm(db, item.gateway, trade, now)
        except (DomainError, ValueError) as exc:
            logger.error("trade query found %s paid at %s but it cannot be applied: %s", item.payment_no,
                         item.gateway, exc)
            continue
        confirmed += 1
        logger.warning("payment %s confirmed by active query (notification lost): %s", item.payment_no, effect)
    return QueryRound(queried=len(due), confirmed=confirmed, unreachable=unreachable)


@dataclass(frozen=True, slots=True)
class PaymentCheck:
    """What asking the gateway about one payment found: `outcome` is confirmed (and `detail` the order's new
    state), not_paid (the gateway's trade state), unreachable, or refused (paid at the gateway but not
    applicable here, e.g. a different amount)."""

    payment_no: str
    gateway: str
    outcome: str
    detail: str


async def recheck_order_payments(*, db: Database, gateways: GatewayRegistry, order_id: int,
                                 now: dt.datetime | None = None) -> list[PaymentCheck]:
    """补单: ask the gateway now about every unconfirmed payment of one order (its notification may have been
    lost) and confirm a paid one exactly as its notification would have (`confirm_payment`, once)."""
    now = now or utcnow()
    async with db.read_session() as session:
        due = [_Open(p.payment_no, p.gateway, p.gateway_session_id) for p in (await session.scalars(
            select(Payment).where(Payment.order_id == order_id, Payment.status == PaymentStatus.CREATED)
            .order_by(Payment.id))).all()]
    checks = []
    for item in due:
        try:
            trade = await gateways.get(item.gateway).query_trade(item.payment_no, gateway_session_id=item.session_id)
        except DomainError as exc:  # GatewayUnavailable, or a gateway no longer configured
            checks.append(PaymentCheck(item.payment_no, item.gateway, "unreachable", exc.message))
            continue
        if trade.state != "paid":
            checks.append(PaymentCheck(item.payment_no, item.gateway, "not_paid", trade.state))
            continue
        try:
            effect = await _confirm(db, item.gateway, trade, now)
        except (DomainError, ValueError) as exc:
            logger.error("recheck found %s paid at %s but it cannot be applied: %s", item.payment_no, item.gateway,
                         exc)
            checks.append(PaymentCheck(item.payment_no, item.gateway, "refused", str(exc)[:300]))
            continue
        logger.warning("payment %s confirmed by an operator's recheck (notification lost): %s", item.payment_no,
                       effect)
        checks.append(PaymentCheck(item.payment_no, item.gateway, "confirmed", effect))
    return checks


# ---------------------------------------------------------------- the daily report

@dataclass(frozen=True, slots=True)
class _Checked:
    payment: Payment
    order_no: str
    refunds: list[Refund]


async def reconcile_day(
    *, db: Database, gateways: GatewayRegistry, day: dt.date, timezone: str, gateway_name: str | None = None,
    progress: ProgressCallback | None = None, now: dt.datetime | None = None,
) -> ReconciliationReport:
    """Check every payment created on `day` (shop time) against its gateway and list the differences."""
    now = now or utcnow()
    start, end = day_bounds(day, shop_zone(timezone))
    if start > now:
        raise InvalidReconciliationDay(f"{day.isoformat()} has not begun yet in {timezone}")
    names = [gateways.get(gateway_name).name] if gateway_name else gateways.names()
    async with db.read_session() as session:
        rows = (await session.execute(
            select(Payment, Order.order_no)
            .join(Order, Order.id == Payment.order_id)
            .where(Payment.created_at >= start, Payment.created_at < end,
                   *([Payment.gateway == gateway_name] if gateway_name else []))
            .order_by(Payment.id)
        )).all()
        refunds = await refunds_service.payment_refunds(session=session, payment_ids=[p.id for p, _ in rows])
    checked = [_Checked(payment, order_no, refunds[payment.id]) for payment, order_no in rows]
    mismatches: list[Mismatch] = []
    refunds_checked = 0
    for done, item in enumerate(checked, start=1):
        refunds_checked += len(item.refunds)
        mismatches.extend(await _check_payment(db, gateways, item, now))
        if progress is not None:
            progress(done, len(checked))
    # Enterprises' online top-ups went through the same gateways (the same clearing accounts in the ledger).
    top_ups = await top_up_reconciliation.check_top_ups(db=db, gateways=gateways, start=start, end=end,
                                                        gateway_name=gateway_name)
    return ReconciliationReport(date=day, timezone=timezone, gateways=names, payments_checked=len(checked),
                                refunds_checked=refunds_checked, mismatches=[*mismatches, *top_ups.mismatches],
                                top_ups_checked=top_ups.checked, top_ups=top_ups.trades)


def _line(item: _Checked, kind: str, ours: str, theirs: str, detail: str, *, refund_no: str | None = None,
          repaired: bool = False) -> Mismatch:
    p = item.payment
    return Mismatch(kind=kind, gateway=p.gateway, payment_no=p.payment_no, order_no=item.order_no,  # type: ignore[arg-type]
                    refund_no=refund_no, ours=ours, theirs=theirs, repaired=repaired, detail=detail)


async def _check_payment(db: Database, gateways: GatewayRegistry, item: _Checked, now: dt.datetime) -> list[Mismatch]:
    p = item.payment
    ours = f"{p.status} {p.amount_cents} {p.currency}"
    try:
        gateway = gateways.lookup(p.gateway)
    except DomainError as exc:
        return [_line(item, "unchecked", ours, "?", exc.message)]
    if p.duplicate_of is not None:
        # A second transaction of an already paid payment: the gateway reports the payment under the first
        # one, so there is no trade of its own to compare; its refunds are still checked.
        return await _check_refunds(gateway, item)
    try:
        trade = await gateway.query_trade(p.payment_no, gateway_session_id=p.gateway_session_id)
    except DomainError as exc:
        unchecked = _line(item, "unchecked", ours, "?", f"could not ask {p.gateway}: {exc.message}")
        return [unchecked, *await _check_refunds(gateway, item)]
    theirs = (f"{trade.state} {trade.amount_cents} {trade.currency} {trade.gateway_trade_no}"
              if trade.state == "paid" else trade.state)
    lines: list[Mismatch] = []
    if trade.state == "paid":
        if (trade.amount_cents, trade.currency) != (p.amount_cents, p.currency):
            lines.append(_line(item, "amount_mismatch", ours, theirs,
                               "the gateway took a different amount than we asked for; not applied"))
        elif p.status == PaymentStatus.CREATED:
            try:
                effect = await _confirm(db, p.gateway, trade, now)
                lines.append(_line(item, "paid_not_recorded", ours, theirs,
                                   f"repaired: payment confirmed now, order {effect}", repaired=True))
            except (DomainError, ValueError) as exc:
                lines.append(_line(item, "paid_not_recorded", ours, theirs, f"could not be confirmed: {exc}"))
        elif p.gateway_trade_no != trade.gateway_trade_no:
            lines.append(_line(item, "trade_mismatch", f"{ours} {p.gateway_trade_no}", theirs,
                               "we recorded another gateway transaction for this payment"))
    elif p.status != PaymentStatus.CREATED:
        lines.append(_line(item, "not_paid_at_gateway", ours, theirs,
                           "we recorded this payment as paid but the gateway has no paid trade"))
    lines.extend(await _check_refunds(gateway, item))
    return lines


async def _check_refunds(gateway: PaymentGateway, item: _Checked) -> list[Mismatch]:
    lines = []
    for refund in item.refunds:
        currency = item.payment.currency  # a refund's, like each payment line's: the money in its currency
        ours = f"{refund.status} {refund.amount_cents} {currency}"
        try:
            result = await gateway.query_refund(refund_no=refund.refund_no, payment_no=item.payment.gateway_payment_no)
        except GatewayUnavailable as exc:
            lines.append(_line(item, "unchecked", ours, "?", f"refund query failed: {exc.message}",
                               refund_no=refund.refund_no))
            continue
        theirs = f"{result.state} {result.amount_cents} {currency}"
        gateway_paid = result.state == "succeeded"
        if refund.status == RefundStatus.SUCCEEDED and not gateway_paid:
            detail = "we recorded the refund as paid out but the gateway did not refund it"
        elif refund.status != RefundStatus.SUCCEEDED and gateway_paid:
            detail = ("the gateway refunded it; the refund loop records it on its next attempt"
                      if refund.status in (RefundStatus.REQUESTED, RefundStatus.PROCESSING)
                      else "the gateway refunded a refund we withdrew: the buyer has the money and the goods"
                      if refund.status == RefundStatus.WITHDRAWN
                      else "the gateway refunded a refund we recorded as failed")
        elif gateway_paid and result.amount_cents != refund.amount_cents:
            detail = "refunded amounts differ"
        elif refund.status == RefundStatus.PROCESSING and result.state == "failed":
            detail = "the gateway reports the refund failed; the refund loop records it on its next attempt"
        else:
            continue
        lines.append(_line(item, "refund_mismatch", ours, theirs, detail, refund_no=refund.refund_no))
    return lines
