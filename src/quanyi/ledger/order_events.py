"""Automatic postings (分润) from the order lifecycle. Each is idempotent by its reference.

Money path of one order (D = debit, C = credit):
- payment received:  D gateway_clearing:<gw>   C customer_liability      (a duplicate payment: C refunds_payable)
- delivered:         D customer_liability      C platform_revenue, merchant_payable:<m>, distributor_commission:<d>
                     D cost_of_goods           C supplier_payable:<s> (supplier purchases) / card_key_stock (local)
  An order of a merchant (not the platform's own store): the merchant is credited what the buyer paid less the
  platform's commission (its category's rate, else its own) and less any distributor commission (the seller pays
  its promoters), the platform earns the commission, and the merchant's goods cost comes out of its own supplier funds
  (D merchant_supplier_funds:<m> C supplier_payable:<s>): the platform's books never carry its supply chain.
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
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import func, literal, select
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
from quanyi.ledger.postings import Draft, Line, order_account_sums, orders_account_sums, post
from quanyi.loyalty import service as loyalty_service
from quanyi.merchants import service as merchants_service
from quanyi.orders.models import Order
from quanyi.orders.state import OrderStatus
from quanyi.payments.models import Payment, PaymentStatus
from quanyi.promoters import attribution as promoters_attribution
from quanyi.refunds.models import Refund
from quanyi.scope import PLATFORM_MERCHANT_ID

__all__ = [
    "record_payment_received", "record_order_delivered", "record_refund_due", "record_order_status",
    "record_refund_requested", "record_refund_failed", "record_refund_paid", "share_rule_for", "share_rules_for",
    "payment_received_draft", "delivered_draft", "refund_due_draft", "delivery_facts", "DeliveryFacts", "settle_order",
]

_PAYABLE_STATUSES = (OrderStatus.PENDING_PAYMENT, OrderStatus.CANCELLED)
_REVENUE_FAMILIES = ("platform_revenue", "merchant_payable:", "distributor_commission:")


def payment_received_draft(order: Order, payment: Payment, *, duplicate: bool) -> Draft:
    """Money arrived for `payment`: the buyer's credit, or owed back when it is a duplicate."""
    owed_to = accounts.REFUNDS_PAYABLE if duplicate else accounts.CUSTOMER_LIABILITY
    return Draft(reference=f"payment:{payment.payment_no}",
                 kind="payment_duplicate" if duplicate else "payment_received",
                 order_id=order.id, payment_no=payment.payment_no,
                 memo=f"{payment.gateway} payment {payment.payment_no} for order {order.order_no}",
                 lines=[Line(accounts.gateway_clearing(payment.gateway), payment.amount_cents, payment.currency),
                        Line(owed_to, -payment.amount_cents, payment.currency)])


async def record_payment_received(
    *, session: AsyncSession, order: Order, payment: Payment, now: dt.datetime | None = None
) -> None:
    """Money arrived at the gateway for this payment. Call before `orders.apply_payment`: a payment for an
    order that can still be paid becomes the buyer's credit; any other (a DUPLICATE) is owed back."""
    duplicate = payment.status == PaymentStatus.DUPLICATE or order.status not in _PAYABLE_STATUSES
    draft = payment_received_draft(order, payment, duplicate=duplicate)
    await post(session, reference=draft.reference, kind=draft.kind, order_id=order.id, payment_no=draft.payment_no,
               now=now, memo=draft.memo, lines=draft.lines)


async def share_rules_for(session: AsyncSession, sku_ids: set[int]) -> dict[int, ProfitShareRule | None]:
    """Each SKU's own profit-sharing rule, else the default one, else None (all revenue is the platform's)."""
    rules = {rule.scope: rule for rule in (await session.scalars(
        select(ProfitShareRule).where(ProfitShareRule.scope.in_([*(f"sku:{i}" for i in sku_ids), "default"])))).all()}
    return {sku_id: rules.get(f"sku:{sku_id}") or rules.get("default") for sku_id in sku_ids}


async def share_rule_for(session: AsyncSession, sku_id: int) -> ProfitShareRule | None:
    """The SKU's own profit-sharing rule, else the default one, else None (all revenue is the platform's)."""
    return (await share_rules_for(session, {sku_id}))[sku_id]


async def _local_key_costs(session: AsyncSession, order_ids: Sequence[int]) -> dict[int, int]:
    rows = await session.execute(
        select(CardKey.order_id, func.coalesce(func.sum(ImportBatch.unit_cost_cents), 0))
        .select_from(CardKey).join(ImportBatch, ImportBatch.id == CardKey.batch_id)
        .where(CardKey.order_id.in_(order_ids), CardKey.status == CardKeyStatus.SOLD).group_by(CardKey.order_id))
    return {order_id: int(total or 0) for order_id, total in rows.all()}


async def _charges(session: AsyncSession, order_ids: Sequence[int]) -> dict[int, list[SupplierCharge]]:
    charges: dict[int, list[SupplierCharge]] = {order_id: [] for order_id in order_ids}
    # A purchase that succeeded while its order was settled by hand was booked then (prepaid.book_late_supplier_goods:
    # its codes to stock, sold at their cost by whichever order gets them; a recharge to cost). If the order is
    # delivered after all (its refund withdrawn), that charge is not its cost a second time.
    booked_late = select(LedgerPosting.id).where(LedgerPosting.reference.in_([
        literal("supplier_goods_stocked:") + SupplierCharge.reference,
        literal("supplier_goods_written_off:") + SupplierCharge.reference])).exists()
    for charge in (await session.scalars(select(SupplierCharge).where(
            SupplierCharge.order_id.in_(order_ids), SupplierCharge.status == SupplierChargeStatus.CHARGED,
            ~booked_late).order_by(SupplierCharge.id))).all():
        charges[charge.order_id].append(charge)  # type: ignore[index]
    return charges


@dataclass
class DeliveryFacts:
    """What the delivered posting of an order depends on, read for one order or for a batch at once."""

    sums: dict[str, int]  # the order's account sums so far (debits minus credits)
    rule: ProfitShareRule | None
    charges: list[SupplierCharge]
    local_cost: int
    # A merchant's order: its code and commission; None for the platform's own store (booked as it always was).
    terms: merchants_service.OrderTerms | None = None
    # Distribution (分销): who earns commission on it (level 1, level 2) and the programme's margin rule.
    promoters: promoters_attribution.CommissionRecipients = promoters_attribution.NO_RECIPIENTS


async def delivery_facts(session: AsyncSession, orders: Sequence[Order]) -> dict[int, DeliveryFacts]:
    ids = [order.id for order in orders]
    sums = await orders_account_sums(session, ids)
    rules = await share_rules_for(session, {order.sku_id for order in orders})
    charges = await _charges(session, ids)
    costs = await _local_key_costs(session, ids)
    # Merchants' orders only (none on a single-shop install): one query for the batch.
    terms = await merchants_service.order_terms_many(session=session, pairs={
        (order.merchant_id, order.product_id) for order in orders if order.merchant_id != PLATFORM_MERCHANT_ID})
    recipients = await promoters_attribution.commission_recipients(session=session, orders=orders)
    return {order.id: DeliveryFacts(sums[order.id], rules[order.sku_id], charges[order.id],
                                    # A merchant's own keys were bought outside the platform: their cost is the
                                    # merchant's business, not booked.
                                    costs.get(order.id, 0) if order.merchant_id == PLATFORM_MERCHANT_ID else 0,
                                    terms.get((order.merchant_id, order.product_id)), recipients[order.id])
            for order in orders}


def _commissions(rule: ProfitShareRule | None, recipients: promoters_attribution.CommissionRecipients, earned: int,
                 seller_margin: int) -> list[tuple[str, int]]:
    """Each promoter's commission on an order that earned `earned`: its rate of the payment, all levels together
    capped by the margin rule (a share of what the seller keeps after the goods' cost; never below zero)."""
    if rule is None:
        return []
    wanted = [(code, earned * bps // 10_000) for code, bps in
              ((recipients.level1, rule.distributor_bps), (recipients.level2, rule.distributor_l2_bps)) if code]
    total = sum(amount for _, amount in wanted)
    cap = max(0, seller_margin) * recipients.max_margin_share_bps // 10_000
    if total > cap:  # scaled down together; level 1 absorbs the rounding
        level2 = [(code, amount * cap // total) for code, amount in wanted[1:]]
        wanted = [(wanted[0][0], cap - sum(amount for _, amount in level2)), *level2]
    return [(code, amount) for code, amount in wanted if amount > 0]


def delivered_draft(order: Order, facts: DeliveryFacts) -> Draft:
    """The goods were handed over: earn what the buyer still has paid in, shared by the profit-sharing rule,
    and book what the goods cost (supplier purchases of this order, local keys at their batch's unit cost)."""
    earned = -facts.sums.get(accounts.CUSTOMER_LIABILITY, 0)
    rule, terms = facts.rule, facts.terms
    lines: list[Line] = []
    if earned > 0:
        supplier_cost = sum(charge.amount_cents for charge in facts.charges)
        if terms is None:
            merchant_code = rule.merchant_code if rule else ""
            merchant = earned * rule.merchant_bps // 10_000 if rule and rule.merchant_code else 0
            # The platform sold: the commission is its expense, within its margin.
            commissions = _commissions(rule, facts.promoters, earned,
                                       earned - merchant - supplier_cost - facts.local_cost)
            platform = earned - merchant - sum(amount for _, amount in commissions)
        else:  # the merchant gets what is left after commission; the platform absorbs rounding
            merchant_code, merchant = terms.merchant_code, earned * (10_000 - terms.commission_bps) // 10_000
            # The merchant sold: the distributor commission is its expense, within its margin.
            commissions = _commissions(rule, facts.promoters, earned, merchant - supplier_cost)
            platform, merchant = earned - merchant, merchant - sum(amount for _, amount in commissions)
        lines += [Line(accounts.CUSTOMER_LIABILITY, earned, order.currency),
                  Line(accounts.PLATFORM_REVENUE, -platform, order.currency)]
        if merchant:
            lines.append(Line(accounts.merchant_payable(merchant_code), -merchant, order.currency))
        for code, amount in commissions:
            lines.append(Line(accounts.distributor_commission(code), -amount, order.currency))
    cost_account = accounts.COST_OF_GOODS if terms is None else accounts.merchant_supplier_funds(terms.merchant_code)
    for charge in facts.charges:
        lines += [Line(cost_account, charge.amount_cents, charge.currency),
                  Line(accounts.supplier_payable(charge.supplier_id), -charge.amount_cents, charge.currency)]
    if facts.local_cost:
        lines += [Line(accounts.COST_OF_GOODS, facts.local_cost, order.currency),
                  Line(accounts.CARD_KEY_STOCK, -facts.local_cost, order.currency)]
    return Draft(reference=f"delivered:{order.order_no}", kind="order_delivered", order_id=order.id,
                 memo=f"order {order.order_no} delivered", lines=lines)


def refund_due_draft(order: Order, sums: dict[str, int]) -> Draft:
    """Paid but undeliverable (待退款): what the buyer paid in is now owed back to them."""
    owed = max(0, -sums.get(accounts.CUSTOMER_LIABILITY, 0))
    return Draft(reference=f"refund_due:{order.order_no}", kind="refund_due", order_id=order.id,
                 memo=f"order {order.order_no} could not be delivered",
                 lines=[Line(accounts.CUSTOMER_LIABILITY, owed, order.currency),
                        Line(accounts.REFUNDS_DUE, -owed, order.currency)])


async def _post_draft(session: AsyncSession, draft: Draft, now: dt.datetime | None) -> None:
    await post(session, reference=draft.reference, kind=draft.kind, order_id=draft.order_id,
               payment_no=draft.payment_no, now=now, memo=draft.memo, lines=draft.lines)


async def record_order_delivered(*, session: AsyncSession, order: Order, now: dt.datetime | None = None) -> None:
    """The goods were handed over: post `delivered_draft` (after any of the order's deferred postings)."""
    await settle_order(session, order.id)
    facts = (await delivery_facts(session, [order]))[order.id]
    await _post_draft(session, delivered_draft(order, facts), now)
    await loyalty_service.orders_delivered(session=session, orders=[order], now=now)  # points, levels


async def record_refund_due(*, session: AsyncSession, order: Order, now: dt.datetime | None = None) -> None:
    """Paid but undeliverable (待退款): what the buyer paid in is now owed back to them."""
    await settle_order(session, order.id)
    await _post_draft(session, refund_due_draft(order, await order_account_sums(session, order.id)), now)


async def settle_order(session: AsyncSession, order_id: int) -> None:
    """Write the order's deferred postings now, in this transaction (the caller holds the order row lock):
    every posting that reads the order's balances comes after them."""
    from quanyi.ledger.deferred import post_deferred  # deferred builds on the drafts above

    await post_deferred(session=session, order_id=order_id)


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
    await settle_order(session, order.id)
    lines = _take(refund.amount_cents, await order_account_sums(session, order.id), refund.currency)
    lines.append(Line(accounts.REFUNDS_PAYABLE, -refund.amount_cents, refund.currency))
    await post(session, reference=f"refund_requested:{refund.refund_no}:{len(requested) + 1}",
               kind="refund_requested", order_id=order.id, payment_no=payment.payment_no,
               refund_no=refund.refund_no, now=now, memo=f"refund {refund.refund_no}: {refund.reason}", lines=lines)
    await loyalty_service.refunds_changed(session=session, order=order, now=now)  # points follow the refund


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
    order = await session.get(Order, refund.order_id)
    if order is not None:
        await loyalty_service.refunds_changed(session=session, order=order, now=now)  # the points come back


async def record_refund_paid(
    *, session: AsyncSession, refund: Refund, payment: Payment, now: dt.datetime | None = None
) -> None:
    """The gateway paid the refund out: refunds payable settled from gateway clearing."""
    await post(session, reference=f"refund_paid:{refund.refund_no}", kind="refund_paid", order_id=refund.order_id,
               payment_no=payment.payment_no, refund_no=refund.refund_no, now=now,
               memo=f"refund {refund.refund_no} paid out by {refund.gateway}",
               lines=[Line(accounts.REFUNDS_PAYABLE, refund.amount_cents, refund.currency),
                      Line(accounts.gateway_clearing(refund.gateway), -refund.amount_cents, refund.currency)])
