"""Gateway side of the sandbox (模拟支付): the cashier, its trades, and signed notifications with retries.

It behaves like a real gateway toward the shop: it knows only what the signed cashier token told it,
keeps its own trade records, and re-sends a notification with backoff until the shop answers
`success` (up to MAX_ATTEMPTS, then gives up and marks it failed). It also answers the merchant's
signed server-to-server calls: trade query, refund (idempotent on the merchant's refund number, never
more than the trade's amount in total) and refund query.
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets
from dataclasses import dataclass
from urllib.parse import urlparse

import httpx
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from quanyi.db import Database, utcnow
from quanyi.errors import InvalidInput
from quanyi.payments.sandbox.models import SandboxRefund, SandboxTrade
from quanyi.payments.sandbox.signing import open_token, sign_params

__all__ = [
    "CashierTicket", "InvalidCashierTicket", "read_ticket", "pay", "signed_notification",
    "send_notification", "notify_trade", "retry_due_notifications", "MAX_ATTEMPTS",
    "query_trade", "refund_trade", "query_refund", "RefundRefused",
]

logger = logging.getLogger(__name__)
MAX_ATTEMPTS = 8
_BACKOFF_SECONDS = (2, 5, 15, 60, 300, 900, 3600)


class InvalidCashierTicket(InvalidInput):
    code = "invalid_cashier_ticket"


@dataclass(frozen=True, slots=True)
class CashierTicket:
    payment_no: str
    amount_cents: int
    currency: str
    subject: str
    notify_url: str
    return_url: str
    expires_at: dt.datetime


def read_ticket(token: str, *, secret: str, now: dt.datetime | None = None) -> CashierTicket:
    """Open the signed cashier token the merchant created; refuse forged or expired ones."""
    now = now or utcnow()
    payload = open_token(token, secret) if len(token) < 4096 else None
    if payload is None:
        raise InvalidCashierTicket("this payment link is invalid")
    try:
        ticket = CashierTicket(
            payment_no=str(payload["p"]), amount_cents=int(payload["a"]),  # type: ignore[call-overload]
            currency=str(payload["c"]), subject=str(payload["s"]), notify_url=str(payload["n"]),
            return_url=str(payload["r"]), expires_at=dt.datetime.fromtimestamp(int(payload["e"]), dt.UTC),  # type: ignore[call-overload]
        )
    except (KeyError, TypeError, ValueError):
        raise InvalidCashierTicket("this payment link is invalid") from None
    if ticket.expires_at <= now:
        raise InvalidCashierTicket("this payment link has expired")
    for url in (ticket.notify_url, ticket.return_url):
        if urlparse(url).scheme not in ("http", "https"):
            raise InvalidCashierTicket("this payment link is invalid")
    return ticket


async def pay(*, session: AsyncSession, ticket: CashierTicket, now: dt.datetime | None = None) -> SandboxTrade:
    """The buyer pressed "pay". Paying the same payment twice returns the first trade (like a real cashier)."""
    now = now or utcnow()
    trade = await session.scalar(select(SandboxTrade).where(SandboxTrade.payment_no == ticket.payment_no))
    if trade is not None:
        return trade
    trade = SandboxTrade(
        trade_no="SB" + now.strftime("%Y%m%d") + secrets.token_hex(8).upper(), payment_no=ticket.payment_no,
        amount_cents=ticket.amount_cents, currency=ticket.currency, subject=ticket.subject[:300],
        notify_url=ticket.notify_url, return_url=ticket.return_url, paid_at=now,
        # The cashier notifies at once; the retry loop only steps in if that attempt fails.
        next_notify_at=now + dt.timedelta(seconds=30),
    )
    session.add(trade)
    await session.flush()
    return trade


def signed_notification(trade: SandboxTrade, *, secret: str, now: dt.datetime | None = None,
                        buyer_id: str | None = None) -> dict[str, str]:
    """The form the sandbox POSTs to the merchant: fresh timestamp and nonce on every attempt.
    `buyer_id`: the paying account, when the caller knows one (the shop's per-payer risk rules use it)."""
    now = now or utcnow()
    params = {
        "out_trade_no": trade.payment_no,
        "trade_no": trade.trade_no,
        "total_amount_cents": str(trade.amount_cents),
        "currency": trade.currency,
        "trade_status": "SUCCESS",
        "paid_at": trade.paid_at.isoformat(),
        "timestamp": str(int(now.timestamp())),
        "nonce": secrets.token_hex(12),
        "sign_type": "HMAC-SHA256",
    }
    if buyer_id:
        params["buyer_id"] = buyer_id
    params["sign"] = sign_params(params, secret)
    return params


async def send_notification(client: httpx.AsyncClient, url: str, params: dict[str, str]) -> str | None:
    """POST one notification. Returns None when the merchant acknowledged it, else what went wrong."""
    try:
        response = await client.post(url, data=params, timeout=10.0)
    except httpx.HTTPError as exc:
        return f"{type(exc).__name__}: {exc}"[:500]
    if response.status_code == 200 and response.text.strip() == "success":
        return None
    return f"HTTP {response.status_code}: {response.text[:200]}"


async def notify_trade(
    *, db: Database, client: httpx.AsyncClient, secret: str, trade_id: int, now: dt.datetime | None = None
) -> bool:
    """One delivery attempt for one trade, outside any transaction (the merchant writes meanwhile)."""
    now = now or utcnow()
    async with db.read_session() as session:
        trade = await session.get(SandboxTrade, trade_id)
        if trade is None or trade.notify_status != "pending":
            return trade is not None and trade.notify_status == "acknowledged"
        url, params = trade.notify_url, signed_notification(trade, secret=secret, now=now)
    error = await send_notification(client, url, params)
    async with db.transaction() as session:
        trade = await session.get(SandboxTrade, trade_id)
        assert trade is not None
        trade.notify_attempts += 1
        if error is None:
            trade.notify_status, trade.last_error = "acknowledged", None
        else:
            trade.last_error = error
            if trade.notify_attempts >= MAX_ATTEMPTS:
                trade.notify_status = "failed"
                logger.error("sandbox gave up notifying %s for %s: %s", url, trade.payment_no, error)
            else:
                delay = _BACKOFF_SECONDS[min(trade.notify_attempts - 1, len(_BACKOFF_SECONDS) - 1)]
                trade.next_notify_at = now + dt.timedelta(seconds=delay)
                logger.info("sandbox notification for %s failed (%s); retry in %ss", trade.payment_no, error, delay)
    return error is None


async def retry_due_notifications(
    *, db: Database, client: httpx.AsyncClient, secret: str, now: dt.datetime | None = None, limit: int = 50
) -> int:
    """Background job: re-send notifications whose retry time has come. Returns how many were acknowledged."""
    now = now or utcnow()
    async with db.read_session() as session:
        due = (
            await session.scalars(
                select(SandboxTrade.id)
                .where(SandboxTrade.notify_status == "pending", SandboxTrade.next_notify_at <= now)
                .order_by(SandboxTrade.next_notify_at)
                .limit(limit)
            )
        ).all()
    acknowledged = 0
    for trade_id in due:
        acknowledged += await notify_trade(db=db, client=client, secret=secret, trade_id=trade_id, now=now)
    return acknowledged


# ---------------------------------------------------------------- the merchant's server-to-server calls

class RefundRefused(InvalidInput):
    code = "refund_refused"


def _trade_answer(payment_no: str, trade: SandboxTrade | None) -> dict[str, str]:
    if trade is None:
        return {"out_trade_no": payment_no, "trade_status": "NOT_FOUND"}
    return {"out_trade_no": trade.payment_no, "trade_no": trade.trade_no, "trade_status": "SUCCESS",
            "total_amount_cents": str(trade.amount_cents), "currency": trade.currency,
            "paid_at": trade.paid_at.isoformat()}


def _refund_answer(refund: SandboxRefund, trade: SandboxTrade) -> dict[str, str]:
    return {"out_request_no": refund.refund_no, "refund_no": refund.gateway_refund_no,
            "out_trade_no": trade.payment_no, "refund_amount_cents": str(refund.amount_cents),
            "refund_status": "SUCCESS"}


async def query_trade(*, session: AsyncSession, payment_no: str) -> dict[str, str]:
    """What the sandbox knows of a merchant payment: paid (one trade) or not found (never paid)."""
    trade = await session.scalar(select(SandboxTrade).where(SandboxTrade.payment_no == payment_no))
    return _trade_answer(payment_no, trade)


async def refund_trade(
    *, session: AsyncSession, payment_no: str, refund_no: str, amount_cents: int, reason: str,
    now: dt.datetime | None = None,
) -> dict[str, str]:
    """Refund part or all of a trade. The same refund_no again returns the first refund unchanged."""
    now = now or utcnow()
    trade = await session.scalar(
        select(SandboxTrade).where(SandboxTrade.payment_no == payment_no).with_for_update()
    )
    if trade is None:
        raise RefundRefused(f"no trade for {payment_no}", reason="TRADE_NOT_EXIST")
    existing = await session.scalar(select(SandboxRefund).where(SandboxRefund.refund_no == refund_no))
    if existing is not None:
        if existing.trade_id != trade.id or existing.amount_cents != amount_cents:
            raise RefundRefused(f"refund {refund_no} was already made with other parameters",
                                reason="REQUEST_PARAMS_CHANGED")
        return _refund_answer(existing, trade)
    if amount_cents <= 0:
        raise RefundRefused("refund amount must be positive", reason="INVALID_AMOUNT")
    refunded = await session.scalar(
        select(func.coalesce(func.sum(SandboxRefund.amount_cents), 0)).where(SandboxRefund.trade_id == trade.id)
    )
    if refunded + amount_cents > trade.amount_cents:
        raise RefundRefused(f"refunds would exceed the trade amount ({refunded} already refunded of "
                            f"{trade.amount_cents})", reason="REFUND_AMT_EXCEEDED")
    refund = SandboxRefund(refund_no=refund_no, gateway_refund_no="SR" + now.strftime("%Y%m%d")
                           + secrets.token_hex(8).upper(), trade_id=trade.id, amount_cents=amount_cents,
                           reason=reason[:200], created_at=now)
    session.add(refund)
    await session.flush()
    return _refund_answer(refund, trade)


async def query_refund(*, session: AsyncSession, refund_no: str) -> dict[str, str]:
    refund = await session.scalar(select(SandboxRefund).where(SandboxRefund.refund_no == refund_no))
    if refund is None:
        return {"out_request_no": refund_no, "refund_status": "NOT_FOUND"}
    trade = await session.get(SandboxTrade, refund.trade_id)
    assert trade is not None
    return _refund_answer(refund, trade)
