"""An order's timeline (订单时间线) for staff: every status change, payment, delivery and reveal, notification,
risk decision and review, refund and supplier attempt, in time order, gathered through each feature's
service. Read only; card-key plaintext never appears here."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from quanyi.inventory import service as inventory_service
from quanyi.money import format_money
from quanyi.notifications import service as notifications_service
from quanyi.orders import search as order_search
from quanyi.orders.models import Order
from quanyi.payments import service as payments_service
from quanyi.payments.models import Payment
from quanyi.refunds import service as refunds_service
from quanyi.refunds.models import Refund
from quanyi.risk import review as review_service
from quanyi.suppliers import recharge as supplier_recharge

__all__ = ["Entry", "OrderFile", "order_file"]


@dataclass(frozen=True, slots=True)
class Entry:
    at: dt.datetime
    kind: str  # status, payment, delivery, reveal, notification, risk, review, refund, supplier
    key: str  # the console text saying what happened (its values below; none named "key": t() takes that name)
    values: dict[str, Any] = field(default_factory=dict)
    detail: str = ""  # as recorded (reasons, errors): shown as is


@dataclass
class OrderFile:
    """Everything staff see about one order."""

    order: Order
    payments: list[Payment]
    refunds: list[Refund]
    keys: int  # card keys delivered (sold) to it
    entries: list[Entry]


def _money(cents: int, currency: str) -> str:
    return format_money(cents, currency)


async def order_file(*, session: AsyncSession, order: Order) -> OrderFile:
    entries: list[Entry] = []
    for event in await order_search.order_events(session=session, order_id=order.id):
        entries.append(Entry(event.created_at, "status", "tl.status",
                             {"from": event.from_status or "-", "to": event.to_status}, event.reason))
    payments = await payments_service.list_order_payments(session=session, order_id=order.id)
    for p in payments:
        amount = _money(p.amount_cents, p.currency)
        entries.append(Entry(p.created_at, "payment", "tl.payment_started",
                             {"gateway": p.gateway, "payment_no": p.payment_no, "amount": amount}))
        if p.query_count:
            entries.append(Entry(p.last_queried_at or p.updated_at, "payment", "tl.payment_queried",
                                 {"payment_no": p.payment_no, "count": p.query_count}))
        if p.paid_at is not None:
            key = "tl.payment_duplicate" if p.status == "duplicate" else "tl.payment_paid"
            entries.append(Entry(p.paid_at, "payment", key, {"gateway": p.gateway, "payment_no": p.payment_no,
                                                             "amount": amount, "trade_no": p.gateway_trade_no or "-"}))
    keys = await inventory_service.list_order_keys(session=session, order_id=order.id)
    sold = [k for k in keys if k.sold_at is not None]
    if sold:
        entries.append(Entry(min(k.sold_at for k in sold if k.sold_at), "delivery", "tl.keys_delivered",  # type: ignore[type-var]
                             {"count": len(sold)}))
    for reveal in await inventory_service.list_order_reveals(session=session, order_id=order.id):
        entries.append(Entry(reveal.revealed_at, "reveal",
                             "tl.reveal_staff" if reveal.channel == inventory_service.STAFF_REVEAL_CHANNEL
                             else "tl.reveal_buyer",
                             {"channel": reveal.channel, "actor": reveal.actor or "", "key_id": reveal.card_key_id},
                             f"{reveal.reason or ''} {reveal.ip}".strip()))
    for message in await notifications_service.list_messages(session=session, order_id=order.id, limit=200):
        entries.append(Entry(message.created_at, "notification", "tl.notification",
                             {"kind": message.kind, "channel": message.channel, "status": message.status,
                              "attempts": message.attempts}, message.last_error or ""))
    held = await review_service.held_order(session=session, order=order)
    for decision in held.decisions:
        names = [str(hit.get("name", "")) for hit in decision.rules_hit]
        entries.append(Entry(decision.created_at, "risk", "tl.risk",
                             {"stage": decision.stage, "decision": decision.decision, "score": decision.score,
                              "outcome": decision.outcome, "rules": names}, ", ".join(names)))
    for action in await review_service.list_review_actions(session=session, order_id=order.id):
        entries.append(Entry(action.created_at, "review", "tl.review_" + action.action, {"actor": action.actor},
                             action.reason))
    refunds = await refunds_service.list_refunds(session=session, order_id=order.id)
    events = await refunds_service.refund_events(session=session, refund_ids=[r.id for r in refunds])
    for refund in refunds:
        for event in events[refund.id]:
            entries.append(Entry(event.created_at, "refund", "tl.refund",
                                 {"refund_no": refund.refund_no, "amount": _money(refund.amount_cents, refund.currency),
                                  "to": event.to_status, "actor": event.actor}, event.reason))
    job, attempts = await supplier_recharge.order_attempts(session=session, order_id=order.id)
    for attempt, supplier_code in attempts:
        entries.append(Entry(attempt.created_at, "supplier", "tl.supplier",
                             {"supplier": supplier_code, "state": attempt.state.value,
                              "attempt": attempt.idempotency_key, "codes": attempt.codes_received},
                             attempt.error or ""))
    if job is not None and job.last_error:
        entries.append(Entry(job.updated_at, "supplier", "tl.supplier_job", {"status": job.status.value},
                             job.last_error))
    entries.sort(key=lambda e: e.at)
    return OrderFile(order=order, payments=payments, refunds=refunds, keys=len(sold), entries=entries)
