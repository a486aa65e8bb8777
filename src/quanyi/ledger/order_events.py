"""Automatic postings (分润) from the order lifecycle. Each is idempotent by its reference.

Money path of one order (D = debit, C = credit):
- payment received:  D gateway_clearing:<gw>   C customer_liability      (a duplicate payment: C refunds_payable)
- delivered:         D customer_liability      C platform_revenue, merchant_payable:<m>, distributor_commission:<d>
                     D cost_of_goods           C supplier_payable:<s> (supplier purchases) / card_key_stock (local)
- undeliverable:     D customer_liability      C refunds_due
- refund requested:  D refunds_due / customer_liability / the revenue shares (pro rata)   C refunds_payable
- refund refused:    the request posting reversed (an operator retry posts the request again)
- refund paid out:   D refunds_payable         C gateway_clearing:<gw>
What each step moves is read from the order's own balances in the ledger, so partial refunds, refunds
before delivery and retries always add up: a full refund leaves every account of the order at zero
except the cost of goods (card keys taken back are never resold).
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from quanyi.inventory.models import CardKey, CardKeyStatus, ImportBatch
from quanyi.ledger import accounts
from quanyi.ledger.models import (
    LedgerAccount,
    LedgerEntry,
    LedgerPosting,
    ProfitShareRule,
    SupplierCharge,
    SupplierChargeStatus,
)
from quanyi.ledger.postings import Line, order_account_sums, post
from quanyi.orders.models import Order
from quanyi.orders.state import OrderStatus
from quanyi.payments.models import Payment, PaymentStatus
from quanyi.refunds.models import Refund

__all__ = [
    "record_payment_received", "record_order_delivered", "record_refund_due", "record_order_status",
    "record_refund_requested", "record_refund_failed", "record_refund_paid", "share_rule_for",
]

_PAYABLE_STATUSES = (OrderStatus.PENDING_PAYMENT, OrderStatus.CANCELLED)
_REVENUE_FAMILIES = ("platform_revenue", "merchant_payable:", "distributor_commission:")


async def record_payment_received(
    *, session: AsyncSession, order: Order, payment: Payment, now: dt.datetime | None = None
) -> None:
    """Money arrived at the gateway for this payment. Call before `orders.apply_payment`: a payment for an
    order that can still be paid becomes the buyer's credit; any other (a DUPLICATE) is owed back."""
    duplicate = payment.status == PaymentStatus.DUPLICATE or order.status not in _PAYABLE_STATUSES
    owed_to = accounts.REFUNDS_PAYABLE if duplicate else accounts.CUSTOMER_LIABILITY
    await post(session, reference=f"payment:{payment.payment_no}",
               kind="payment_duplicate" if duplicate else "payment_received", order_id=order.id,
               payment_no=payment.payment_no, now=now,
               memo=f"{payment.gateway} payment {payment.payment_no} for order {order.order_no}",
               lines=[Line(accounts.gateway_clearing(payment.gateway), payment.amount_cents, payment.currency),
                      Line(owed_to, -payment.amount_cents, payment.currency)])


async def share_rule_for(session: AsyncSession, sku_id: int) -> ProfitShareRule | None:
    """The SKU's own profit-sharing rule, else the default one, else None (all revenue is the platform's)."""
    rules = {rule.scope: rule for rule in (await session.scalars(
        select(ProfitShareRule).where(ProfitShareRule.scope.in_([f"sku:{sku_id}", "default"])))).all()}
    return rules.get(f"sku:{sku_id}") or rules.get("default")


async def _local_key_cost(session: AsyncSession, order_id: int) -> int:
    return int(await session.scalar(
        select(func.coalesce(func.sum(ImportBatch.unit_cost_cents), 0))
        .select_from(CardKey).join(ImportBatch, ImportBatch.id == CardKey.batch_id)
        .where(CardKey.order_id == order_id, CardKey.status == CardKeyStatus.SOLD)) or 0)


async def record_order_delivered(*, session: AsyncSession, order: Order, now: dt.datetime | None = None) -> None:
    """The goods were handed over: earn what the buyer still has paid in, shared by the profit-sharing rule,
    and book what the goods cost (supplier purchases of this order, local keys at their batch's unit cost)."""
    sums = await order_account_sums(session, order.id)
    earned = -sums.get(accounts.CUSTOMER_LIABILITY, 0)
    lines: list[Line] = []
    if earned > 0:
        rule = await share_rule_for(session, order.sku_id)
        merchant = earned * rule.merchant_bps // 10_000 if rule and rule.merchant_code else 0
        distributor = earned * rule.distributor_bps // 10_000 if rule and order.distributor_code else 0
        lines += [Line(accounts.CUSTOMER_LIABILITY, earned, order.currency),
                  Line(accounts.PLATFORM_REVENUE, -(earned - merchant - distributor), order.currency)]
        if merchant:
            lines.append(Line(accounts.merchant_payable(rule.merchant_code), -merchant, order.currency))  # type: ignore[union-attr]
        if distributor:
            lines.append(Line(accounts.distributor_commission(order.distributor_code), -distributor,  # type: ignore[arg-type]
                              order.currency))
    charges = (await session.scalars(select(SupplierCharge).where(
        SupplierCharge.order_id == order.id, SupplierCharge.status == SupplierChargeStatus.CHARGED))).all()
    for charge in charges:
        lines += [Line(accounts.COST_OF_GOODS, charge.amount_cents, charge.currency),
                  Line(accounts.supplier_payable(charge.supplier_id), -charge.amount_cents, charge.currency)]
    local_cost = await _local_key_cost(session, order.id)
    if local_cost:
        lines += [Line(accounts.COST_OF_GOODS, local_cost, order.currency),
                  Line(accounts.CARD_KEY_STOCK, -local_cost, order.currency)]
    await post(session, reference=f"delivered:{order.order_no}", kind="order_delivered", order_id=order.id,
               now=now, memo=f"order {order.order_no} delivered", lines=lines)


async def record_refund_due(*, session: AsyncSession, order: Order, now: dt.datetime | None = None) -> None:
    """Paid but undeliverable (待退款): what the buyer paid in is now owed back to them."""
    owed = -(await order_account_sums(session, order.id)).get(accounts.CUSTOMER_LIABILITY, 0)
    if owed > 0:
        await post(session, reference=f"refund_due:{order.order_no}", kind="refund_due", order_id=order.id, now=now,
                   memo=f"order {order.order_no} could not be delivered",
                   lines=[Line(accounts.CUSTOMER_LIABILITY, owed, order.currency),
                          Line(accounts.REFUNDS_DUE, -owed, order.currency)])


async def record_order_status(*, session: AsyncSession, order: Order, now: dt.datetime | None = None) -> None:
    """Post whatever the order's new status means for the books (DELIVERED, REFUND_PENDING); others post nothing.
    For code paths that deliver or give up outside `orders.apply_payment` (e.g. supplier fulfilment)."""
    if order.status is OrderStatus.DELIVERED:
        await record_order_delivered(session=session, order=order, now=now)
    elif order.status is OrderStatus.REFUND_PENDING:
        await record_refund_due(session=session, order=order, now=now)


async def _refund_postings(session: AsyncSession, refund_no: str, kind: str) -> list[LedgerPosting]:
    return list((await session.scalars(select(LedgerPosting).where(
        LedgerPosting.refund_no == refund_no, LedgerPosting.kind == kind).order_by(LedgerPosting.id))).all())


def _take(amount: int, sums: dict[str, int], currency: str) -> list[Line]:
    """Debit `amount` from the order's credit balances: refunds due, then undelivered credit, then the
    revenue shares pro rata (the platform absorbs rounding)."""
    lines: list[Line] = []
    left = amount
    for code in (accounts.REFUNDS_DUE, accounts.CUSTOMER_LIABILITY):
        take = min(left, max(0, -sums.get(code, 0)))
        if take:
            lines.append(Line(code, take, currency))
            left -= take
    shares = {code: -total for code, total in sums.items()
              if code.startswith(_REVENUE_FAMILIES) and code != accounts.PLATFORM_REVENUE and total < 0}
    pool = sum(shares.values()) + max(0, -sums.get(accounts.PLATFORM_REVENUE, 0))
    if left and pool:
        portion = min(left, pool)
        for code, share in shares.items():
            take = share if portion == pool else share * portion // pool
            if take:
                lines.append(Line(code, take, currency))
                left -= take
    if left:
        lines.append(Line(accounts.PLATFORM_REVENUE, left, currency))
    return lines


async def record_refund_requested(
    *, session: AsyncSession, refund: Refund, payment: Payment, order: Order, now: dt.datetime | None = None
) -> None:
    """A refund of the order's payment was requested (or retried): the money becomes refunds payable.
    A refund of a DUPLICATE payment posts nothing here: that money was refunds payable from the start."""
    if payment.status == PaymentStatus.DUPLICATE:
        return
    requested = await _refund_postings(session, refund.refund_no, "refund_requested")
    refused = await _refund_postings(session, refund.refund_no, "refund_refused")
    if len(requested) > len(refused):
        return  # already outstanding: this request was posted
    lines = _take(refund.amount_cents, await order_account_sums(session, order.id), refund.currency)
    lines.append(Line(accounts.REFUNDS_PAYABLE, -refund.amount_cents, refund.currency))
    await post(session, reference=f"refund_requested:{refund.refund_no}:{len(requested) + 1}",
               kind="refund_requested", order_id=order.id, payment_no=payment.payment_no,
               refund_no=refund.refund_no, now=now, memo=f"refund {refund.refund_no}: {refund.reason}", lines=lines)


async def record_refund_failed(*, session: AsyncSession, refund: Refund, now: dt.datetime | None = None) -> None:
    """The gateway refused the refund: undo its request posting (the buyer's money is where it was before)."""
    requested = await _refund_postings(session, refund.refund_no, "refund_requested")
    refused = await _refund_postings(session, refund.refund_no, "refund_refused")
    if len(requested) <= len(refused):
        return
    rows = (await session.execute(
        select(LedgerAccount.code, LedgerEntry.amount_cents, LedgerEntry.currency)
        .join(LedgerEntry, LedgerEntry.account_id == LedgerAccount.id)
        .where(LedgerEntry.posting_id == requested[-1].id))).all()
    await post(session, reference=f"refund_refused:{refund.refund_no}:{len(refused) + 1}", kind="refund_refused",
               order_id=refund.order_id, refund_no=refund.refund_no, now=now,
               memo=f"refund {refund.refund_no} refused; request reversed",
               lines=[Line(code, -amount, currency) for code, amount, currency in rows])


async def record_refund_paid(
    *, session: AsyncSession, refund: Refund, payment: Payment, now: dt.datetime | None = None
) -> None:
    """The gateway paid the refund out: refunds payable settled from gateway clearing."""
    await post(session, reference=f"refund_paid:{refund.refund_no}", kind="refund_paid", order_id=refund.order_id,
               payment_no=payment.payment_no, refund_no=refund.refund_no, now=now,
               memo=f"refund {refund.refund_no} paid out by {refund.gateway}",
               lines=[Line(accounts.REFUNDS_PAYABLE, refund.amount_cents, refund.currency),
                      Line(accounts.gateway_clearing(refund.gateway), -refund.amount_cents, refund.currency)])
