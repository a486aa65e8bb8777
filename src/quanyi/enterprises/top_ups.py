"""Top-ups an enterprise asks for itself (充值申请): an admin of the enterprise asks in the portal for an amount
paid by bank transfer (对公转账) and gives the transfer's reference; an operator, seeing the money on the shop's
bank account, confirms it in the console (the balance is credited) or refuses it with a reason. Or the admin pays
online through one of the shop's gateways, whose verified notification credits it (top_up_payments.py).

Money moves only at the confirmation, through `service.top_up` (the ledger's `customer_top_up`, C customer_prepaid)
under the reference `top-up-request:<request no>`. A bank transfer is debited to platform_cash (the money is on the
shop's bank account: the same booking as the operator's own top-up); a request paid online to the gateway's
clearing account `gateway_clearing:<gateway>`, like an order's payment, so reconciliation with the gateway finds
it (requests paid online before that booking stay on platform_cash: postings are never rewritten).
Exactly once: the request goes pending -> credited by one conditional UPDATE,
whose row lock makes a concurrent second confirmation wait and then find nothing pending (it credits nothing),
and the posting's unique reference would refuse a second credit even so.
"""

from __future__ import annotations

import datetime as dt
import re
import secrets
from collections.abc import Sequence

from sqlalchemy import func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from quanyi.db import utcnow
from quanyi.enterprises import service as enterprises_service
from quanyi.enterprises import top_up_alerts
from quanyi.enterprises.models import Enterprise, TopUpRequest, TopUpStatus
from quanyi.errors import Conflict, InvalidInput, NotFound
from quanyi.money import MAX_AMOUNT_CENTS, InvalidAmount, parse_amount

__all__ = ["METHODS", "MAX_PENDING", "InvalidTopUp", "TopUpNotFound", "TopUpDecided", "TooManyPendingTopUps",
           "parse_yuan", "request_top_up", "confirm_top_up", "refuse_top_up", "list_top_ups", "get_top_up",
           "posting_reference", "credit_top_up", "decide", "waiting_for_operator"]

METHODS = ("bank_transfer", "online")  # 对公转账 (an operator confirms) | a payment gateway (its notification)
MAX_PENDING = 10  # open requests per enterprise: enough for real use, not a queue anyone can flood
UNPAID_COUNTS_FOR = dt.timedelta(days=1)  # an online checkout left unpaid stops counting after this
_KEY = re.compile(r"^[A-Za-z0-9_-]{8,64}$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
_AMOUNT_MESSAGE = "请填写正确的充值金额：大于 0、最多两位小数、不超过 1 亿元，例如 5000 或 5000.50"


class InvalidTopUp(InvalidInput):
    code = "invalid_top_up"


class TopUpNotFound(NotFound):
    code = "top_up_not_found"


class TopUpDecided(Conflict):
    """Already credited or refused the other way: the decision stands."""

    code = "top_up_decided"


class TooManyPendingTopUps(Conflict):
    code = "too_many_pending_top_ups"


def parse_yuan(text: str, currency: str) -> int:
    """An amount typed in yuan ("5000", "5,000.50") as integer cents; anything else refused in Chinese."""
    try:
        cents = parse_amount(text, currency)
    except InvalidAmount:
        cents = 0
    if not 0 < cents <= MAX_AMOUNT_CENTS:
        raise InvalidTopUp(_AMOUNT_MESSAGE, field="amount")
    return cents


def _line(value: str, *, field: str, max_length: int, message: str, required: bool = True) -> str:
    cleaned = value.strip()
    if (required and not cleaned) or len(cleaned) > max_length or _CONTROL.search(cleaned):
        raise InvalidTopUp(message, field=field)
    return cleaned


def posting_reference(request_no: str) -> str:
    """The ledger reference a confirmed request is credited under (one posting per request)."""
    return f"top-up-request:{request_no}"


async def _by_key(session: AsyncSession, enterprise: Enterprise, request_key: str) -> TopUpRequest | None:
    return await session.scalar(select(TopUpRequest).where(TopUpRequest.enterprise_id == enterprise.id,
                                                           TopUpRequest.request_key == request_key))


async def request_top_up(
    *, session: AsyncSession, code: str, amount_cents: int, method: str, payer_reference: str = "", note: str = "",
    actor: str, request_key: str, gateway: str | None = None, now: dt.datetime | None = None,
) -> tuple[TopUpRequest, bool]:
    """Ask for a top-up (pending; nothing is credited yet): by bank transfer with its reference, or online
    through `gateway`. The same `request_key` (the form's one-time key) returns the first request:
    (request, created)."""
    now = now or utcnow()
    enterprise = await enterprises_service.get_enterprise(session=session, code=code)
    if not isinstance(amount_cents, int) or isinstance(amount_cents, bool) or \
            not 0 < amount_cents <= MAX_AMOUNT_CENTS:
        raise InvalidTopUp(_AMOUNT_MESSAGE, field="amount")
    if method not in METHODS:
        raise InvalidTopUp("付款方式只能是对公银行转账或在线支付", field="method")
    if (method == "online") != bool(gateway):
        raise InvalidTopUp("在线支付须选择支付渠道", field="method")
    if method == "online":  # a new payment: not while the account is frozen (a transfer already sent still is)
        enterprises_service.check_not_suspended(enterprise.status)
    reference = _line(payer_reference, field="payer_reference", max_length=64, required=method == "bank_transfer",
                      message="请填写银行转账的流水号或汇款附言（1-64 个字符）")
    note = _line(note, field="note", max_length=500, required=False, message="备注最多 500 个字，且不能有控制字符")
    if not _KEY.match(request_key):
        raise InvalidTopUp("表单已过期，请刷新页面后重新提交", field="request_key")
    if (found := await _by_key(session, enterprise, request_key)) is not None:
        return found, False
    # The enterprise's row locked before counting: concurrent requests of one enterprise count and insert one at a
    # time, so MAX_PENDING is exact (PostgreSQL; SQLite's write transactions already hold the one writer lock).
    await session.execute(select(Enterprise.id).where(Enterprise.id == enterprise.id).with_for_update())
    pending = await session.scalar(select(func.count()).select_from(TopUpRequest).where(
        TopUpRequest.enterprise_id == enterprise.id, TopUpRequest.status == TopUpStatus.PENDING.value,
        or_(TopUpRequest.method == "bank_transfer", TopUpRequest.requested_at > now - UNPAID_COUNTS_FOR)))
    if pending >= MAX_PENDING:
        raise TooManyPendingTopUps(f"已有 {pending} 笔待确认的充值申请，请等商城确认后再提交新的申请")
    account = await enterprises_service.account_of(session=session, enterprise=enterprise)
    made = TopUpRequest(
        request_no="TU" + "".join(secrets.choice(_ALPHABET) for _ in range(12)), enterprise_id=enterprise.id,
        request_key=request_key, amount_cents=amount_cents, currency=account.currency, method=method,
        payer_reference=reference, note=note, gateway=gateway, status=TopUpStatus.PENDING.value,
        requested_by=actor[:64], requested_at=now, refusal_reason="")
    try:
        async with session.begin_nested():  # the same form sent twice at once: the unique key keeps one
            session.add(made)
            await session.flush()
    except IntegrityError:
        found = await _by_key(session, enterprise, request_key)
        if found is None:
            raise
        return found, False
    if method == "bank_transfer":  # operators must look for the money and confirm it
        await top_up_alerts.on_requested(session=session, request=made, enterprise=enterprise, now=now)
    return made, True


async def get_top_up(*, session: AsyncSession, code: str, request_no: str) -> TopUpRequest:
    """One request of this enterprise (another enterprise's number is not found)."""
    enterprise = await enterprises_service.get_enterprise(session=session, code=code)
    found = await session.scalar(select(TopUpRequest).where(TopUpRequest.request_no == request_no,
                                                            TopUpRequest.enterprise_id == enterprise.id)
                                 .execution_options(populate_existing=True))
    if found is None:
        raise TopUpNotFound(f"没有充值申请 {request_no}")
    return found


async def decide(session: AsyncSession, request: TopUpRequest, status: TopUpStatus, actor: str,
                 now: dt.datetime, reason: str = "", gateway_trade_no: str | None = None) -> bool:
    """pending -> status, by one conditional UPDATE: True when this call decided it."""
    # The UPDATE's row lock orders concurrent deciders: the second waits, then finds nothing pending.
    changed = await session.execute(
        update(TopUpRequest).where(TopUpRequest.id == request.id, TopUpRequest.status == TopUpStatus.PENDING.value)
        .values(status=status.value, decided_by=actor[:64], decided_at=now, refusal_reason=reason,
                gateway_trade_no=gateway_trade_no)
        .execution_options(synchronize_session=False))
    await session.refresh(request)
    return bool(changed.rowcount)  # type: ignore[attr-defined]


async def confirm_top_up(*, session: AsyncSession, code: str, request_no: str, actor: str,
                         now: dt.datetime | None = None) -> tuple[TopUpRequest, bool]:
    """The money arrived: credit the requested amount once. A repeat returns (request, False) and credits
    nothing; a refused request cannot be confirmed."""
    request = await get_top_up(session=session, code=code, request_no=request_no)
    if request.method != "bank_transfer":
        raise TopUpDecided(f"充值申请 {request_no} 是在线支付，由支付渠道的通知入账")
    if not await credit_top_up(session=session, code=code, request=request, actor=actor, now=now):
        if request.status == TopUpStatus.CREDITED.value:
            return request, False
        raise TopUpDecided(f"充值申请 {request_no} 已被拒绝，不能再入账")
    return request, True


async def credit_top_up(*, session: AsyncSession, code: str, request: TopUpRequest, actor: str,
                        gateway_trade_no: str | None = None, now: dt.datetime | None = None) -> bool:
    """Credit a pending request's amount to the enterprise (pending -> credited, then the ledger top-up):
    True when this call credited it, False when it was no longer pending (nothing moved)."""
    if not await decide(session, request, TopUpStatus.CREDITED, actor, now or utcnow(),
                        gateway_trade_no=gateway_trade_no):
        return False
    paid = f"对公转账 {request.payer_reference}" if request.method == "bank_transfer" else \
        f"在线支付 {request.gateway} {gateway_trade_no or ''}".rstrip()
    await enterprises_service.top_up(
        session=session, code=code, amount_cents=request.amount_cents, actor=actor,
        note=f"{paid}（充值申请 {request.request_no}）", reference=posting_reference(request.request_no),
        gateway=request.gateway if request.method == "online" else None)
    return True


async def refuse_top_up(*, session: AsyncSession, code: str, request_no: str, reason: str, actor: str,
                        now: dt.datetime | None = None) -> tuple[TopUpRequest, bool]:
    """No money (or not this amount) arrived: refuse with a reason the enterprise sees; nothing is credited.
    A repeat returns (request, False); a credited request cannot be refused."""
    reason = _line(reason, field="reason", max_length=500, message="请填写拒绝原因（最多 500 个字）")
    request = await get_top_up(session=session, code=code, request_no=request_no)
    if request.method != "bank_transfer":
        raise TopUpDecided(f"充值申请 {request_no} 是在线支付：付款后自动入账，不能拒绝")
    if not await decide(session, request, TopUpStatus.REFUSED, actor, now or utcnow(), reason):
        if request.status == TopUpStatus.REFUSED.value:
            return request, False
        raise TopUpDecided(f"充值申请 {request_no} 已入账，不能再拒绝")
    return request, True


async def list_top_ups(*, session: AsyncSession, code: str, limit: int = 50) -> Sequence[TopUpRequest]:
    """The enterprise's requests, newest first."""
    enterprise = await enterprises_service.get_enterprise(session=session, code=code)
    return (await session.scalars(select(TopUpRequest).where(TopUpRequest.enterprise_id == enterprise.id)
                                  .order_by(TopUpRequest.id.desc()).limit(limit))).all()


async def waiting_for_operator(*, session: AsyncSession) -> dict[int, int]:
    """Bank-transfer requests an operator still has to confirm or refuse, counted by enterprise id."""
    rows = await session.execute(select(TopUpRequest.enterprise_id, func.count()).where(
        TopUpRequest.status == TopUpStatus.PENDING.value, TopUpRequest.method == "bank_transfer")
        .group_by(TopUpRequest.enterprise_id))
    return {int(enterprise_id): int(count) for enterprise_id, count in rows.all()}
