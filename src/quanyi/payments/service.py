"""Payments: open a checkout for an order, and turn a verified gateway notification into a paid order.

A notification is believed only after (1) its gateway verified the signature and timestamp,
(2) it names a payment we created at that gateway, (3) its amount and currency equal what we asked
for. It then pays the order exactly once, however many times and however concurrently it arrives:
the order row lock serializes deliveries, the payment's status records that it was applied, and a
unique (gateway, trade no) constraint stops one gateway transaction from paying two payments.
"""

from __future__ import annotations

import base64
import datetime as dt
import logging
import secrets
import weakref
from collections import namedtuple
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Row, and_, bindparam, insert, literal, select, text, true
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from quanyi import db_direct, sqlite_trip
from quanyi.db import Database, utcnow
from quanyi.errors import Conflict, DomainError, NotFound
from quanyi.ledger import service as ledger_service
from quanyi.orders import service as orders_service
from quanyi.orders.models import Order
from quanyi.orders.numbers import normalize_order_no
from quanyi.orders.service import PaymentEffect
from quanyi.orders.state import OrderStatus
from quanyi.payments import express
from quanyi.payments.gateway import Checkout, CheckoutMode, CheckoutRequest, PaymentGateway, PaymentNotification
from quanyi.payments.models import OPEN_PAYMENT_KEY, OPEN_PAYMENT_WHERE, GatewayEvent, Payment, PaymentStatus

__all__ = [
    "UnknownPayment", "PaymentAmountMismatch", "PaymentConflict", "NotificationOutcome",
    "callback_urls", "start_payment", "StartedPayment", "latest_qr_checkout", "receive_notification",
    "handle_notification",
    "confirm_payment", "list_order_payments", "get_payment", "new_payment_no",
]

logger = logging.getLogger(__name__)
_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


class UnknownPayment(NotFound):
    code = "unknown_payment"


class PaymentAmountMismatch(DomainError):
    code = "payment_amount_mismatch"


class PaymentConflict(Conflict):
    code = "payment_conflict"


NotificationOutcome = PaymentEffect | None  # None: notification of a non-successful trade, nothing to do


def callback_urls(base_url: str, gateway_name: str, order_no: str) -> tuple[str, str]:
    """Where a gateway sends its notification, and where it sends the buyer back after paying."""
    return f"{base_url}/payments/{gateway_name}/notify", f"{base_url}/orders/{order_no}?from=cashier"


_FROM_BASE32 = bytes.maketrans(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", _ALPHABET.encode())


def new_payment_no() -> str:
    # 18 random characters of _ALPHABET (5 random bits each): base32 of random bytes, translated in C.
    return "PY" + base64.b32encode(secrets.token_bytes(15)).translate(_FROM_BASE32)[:18].decode()


_new_payment_no = new_payment_no


@dataclass(frozen=True, slots=True)
class StartedPayment:
    payment_no: str
    gateway: str
    amount_cents: int
    currency: str
    checkout: Checkout


_orders, _payments = Order.__table__, Payment.__table__
# The order by its number, row-locked (every writer of orders locks it first), with its open payment at the gateway
# for the order's amount if it has one: one statement.
_PAYABLE = (
    select(_orders.c.id, _orders.c.status, _orders.c.expires_at, _orders.c.total_cents, _orders.c.currency,
           _orders.c.product_name, _orders.c.sku_name, _orders.c.quantity,
           _payments.c.payment_no, _payments.c.amount_cents, _payments.c.currency.label("payment_currency"))
    .select_from(_orders.outerjoin(_payments, and_(
        _payments.c.order_id == _orders.c.id, _payments.c.gateway == bindparam("gateway"),
        _payments.c.status == PaymentStatus.CREATED.value, _payments.c.amount_cents == _orders.c.total_cents)))
    .where(_orders.c.order_no == bindparam("order_no"))
    .order_by(_payments.c.id).limit(1)
    .with_for_update(of=_orders)
)
_NEW_PAYMENT = insert(_payments)  # built once: its compiled form is cached per set of columns given
# PostgreSQL: the open payment looked up by the order's id (a LATERAL subquery: the order_id index, whatever the
# statistics say; as a join PostgreSQL could scan every payment at the gateway, ~350 buffers per call in a flash
# sale without statistics yet), then the same locked read and, in the same statement, the new payment when the order
# is payable and has no open one (a data-modifying CTE; the conditions are the checks `_prepare_payment` makes of
# the row it returns).
# Its snapshot is taken before it waits for the order's lock: a payment that a concurrent start inserted meanwhile is
# not in it, and is met on the open payment's unique index instead, whose row (now committed) ON CONFLICT answers.
_open_payment = (
    select(_payments.c.payment_no, _payments.c.amount_cents, _payments.c.currency.label("payment_currency"))
    .where(_payments.c.order_id == _orders.c.id, _payments.c.gateway == bindparam("gateway"),
           _payments.c.status == PaymentStatus.CREATED.value, _payments.c.amount_cents == _orders.c.total_cents)
    .order_by(_payments.c.id).limit(1).lateral("open_payment"))
_payable = (
    select(_orders.c.id, _orders.c.status, _orders.c.expires_at, _orders.c.total_cents, _orders.c.currency,
           _orders.c.product_name, _orders.c.sku_name, _orders.c.quantity,
           _open_payment.c.payment_no, _open_payment.c.amount_cents, _open_payment.c.payment_currency)
    .select_from(_orders.outerjoin(_open_payment, true()))
    .where(_orders.c.order_no == bindparam("order_no"))
    .with_for_update(of=_orders)
).cte("payable")
_new_payment = pg_insert(_payments).from_select(
    ["payment_no", "order_id", "gateway", "amount_cents", "currency", "status", "created_at", "updated_at",
     "query_count"],
    select(bindparam("b_payment_no", type_=_payments.c.payment_no.type), _payable.c.id,
           bindparam("gateway", type_=_payments.c.gateway.type), _payable.c.total_cents, _payable.c.currency,
           literal(PaymentStatus.CREATED.value), bindparam("b_now", type_=_payments.c.created_at.type),
           bindparam("b_now"), literal(0))
    .where(_payable.c.payment_no.is_(None), _payable.c.status == OrderStatus.PENDING_PAYMENT.value,
           _payable.c.expires_at > bindparam("b_now")),
).on_conflict_do_update(  # a no-op update: ON CONFLICT DO NOTHING would return no row
    index_elements=list(OPEN_PAYMENT_KEY), index_where=text(OPEN_PAYMENT_WHERE),
    set_={"status": _payments.c.status},
).returning(_payments.c.payment_no).cte("new_payment")
_PG_PAYABLE_OR_NEW = (select(_payable, _new_payment.c.payment_no.label("new_payment_no"))
                      .select_from(_payable.outerjoin(_new_payment, true())))
_PG_PAYABLE_OR_NEW_DIRECT = db_direct.Direct(_PG_PAYABLE_OR_NEW)  # on the driver (quanyi.db_direct)
_Payable = namedtuple("_Payable", list(_PG_PAYABLE_OR_NEW.selected_columns.keys()))  # type: ignore[misc]


async def _prepare_payment(
    *, session: AsyncSession, order_no: str, gateway: PaymentGateway, notify_url: str, return_url: str,
    mode: CheckoutMode, buyer_ip: str | None, now: dt.datetime,
) -> CheckoutRequest:
    """Check the order can be paid and find or create its payment at this gateway (one short transaction)."""
    canonical = normalize_order_no(order_no)
    postgresql = session.bind.dialect.name == "postgresql"
    order = None
    if canonical is not None and postgresql:  # one statement: locked, checked and the payment inserted
        found = await db_direct.fetch_one(session, _PG_PAYABLE_OR_NEW_DIRECT, {
            "order_no": canonical, "gateway": gateway.name, "b_payment_no": _new_payment_no(), "b_now": now})
        order = None if found is None else _Payable._make(found)
    elif canonical is not None:
        connection = await session.connection()
        order = (await connection.execute(_PAYABLE, {"order_no": canonical, "gateway": gateway.name})).first()
    if order is None:
        raise orders_service.OrderNotFound("order not found")
    if order.status != OrderStatus.PENDING_PAYMENT.value:
        raise orders_service.OrderNotPayable("this order is not awaiting payment",
                                            order_status=OrderStatus(order.status).value)
    if order.expires_at <= now:
        raise orders_service.OrderNotPayable("the reservation for this order has expired; place a new order")
    payment_no, amount_cents, currency = order.payment_no, order.amount_cents, order.payment_currency
    if payment_no is None and postgresql:
        # Inserted by the statement above, whose conditions are the checks just made.
        payment_no, amount_cents, currency = order.new_payment_no, order.total_cents, order.currency
        assert payment_no is not None
    elif payment_no is None:
        payment_no, amount_cents, currency = _new_payment_no(), order.total_cents, order.currency
        # One trip to aiosqlite's thread (quanyi.sqlite_trip), not the three or four of `connection.execute`.
        await sqlite_trip.run(await session.connection(), [sqlite_trip.Step(_NEW_PAYMENT, {
            "payment_no": payment_no, "order_id": order.id, "gateway": gateway.name, "amount_cents": amount_cents,
            "currency": currency, "status": PaymentStatus.CREATED.value, "created_at": now, "updated_at": now,
            "query_count": 0})])
    return CheckoutRequest(
        payment_no=payment_no, amount_cents=amount_cents, currency=currency,
        subject=f"{order.product_name} {order.sku_name} x{order.quantity}"[:120],
        notify_url=notify_url, return_url=return_url, mode=mode, expires_at=order.expires_at, buyer_ip=buyer_ip,
    )


async def start_payment(
    *,
    db: Database,
    order_no: str,
    gateway: PaymentGateway,
    notify_url: str,
    return_url: str,
    mode: CheckoutMode = "page",
    buyer_ip: str | None = None,
    now: dt.datetime | None = None,
) -> StartedPayment:
    """Open (or reopen) a checkout for an unpaid order at a gateway.

    Three steps, because the gateway call is a network round trip that must not hold the order row lock
    (or, on SQLite, the shop's single writer lock): record the payment and commit; ask the gateway for a
    checkout outside any transaction (GatewayUnavailable propagates; the payment stays `created` and is
    reused next time); remember what the gateway returned for later queries and the QR page.
    """
    now = now or utcnow()
    # On PostgreSQL `_prepare_payment` is one statement (locked, checked, the payment inserted only when every check
    # it makes after would pass): atomic alone, in autocommit without BEGIN and COMMIT, on the driver
    # (quanyi.db_driven). SQLite: a transaction.
    async with db.driver_single_statements() as session:
        request = await _prepare_payment(session=session, order_no=order_no, gateway=gateway, notify_url=notify_url,
                                         return_url=return_url, mode=mode, buyer_ip=buyer_ip, now=now)
    checkout = await gateway.create_checkout(request)
    if checkout.gateway_session_id or checkout.qr_code:
        async with db.transaction() as session:
            payment = await session.scalar(select(Payment).where(Payment.payment_no == request.payment_no))
            assert payment is not None
            payment.gateway_session_id = checkout.gateway_session_id or payment.gateway_session_id
            payment.checkout_qr_code = checkout.qr_code
    return StartedPayment(payment_no=request.payment_no, gateway=gateway.name, amount_cents=request.amount_cents,
                          currency=request.currency, checkout=checkout)


async def latest_qr_checkout(*, session: AsyncSession, order_id: int, gateway_name: str) -> Payment | None:
    """The open payment of an order at a gateway whose checkout is a QR code to scan, if any."""
    return await session.scalar(
        select(Payment).where(Payment.order_id == order_id, Payment.gateway == gateway_name,
                              Payment.status == PaymentStatus.CREATED, Payment.checkout_qr_code.is_not(None))
        .order_by(Payment.id.desc()).limit(1)
    )


async def receive_notification(*, db: Database, gateway: PaymentGateway, headers: Mapping[str, str], body: bytes,
                               now: dt.datetime | None = None) -> NotificationOutcome:
    """Verify a gateway's notification and apply it in a unit of work of its own (the notify route and the purchase
    lane). Raises (and changes nothing) if it is not believable.

    On PostgreSQL the usual successful notification is applied by one statement (`express.lock_payment`: locked,
    checked and delivered), which runs in autocommit, without BEGIN and COMMIT: a statement is atomic alone and
    holds its row locks to its end, each of its writes is conditioned on the rows it locked, and what follows it in
    Python only reads its row (the refusals and "already paid" it finds wrote nothing). A notification the statement
    did not finish (an order it declined: a coupon for new members only, enabled risk rules, reserved keys missing, a
    late or a second payment, not a card-key order) wrote nothing: it is applied again from the start in a
    transaction, the general way; so is one with a gateway event id (its row is written with the payment) and any on
    SQLite."""
    now = now or utcnow()
    notification = gateway.verify_notification(headers=headers, body=body, now=now)
    eligible = notification.event_id is None and notification.succeeded and not db.is_sqlite
    if eligible and db not in _DECLINED_LAST and express.likely_done_while_locking(db.session_info):
        async with db.driver_single_statements() as session:  # its one statement on the driver (quanyi.db_driven)
            effect = await _confirm_in_one_statement(session=session, gateway_name=gateway.name,
                                                     notification=notification, now=now)
        if effect is not None:
            return effect
    async with db.transaction() as session:
        effect = await _apply_notification(session=session, gateway_name=gateway.name, notification=notification,
                                           now=now)
    if eligible and session.info.get(_DONE_WHILE_LOCKING):
        _DECLINED_LAST.discard(db)
    elif eligible:
        _DECLINED_LAST.add(db)
    return effect


# The databases whose last notification the lock statement did not finish alone (PostgreSQL): the next one goes
# straight to a transaction, not paying for a statement that would most likely decline again (a shop selling direct
# recharges, say; orders with coupons, points or a level price are delivered by the statement like plain ones). A
# guess only; `receive_notification` is right either way.
_DECLINED_LAST: weakref.WeakSet[Database] = weakref.WeakSet()
_DONE_WHILE_LOCKING = "quanyi.payments.done_while_locking"  # in a session's info: the lock statement finished it


async def handle_notification(
    *,
    session: AsyncSession,
    gateway: PaymentGateway,
    headers: Mapping[str, str],
    body: bytes,
    now: dt.datetime | None = None,
) -> NotificationOutcome:
    """Verify a gateway's notification and apply it in the caller's transaction. Raises (and changes nothing) if it
    is not believable."""
    now = now or utcnow()
    notification = gateway.verify_notification(headers=headers, body=body, now=now)
    return await _apply_notification(session=session, gateway_name=gateway.name, notification=notification, now=now)


async def _apply_notification(*, session: AsyncSession, gateway_name: str, notification: PaymentNotification,
                              now: dt.datetime) -> NotificationOutcome:
    if notification.event_id is not None:
        seen = await session.scalar(select(GatewayEvent.id).where(
            GatewayEvent.gateway == gateway_name, GatewayEvent.event_id == notification.event_id))
        if seen is not None:
            logger.info("%s event %s already processed; ignoring the repeat", gateway_name, notification.event_id)
            return PaymentEffect.ALREADY_PAID if notification.succeeded else None
        # A concurrent copy of the same event loses on the unique constraint and rolls back whole.
        session.add(GatewayEvent(gateway=gateway_name, event_id=notification.event_id,
                                 payment_no=notification.payment_no, received_at=now))
        await session.flush()
    if not notification.succeeded:
        return None
    return await confirm_payment(session=session, gateway_name=gateway_name, notification=notification, now=now)


async def _locked_and_checked(*, session: AsyncSession, gateway_name: str, notification: PaymentNotification,
                              payer: str | None, now: dt.datetime) -> tuple[Row[Any], PaymentEffect | None]:
    """`express.lock_payment`'s row for a verified successful payment and the checks of it: raises a refusal,
    answers ALREADY_PAID for a payment already applied, or None to apply it now."""
    # One statement finds the payment and its order and locks both (order first, then payment: the same order every
    # writer of orders uses), with the payment (if any) already carrying this gateway transaction; on PostgreSQL
    # the same statement delivers the usual order when every check below would pass (express.lock_payment).
    found = await express.lock_payment(
        session=session, gateway_name=gateway_name, payment_no=notification.payment_no,
        trade_no=notification.gateway_trade_no,
        attempt=express.Attempt(amount_cents=notification.amount_cents, currency=notification.currency,
                                paid_at=notification.paid_at or now, payer_account=payer, now=now))
    if found is None:
        raise UnknownPayment(f"no {gateway_name} payment {notification.payment_no!r}")
    if notification.amount_cents != found.amount_cents or notification.currency != found.currency:
        raise PaymentAmountMismatch(
            f"notification says {notification.amount_cents} {notification.currency}, "
            f"payment {found.payment_no} expects {found.amount_cents} {found.currency}"
        )
    if found.payment_status != PaymentStatus.CREATED and found.gateway_trade_no == notification.gateway_trade_no:
        return found, PaymentEffect.ALREADY_PAID  # the same notification again: already applied
    if found.other_payment_no is not None:
        if found.other_order_id == found.order_id and found.other_amount_cents == notification.amount_cents:
            return found, PaymentEffect.ALREADY_PAID  # this transaction is already on record for this order
        raise PaymentConflict(f"gateway transaction {notification.gateway_trade_no} already paid "
                              f"{found.other_payment_no}")
    return found, None


def _payer(gateway_name: str, notification: PaymentNotification) -> str | None:
    # The payer account (per gateway: ids of different gateways never collide) feeds per-payer risk rules.
    return f"{gateway_name}:{notification.payer_account}" if notification.payer_account else None


async def _confirm_in_one_statement(*, session: AsyncSession, gateway_name: str, notification: PaymentNotification,
                                    now: dt.datetime) -> PaymentEffect | None:
    """`confirm_payment` as far as `express.lock_payment`'s one statement (PostgreSQL) takes it, in autocommit: its
    effect when the statement delivered the order or the checks of its row settle the notification; None when the
    order needs more than that statement (then it wrote nothing, and its locks ended with it)."""
    payer = _payer(gateway_name, notification)
    found, effect = await _locked_and_checked(session=session, gateway_name=gateway_name, notification=notification,
                                              payer=payer, now=now)
    if effect is not None:
        return effect
    if not (getattr(found, "attempted", False) and found.delivered):
        return None
    # Delivered by the statement: `deliver` only records what follows its commit (the ledger worker's kick, risk
    # counters kept outside the database), sending no statement.
    await express.deliver(session=session, found=found, trade_no=notification.gateway_trade_no,
                          paid_at=notification.paid_at or now, payer_account=payer, now=now)
    return PaymentEffect.DELIVERED


async def confirm_payment(
    *, session: AsyncSession, gateway_name: str, notification: PaymentNotification, now: dt.datetime | None = None
) -> PaymentEffect:
    """Apply a verified successful payment to its order, exactly once."""
    now = now or utcnow()
    payer = _payer(gateway_name, notification)
    found, effect = await _locked_and_checked(session=session, gateway_name=gateway_name, notification=notification,
                                              payer=payer, now=now)
    if effect is not None or (getattr(found, "attempted", False) and found.delivered):
        session.info[_DONE_WHILE_LOCKING] = True  # for `receive_notification`: no more than the lock statement
    if effect is not None:
        return effect
    if await express.takes_express_lane(session=session, found=found, payer_account=payer) and await express.deliver(
            session=session, found=found, trade_no=notification.gateway_trade_no,
            paid_at=notification.paid_at or now, payer_account=payer, now=now):
        return PaymentEffect.DELIVERED
    # The general way, with the ORM's objects of the rows locked above.
    order = await orders_service.lock_order(session=session, order_id=found.order_id)
    payment = await session.scalar(select(Payment).where(Payment.id == found.payment_id)
                                   .execution_options(populate_existing=True))
    assert payment is not None
    if payment.status != PaymentStatus.CREATED:
        # A second, real transaction for a payment that is already paid (the buyer paid two checkout sessions
        # of it). The money exists: keep it on record as a duplicate so it can be refunded, never drop it.
        duplicate = Payment(
            payment_no=_new_payment_no(), order_id=payment.order_id, gateway=gateway_name,
            amount_cents=notification.amount_cents, currency=notification.currency, status=PaymentStatus.DUPLICATE,
            gateway_trade_no=notification.gateway_trade_no, paid_at=notification.paid_at or now,
            created_at=now, updated_at=now, duplicate_of=payment.payment_no,
        )
        session.add(duplicate)
        await session.flush()
        await ledger_service.record_payment_received(session=session, order=order, payment=duplicate, now=now)
        logger.warning("payment %s paid again by gateway transaction %s; recorded as duplicate %s for refund",
                       payment.payment_no, notification.gateway_trade_no, duplicate.payment_no)
        return PaymentEffect.ALREADY_PAID

    payment.gateway_trade_no = notification.gateway_trade_no
    payment.paid_at = notification.paid_at or now
    payment.updated_at = now
    effect = await orders_service.apply_payment(session=session, order=order, now=now, payer_account=payer,
                                                defer_ledger=True)
    if effect is PaymentEffect.ALREADY_PAID:
        # The buyer paid twice (two cashier sessions). Keep the money on record for a refund.
        payment.status = PaymentStatus.DUPLICATE
        await ledger_service.record_payment_received(session=session, order=order, payment=payment, now=now)
        logger.warning("order %s paid twice; payment %s recorded as duplicate for refund",
                       order.order_no, payment.payment_no)
    else:
        payment.status = PaymentStatus.SUCCEEDED
        # The buyer's credit and what the order's new status means for the books, posted by the ledger
        # worker from a row written in this transaction (ledger.deferred): nothing paid goes unrecorded.
        await ledger_service.defer_payment_postings(session=session, order=order, payment=payment, now=now)
    return effect


async def list_order_payments(*, session: AsyncSession, order_id: int) -> list[Payment]:
    rows = await session.scalars(select(Payment).where(Payment.order_id == order_id).order_by(Payment.id))
    return list(rows.all())


async def get_payment(*, session: AsyncSession, payment_id: int) -> Payment:
    payment = await session.get(Payment, payment_id)
    if payment is None:
        raise UnknownPayment(f"no payment with id {payment_id}")
    return payment
