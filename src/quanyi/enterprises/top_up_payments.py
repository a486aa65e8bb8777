"""Top-ups paid online (在线充值): the portal sends the enterprise's admin to one of the shop's payment gateways with
the request number as our trade number and this feature's own notification URL; the gateway's verified
notification (or its answer to an active query, 主动查单) credits the request once through
`top_ups.credit_top_up`. Only through the gateway interface (payments.gateway): a top-up is not an order, so
payments.service never sees it.

A notification is believed like an order's payment: the gateway checks its signature; it must name an online
request at that same gateway and carry exactly its amount and currency. Exactly once: the request's conditional
UPDATE (pending -> credited) and the unique (gateway, trade no); a repeat is acknowledged and moves nothing.

Offered gateways: those whose notification goes to the URL each checkout names (sandbox, Alipay, WeChat Pay).
Stripe sends every event to the one webhook payments registered, so it is not offered here.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from quanyi.db import Database, utcnow
from quanyi.enterprises import top_up_alerts, top_ups
from quanyi.enterprises.models import Enterprise, TopUpRequest, TopUpStatus
from quanyi.errors import DomainError, NotFound
from quanyi.payments.gateway import (
    Checkout,
    CheckoutRequest,
    GatewayRegistry,
    GatewayUnavailable,
    PaymentGateway,
    PaymentNotification,
    TradeQuery,
    UnknownGateway,
)
from quanyi.risk.counters import SlidingCounters
from quanyi.staff.audit import Actor, record_action

__all__ = ["ONLINE_GATEWAYS", "TopUpPaymentMismatch", "UnknownTopUpPayment", "Applied", "online_gateways",
           "callback_urls", "open_checkout", "handle_notification", "record_credit", "settle_by_query",
           "apply_paid_trade", "query_unpaid_once", "QUERY_WINDOW", "check_payment", "CHECK_EVERY_SECONDS"]

logger = logging.getLogger(__name__)
ONLINE_GATEWAYS = ("sandbox", "alipay", "wechat")
# The portal's 查询支付结果 button asks the gateway about one request at most once in this many seconds (a shared
# sliding counter: every process of the shop); a press within it answers from the stored state.
CHECK_EVERY_SECONDS = 5.0
QUERY_WINDOW = dt.timedelta(hours=2)  # how long the background loop keeps asking about an unpaid checkout
_QUERY_AFTER = dt.timedelta(seconds=30)  # the notification usually comes first


class TopUpPaymentMismatch(DomainError):
    """The notification's amount or currency is not the request's: nothing is credited."""

    code = "top_up_payment_mismatch"


class UnknownTopUpPayment(NotFound):
    code = "unknown_top_up_payment"


@dataclass(frozen=True, slots=True)
class Applied:
    """What a gateway's word did: the request, its enterprise, and whether this call credited it."""

    request: TopUpRequest
    enterprise_code: str
    credited: bool


def online_gateways(registry: GatewayRegistry) -> list[PaymentGateway]:
    """The configured gateways an enterprise can top up through."""
    return [gateway for gateway in registry.all() if gateway.name in ONLINE_GATEWAYS]


def callback_urls(base_url: str, gateway_name: str) -> tuple[str, str]:
    """Where the gateway notifies us, and where it sends the admin back."""
    return f"{base_url}/enterprise-top-ups/{gateway_name}/notify", f"{base_url}/portal/top-ups?m=top_up_paying"


async def open_checkout(*, gateway: PaymentGateway, request: TopUpRequest, enterprise_name: str, notify_url: str,
                        return_url: str, buyer_ip: str | None = None) -> Checkout:
    """Open the gateway's cashier for a pending online request (again, if the admin left it unpaid)."""
    if request.method != "online" or request.gateway != gateway.name:
        raise UnknownTopUpPayment(f"充值申请 {request.request_no} 不是通过 {gateway.title} 在线支付的")
    if request.status != TopUpStatus.PENDING.value:
        raise top_ups.TopUpDecided(f"充值申请 {request.request_no} 已处理，不能再支付")
    return await gateway.create_checkout(CheckoutRequest(
        payment_no=request.request_no, amount_cents=request.amount_cents, currency=request.currency,
        subject=f"{enterprise_name} 预存款充值"[:120], notify_url=notify_url, return_url=return_url, mode="page",
        buyer_ip=buyer_ip))


async def _apply(session: AsyncSession, gateway: PaymentGateway, paid: PaymentNotification,
                 now: dt.datetime) -> Applied:
    request = await session.scalar(select(TopUpRequest).where(
        TopUpRequest.request_no == paid.payment_no, TopUpRequest.method == "online",
        TopUpRequest.gateway == gateway.name).execution_options(populate_existing=True))
    if request is None:
        raise UnknownTopUpPayment(f"no online top-up request {paid.payment_no!r} at {gateway.name}")
    code = str(await session.scalar(select(Enterprise.code).where(Enterprise.id == request.enterprise_id)))
    if not paid.succeeded:
        return Applied(request, code, False)
    if paid.amount_cents != request.amount_cents or paid.currency != request.currency:
        raise TopUpPaymentMismatch(f"top-up {request.request_no} is {request.amount_cents} {request.currency}, the "
                                   f"gateway says {paid.amount_cents} {paid.currency}")
    credited = await top_ups.credit_top_up(session=session, code=code, request=request,
                                           actor=f"gateway:{gateway.name}", gateway_trade_no=paid.gateway_trade_no,
                                           now=now)
    if not credited and request.gateway_trade_no != paid.gateway_trade_no:
        # The money is real but the request was credited by another transaction: refund it at the gateway.
        logger.warning("top-up %s paid again by %s trade %s (credited by trade %s): refund it at the gateway",
                       request.request_no, gateway.name, paid.gateway_trade_no, request.gateway_trade_no)
        await top_up_alerts.on_paid_twice(session=session, request=request, gateway=gateway.name,
                                          trade_no=paid.gateway_trade_no, amount_cents=paid.amount_cents,
                                          currency=paid.currency, now=now)
    return Applied(request, code, credited)


async def record_credit(session: AsyncSession, gateway: PaymentGateway, applied: Applied, *, ip: str = "",
                        user_agent: str = "") -> None:
    """The audit entry of a request this gateway's word credited (its notification, or its answer when asked)."""
    found = applied.request
    await record_action(session=session, actor=Actor(name=f"gateway:{gateway.name}", staff_id=None, ip=ip,
                                                      user_agent=user_agent),
                        action="enterprise_top_up_paid_online", object_type="enterprise",
                        object_id=applied.enterprise_code, summary=(
                            f"{found.request_no}: {found.amount_cents} cents {found.currency}, trade "
                            f"{found.gateway_trade_no}"))


async def handle_notification(*, session: AsyncSession, gateway: PaymentGateway, headers: Mapping[str, str],
                              body: bytes, now: dt.datetime | None = None) -> Applied:
    """A gateway's notification about an online top-up: credits it once."""
    now = now or utcnow()
    return await _apply(session, gateway, gateway.verify_notification(headers=headers, body=body, now=now), now)


async def settle_by_query(*, db: Database, gateway: PaymentGateway, code: str, request_no: str) -> bool:
    """Ask the gateway about a pending online request (主动查单: a lost notification still credits it); True when
    this call credited it."""
    async with db.read_session() as session:
        request = await top_ups.get_top_up(session=session, code=code, request_no=request_no)
        if request.method != "online" or request.gateway != gateway.name or \
                request.status != TopUpStatus.PENDING.value:
            return False
    trade = await gateway.query_trade(request_no)  # outside any transaction: a network call
    if trade.state != "paid":
        return False
    return (await apply_paid_trade(db=db, gateway=gateway, trade=trade)).credited


async def apply_paid_trade(*, db: Database, gateway: PaymentGateway, trade: TradeQuery) -> Applied:
    """The gateway's answer that a request is paid, applied like its notification (in a transaction of its own);
    a credit is audited like a notification's (the button, the loop and reconciliation come here)."""
    async with db.transaction() as session:
        applied = await _apply(session, gateway, trade.as_notification(), utcnow())
        if applied.credited:
            await record_credit(session, gateway, applied)
        return applied


async def check_payment(*, db: Database, gateway: PaymentGateway, counters: SlidingCounters, code: str,
                        request_no: str, at: float | None = None) -> str:
    """The portal's 查询支付结果 button on an online request: "credited" when it is credited (by this call or
    before it), else its stored status ("pending", "refused"). Asks the gateway only about a pending request, and
    at most once per CHECK_EVERY_SECONDS per request, so repeated presses cannot hammer the gateway."""
    async with db.read_session() as session:
        status = (await top_ups.get_top_up(session=session, code=code, request_no=request_no)).status
    if status != TopUpStatus.PENDING.value:
        return status
    # counted atomically across processes (Redis script / per-key lock): only the first press in the window asks
    presses = await counters.hit(f"top_up_check:{request_no}", window_seconds=CHECK_EVERY_SECONDS,
                                 at=time.time() if at is None else at)
    if presses == 1 and await settle_by_query(db=db, gateway=gateway, code=code, request_no=request_no):
        return TopUpStatus.CREDITED.value
    async with db.read_session() as session:  # a notification may have credited it meanwhile
        return (await top_ups.get_top_up(session=session, code=code, request_no=request_no)).status


async def query_unpaid_once(*, db: Database, registry: GatewayRegistry, now: dt.datetime | None = None,
                            limit: int = 50) -> int:
    """The background loop's turn (主动查单): ask the gateways about online requests still unpaid within
    QUERY_WINDOW of their start, so a paid top-up whose notification was lost is credited anyway. Returns how
    many this turn credited."""
    now = now or utcnow()
    credited, after = 0, 0
    while True:  # every one in the window, a page (`limit`) at a time: none waits behind the first page for good
        async with db.read_session() as session:
            rows = (await session.execute(
                select(TopUpRequest.id, TopUpRequest.request_no, TopUpRequest.gateway, Enterprise.code)
                .join(Enterprise, Enterprise.id == TopUpRequest.enterprise_id)
                .where(TopUpRequest.status == TopUpStatus.PENDING.value, TopUpRequest.method == "online",
                       TopUpRequest.requested_at > now - QUERY_WINDOW,
                       TopUpRequest.requested_at < now - _QUERY_AFTER, TopUpRequest.id > after)
                .order_by(TopUpRequest.id).limit(limit))).all()
        for request_id, request_no, gateway_name, code in rows:
            after = request_id
            try:
                credited += await settle_by_query(db=db, gateway=registry.get(str(gateway_name)), code=code,
                                                  request_no=request_no)
            except (GatewayUnavailable, UnknownGateway, DomainError) as exc:
                logger.warning("top-up %s: asking %s failed: %s", request_no, gateway_name, exc)
        if len(rows) < limit:
            return credited
