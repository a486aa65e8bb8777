"""Operators told about enterprises' top-ups (企业充值提醒), through the notifications outbox (the group robots, and
QUANYI_OPERATOR_ALERT_EMAIL): a bank-transfer request to check and confirm, and a second payment of an online
request that another payment already credited (重复付款: real money the shop holds but never credits). Such a
payment is also kept as a row flagged on its request in the console until an operator records that it was
refunded at the gateway, and booked in the ledger as money the gateway took and the shop owes back (D
gateway_clearing:<gw> C refunds_payable, reversed when it is marked refunded: ledger/gateway_receipts.py), so
reconciliation with the gateway sees it. Second payments seen before that booking have no receipt posting; marking
one refunded then books nothing either."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from quanyi.db import utcnow
from quanyi.enterprises.models import Enterprise, TopUpExtraPayment, TopUpRequest
from quanyi.errors import NotFound
from quanyi.ledger import service as ledger_service
from quanyi.notifications import service as notifications_service
from quanyi.notifications.models import Kind

__all__ = ["ExtraPaymentNotFound", "on_requested", "on_paid_twice", "extra_payments_of", "open_extra_payments",
           "mark_refunded"]


class ExtraPaymentNotFound(NotFound):
    code = "extra_payment_not_found"


def _payload(request: TopUpRequest, enterprise: Enterprise) -> dict[str, object]:
    return {"enterprise_code": enterprise.code, "enterprise_name": enterprise.name, "request_no": request.request_no,
            "total_cents": request.amount_cents, "currency": request.currency}


async def on_requested(*, session: AsyncSession, request: TopUpRequest, enterprise: Enterprise,
                       now: dt.datetime | None = None) -> None:
    """A bank-transfer request was filed: operators must check the bank account and confirm or refuse it."""
    await notifications_service.on_enterprise_top_up(
        session=session, kind=Kind.ENTERPRISE_TOP_UP_REQUESTED, key=request.request_no, now=now,
        payload={**_payload(request, enterprise), "payer_reference": request.payer_reference, "note": request.note})


async def on_paid_twice(*, session: AsyncSession, request: TopUpRequest, gateway: str, trade_no: str,
                        amount_cents: int, currency: str, now: dt.datetime | None = None) -> bool:
    """Another payment `trade_no` of a request already credited by another trade: kept (once per trade, however
    often the gateway re-sends) and operators alerted to refund it. True when this call recorded it."""
    now = now or utcnow()
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    # ON CONFLICT DO NOTHING on the unique (gateway, trade no): re-sent and concurrent copies keep one row and
    # never abort the notification's transaction.
    added = await session.execute(insert(TopUpExtraPayment).values(
        request_id=request.id, gateway=gateway[:32], gateway_trade_no=trade_no[:64], amount_cents=amount_cents,
        currency=currency, seen_at=now).on_conflict_do_nothing(index_elements=["gateway", "gateway_trade_no"]))
    if not added.rowcount:  # type: ignore[attr-defined]
        return False
    await ledger_service.record_duplicate_receipt(
        session, gateway=gateway[:32], trade_no=trade_no[:64], amount_cents=amount_cents, currency=currency, now=now,
        memo=f"{gateway} trade {trade_no}: top-up {request.request_no} paid again (credited by trade "
             f"{request.gateway_trade_no}); owed back")
    enterprise = await session.get(Enterprise, request.enterprise_id)
    assert enterprise is not None
    await notifications_service.on_enterprise_top_up(
        session=session, kind=Kind.ENTERPRISE_TOP_UP_PAID_TWICE, key=f"{gateway}:{trade_no}", now=now,
        payload={**_payload(request, enterprise), "total_cents": amount_cents, "currency": currency,
                 "gateway": gateway, "trade_no": trade_no, "credited_trade_no": request.gateway_trade_no or ""})
    return True


async def extra_payments_of(*, session: AsyncSession,
                            request_ids: Sequence[int]) -> dict[int, list[TopUpExtraPayment]]:
    """The second payments of these requests, by request id (oldest first)."""
    found: dict[int, list[TopUpExtraPayment]] = {}
    if request_ids:
        for row in await session.scalars(select(TopUpExtraPayment).where(
                TopUpExtraPayment.request_id.in_(list(request_ids))).order_by(TopUpExtraPayment.id)):
            found.setdefault(row.request_id, []).append(row)
    return found


async def open_extra_payments(*, session: AsyncSession) -> Sequence[tuple[TopUpExtraPayment, str, str]]:
    """Second payments not yet refunded, every enterprise: (payment, request no, enterprise code)."""
    return [(row, request_no, code) for row, request_no, code in (await session.execute(
        select(TopUpExtraPayment, TopUpRequest.request_no, Enterprise.code)
        .join(TopUpRequest, TopUpRequest.id == TopUpExtraPayment.request_id)
        .join(Enterprise, Enterprise.id == TopUpRequest.enterprise_id)
        .where(TopUpExtraPayment.refunded_at.is_(None)).order_by(TopUpExtraPayment.id))).all()]


async def mark_refunded(*, session: AsyncSession, code: str, trade_no: str, actor: str,
                        now: dt.datetime | None = None) -> tuple[TopUpExtraPayment, bool]:
    """An operator refunded a second payment at the gateway: the flag goes away. (payment, changed); a repeat
    changes nothing. Another enterprise's trade is not found."""
    row = await session.scalar(select(TopUpExtraPayment)
                               .join(TopUpRequest, TopUpRequest.id == TopUpExtraPayment.request_id)
                               .join(Enterprise, Enterprise.id == TopUpRequest.enterprise_id)
                               .where(Enterprise.code == code, TopUpExtraPayment.gateway_trade_no == trade_no))
    if row is None:
        raise ExtraPaymentNotFound(f"没有重复付款 {trade_no}")
    now = now or utcnow()
    # The conditional UPDATE's row lock: of two concurrent marks, one changes it (and books the refund once).
    changed = await session.execute(update(TopUpExtraPayment).where(
        TopUpExtraPayment.id == row.id, TopUpExtraPayment.refunded_at.is_(None))
        .values(refunded_by=actor[:64], refunded_at=now).execution_options(synchronize_session=False))
    await session.refresh(row)
    if not changed.rowcount:  # type: ignore[attr-defined]
        return row, False
    await ledger_service.record_duplicate_refunded(
        session, gateway=row.gateway, trade_no=row.gateway_trade_no, actor=actor, now=now,
        memo=f"{row.gateway} trade {row.gateway_trade_no} (a second payment of a top-up) refunded at the gateway")
    return row, True
