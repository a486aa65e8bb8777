"""Paying an order from a customer's prepaid balance (余额支付): the `balance` payment method.

Resellers (open API) and enterprise customers pay this way. It is a payment like any other, so delivery,
supplier routing, ledger postings and risk control stay one code path: `pay_order_from_balance` records a
payment at the internal `balance` gateway, takes the money with `ledger.charge_customer` (one conditional
UPDATE, at most once per order) and applies it through `payments.service.confirm_payment`, the function
every gateway's verified notification goes through, all in the caller's transaction. Refunds of such a
payment go through the refunds feature like any refund; the balance gateway's `refund` credits the account.
Buyers never see this gateway: it is registered as internal and cannot open a checkout.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

from sqlalchemy.ext.asyncio import AsyncSession

from quanyi.db import Database, utcnow
from quanyi.errors import Conflict
from quanyi.ledger import service as ledger_service
from quanyi.orders import service as orders_service
from quanyi.orders.service import PaymentEffect
from quanyi.orders.state import OrderStatus
from quanyi.payments import service as payments_service
from quanyi.payments.gateway import (
    Checkout,
    CheckoutRequest,
    GatewayReply,
    GatewayUnsupported,
    NotificationRejected,
    PaymentGateway,
    PaymentNotification,
    RefundRequest,
    RefundResult,
    TradeQuery,
)
from quanyi.payments.models import Payment

__all__ = ["BALANCE_GATEWAY", "BalanceGateway", "pay_order_from_balance"]

BALANCE_GATEWAY = "balance"


async def pay_order_from_balance(
    *, session: AsyncSession, order_id: int, account_id: int, now: dt.datetime | None = None,
) -> tuple[Payment, PaymentEffect]:
    """Pay an unpaid order from a customer account and apply the payment (deliver, queue supplier purchases, or
    hold for review), in the caller's transaction. Raises (the caller rolls back: nothing taken) when the
    order is not payable, or `ledger.CustomerBalanceInsufficient` / `CustomerAccountFrozen`."""
    now = now or utcnow()
    # Order row lock first, like every writer of orders; a second payment of the same order waits here and
    # then finds it paid (and the charge's unique order_id is the last line of defence).
    order = await orders_service.lock_order(session=session, order_id=order_id)
    if order.status is not OrderStatus.PENDING_PAYMENT:
        raise orders_service.OrderNotPayable("this order is not awaiting payment", order_status=order.status.value)
    if order.expires_at <= now:
        raise orders_service.OrderNotPayable("the reservation for this order has expired; place a new order")
    if order.customer_account_id is not None and order.customer_account_id != account_id:
        raise Conflict("this order was placed for another customer account")
    account = await ledger_service.get_customer_account(session=session, account_id=account_id)
    payment = Payment(payment_no=payments_service.new_payment_no(), order_id=order.id, gateway=BALANCE_GATEWAY,
                      amount_cents=order.total_cents, currency=order.currency, created_at=now, updated_at=now)
    session.add(payment)
    await session.flush()
    await ledger_service.charge_customer(session=session, account_id=account.id, amount_cents=payment.amount_cents,
                                         currency=payment.currency, payment_no=payment.payment_no,
                                         order_id=order.id, now=now)
    notification = PaymentNotification(
        payment_no=payment.payment_no, gateway_trade_no=payment.payment_no, amount_cents=payment.amount_cents,
        currency=payment.currency, succeeded=True, paid_at=now, payer_account=account.code)
    effect = await payments_service.confirm_payment(session=session, gateway_name=BALANCE_GATEWAY,
                                                    notification=notification, now=now)
    return payment, effect


class BalanceGateway(PaymentGateway):
    """The internal gateway of balance payments: answers trade and refund queries from the ledger's records,
    and refunds by crediting the balance back (idempotent on the refund number, like a real gateway)."""

    name = BALANCE_GATEWAY
    title, title_en = "预存款", "Prepaid balance"

    def __init__(self, db: Database) -> None:
        self._db = db

    async def create_checkout(self, request: CheckoutRequest) -> Checkout:
        raise GatewayUnsupported("balance payments are made by account customers (open API, enterprise), "
                                 "not at a cashier")

    def verify_notification(self, *, headers: Mapping[str, str], body: bytes, now: dt.datetime) -> PaymentNotification:
        raise NotificationRejected("balance payments have no notifications")

    def acknowledge(self) -> GatewayReply:
        return GatewayReply(200, "text/plain", "ok")

    def refuse(self, reason: str) -> GatewayReply:
        return GatewayReply(400, "text/plain", reason)

    async def query_trade(self, payment_no: str, *, gateway_session_id: str | None = None) -> TradeQuery:
        async with self._db.read_session() as session:
            charge = await ledger_service.charge_for_payment(session=session, payment_no=payment_no)
        if charge is None:
            return TradeQuery(payment_no=payment_no, state="not_found")
        return TradeQuery(payment_no=payment_no, state="paid", gateway_trade_no=payment_no,
                          amount_cents=charge.amount_cents, currency=charge.currency, paid_at=charge.created_at)

    async def refund(self, request: RefundRequest) -> RefundResult:
        try:
            async with self._db.transaction() as session:
                await ledger_service.refund_customer_charge(
                    session=session, payment_no=request.payment_no, refund_no=request.refund_no,
                    amount_cents=request.amount_cents)
        except (ledger_service.CustomerChargeNotFound, Conflict) as exc:
            return RefundResult(refund_no=request.refund_no, state="failed", amount_cents=0, detail=exc.message)
        return RefundResult(refund_no=request.refund_no, state="succeeded", amount_cents=request.amount_cents,
                            gateway_refund_no=f"BAL{request.refund_no}")

    async def query_refund(self, *, refund_no: str, payment_no: str) -> RefundResult:
        async with self._db.read_session() as session:
            credited = await ledger_service.customer_refund_posted(session=session, refund_no=refund_no)
        if credited is None:
            return RefundResult(refund_no=refund_no, state="failed", amount_cents=0,
                                detail="never credited to the balance")
        return RefundResult(refund_no=refund_no, state="succeeded", amount_cents=credited,
                            gateway_refund_no=f"BAL{refund_no}")

