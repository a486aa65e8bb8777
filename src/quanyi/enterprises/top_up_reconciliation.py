"""Enterprises' online top-ups in the daily reconciliation with the gateways (对账, payments.reconciliation): the
gateway's statement lists them next to order payments, so the report must explain them too.

Matched by our trade number like an order's payment: every online request started on the day is asked about at its
gateway under its request number (the out_trade_no the cashier was opened with) and compared with what we booked:
- paid, and credited under the same gateway trade: matched (a `matched` top-up line);
- paid at another amount or currency: `amount_mismatch`, nothing applied;
- paid, still pending here (its notification and the queries missed it): credited now exactly as its notification
  would have (`paid_not_recorded`, repaired);
- paid under another gateway trade than the one that credited it: `trade_mismatch`;
- credited here but not paid at the gateway: `not_paid_at_gateway`.
A second payment of a credited request (top_up_alerts, stored once per trade) seen on the day is money the gateway
took: a `paid_twice` mismatch until an operator marks it refunded, then a `paid_twice_refunded` top-up line.
Bank-transfer requests never pass a gateway: they are the bank account's business, not listed here.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from sqlalchemy import select

from quanyi.db import Database
from quanyi.enterprises import top_up_payments
from quanyi.enterprises.models import Enterprise, TopUpExtraPayment, TopUpRequest, TopUpStatus
from quanyi.errors import DomainError
from quanyi.payments.gateway import GatewayRegistry
from quanyi.payments.schemas import Mismatch, TopUpTrade

__all__ = ["TopUpCheck", "check_top_ups"]


@dataclass(slots=True)
class TopUpCheck:
    checked: int = 0
    trades: list[TopUpTrade] = field(default_factory=list)
    mismatches: list[Mismatch] = field(default_factory=list)


def _line(request: TopUpRequest, code: str, kind: str, ours: str, theirs: str, detail: str, *,
          repaired: bool = False) -> Mismatch:
    return Mismatch(kind=kind, gateway=str(request.gateway), payment_no=request.request_no,  # type: ignore[arg-type]
                    order_no="", enterprise_code=code, ours=ours, theirs=theirs, repaired=repaired,
                    detail=f"enterprise {code} online top-up: {detail}")


def _matched(request: TopUpRequest, code: str) -> TopUpTrade:
    return TopUpTrade(gateway=str(request.gateway), payment_no=request.request_no,
                      gateway_trade_no=str(request.gateway_trade_no), enterprise_code=code,
                      amount_cents=request.amount_cents, currency=request.currency, status="matched")


async def _check(db: Database, gateways: GatewayRegistry, request: TopUpRequest, code: str,
                 found: TopUpCheck) -> None:
    ours = f"{request.status} {request.amount_cents} {request.currency}"
    try:
        gateway = gateways.lookup(str(request.gateway))
        trade = await gateway.query_trade(request.request_no)
    except DomainError as exc:  # GatewayUnavailable, or a gateway no longer configured
        found.mismatches.append(_line(request, code, "unchecked", ours, "?", f"could not ask {request.gateway}: "
                                      f"{exc.message}"))
        return
    paid = trade.state == "paid"
    theirs = f"{trade.state} {trade.amount_cents} {trade.currency} {trade.gateway_trade_no}" if paid else trade.state
    if not paid:
        if request.status == TopUpStatus.CREDITED.value:
            found.mismatches.append(_line(request, code, "not_paid_at_gateway", f"{ours} {request.gateway_trade_no}",
                                          theirs, "we credited this top-up but the gateway has no paid trade"))
        return
    if (trade.amount_cents, trade.currency) != (request.amount_cents, request.currency):
        found.mismatches.append(_line(request, code, "amount_mismatch", ours, theirs,
                                      "the gateway took a different amount than we asked for; not credited"))
        return
    if request.status == TopUpStatus.PENDING.value:
        try:
            applied = await top_up_payments.apply_paid_trade(db=db, gateway=gateway, trade=trade)
        except DomainError as exc:
            found.mismatches.append(_line(request, code, "paid_not_recorded", ours, theirs,
                                          f"could not be credited: {exc.message}"))
            return
        if applied.credited:
            found.mismatches.append(_line(request, code, "paid_not_recorded", ours, theirs,
                                          "repaired: credited now", repaired=True))
        request = applied.request  # credited now, or meanwhile by its notification
    if request.gateway_trade_no != trade.gateway_trade_no:
        found.mismatches.append(_line(request, code, "trade_mismatch", f"{ours} {request.gateway_trade_no}", theirs,
                                      "we credited this top-up under another gateway transaction"))
    else:
        found.trades.append(_matched(request, code))


async def check_top_ups(*, db: Database, gateways: GatewayRegistry, start: dt.datetime, end: dt.datetime,
                        gateway_name: str | None = None) -> TopUpCheck:
    """Check the online top-ups started in [start, end) and the second payments seen then (all gateways, or
    `gateway_name`'s) against their gateways; see the module docstring for what each finding means."""
    only = [TopUpRequest.gateway == gateway_name] if gateway_name else []
    async with db.read_session() as session:
        requests = (await session.execute(
            select(TopUpRequest, Enterprise.code).join(Enterprise, Enterprise.id == TopUpRequest.enterprise_id)
            .where(TopUpRequest.method == "online", TopUpRequest.requested_at >= start,
                   TopUpRequest.requested_at < end, *only)
            .order_by(TopUpRequest.id))).all()
        extras = (await session.execute(
            select(TopUpExtraPayment, TopUpRequest, Enterprise.code)
            .join(TopUpRequest, TopUpRequest.id == TopUpExtraPayment.request_id)
            .join(Enterprise, Enterprise.id == TopUpRequest.enterprise_id)
            .where(TopUpExtraPayment.seen_at >= start, TopUpExtraPayment.seen_at < end,
                   *([TopUpExtraPayment.gateway == gateway_name] if gateway_name else []))
            .order_by(TopUpExtraPayment.id))).all()
    found = TopUpCheck(checked=len(requests))
    for request, code in requests:
        await _check(db, gateways, request, code, found)
    for extra, request, code in extras:
        refunded = extra.refunded_at is not None
        found.trades.append(TopUpTrade(
            gateway=extra.gateway, payment_no=request.request_no, gateway_trade_no=extra.gateway_trade_no,
            enterprise_code=code, amount_cents=extra.amount_cents, currency=extra.currency,
            status="paid_twice_refunded" if refunded else "paid_twice"))
        if not refunded:
            found.mismatches.append(Mismatch(
                kind="paid_twice", gateway=extra.gateway, payment_no=request.request_no, order_no="",
                enterprise_code=code, ours=f"{request.status} {request.amount_cents} {request.currency} "
                f"{request.gateway_trade_no}", theirs=f"paid {extra.amount_cents} {extra.currency} "
                f"{extra.gateway_trade_no}",
                detail=f"enterprise {code} online top-up paid a second time (credited by trade "
                       f"{request.gateway_trade_no}): owed back; refund it at the gateway, then mark it refunded"))
    return found
