"""An employee's claim on a benefit campaign (福利活动领取): who they are (claim code or WeCom / DingTalk login),
their one claim (an order within the budget, paid from the campaign's account and delivered in one transaction)
and its codes. The campaign itself (roster, funding, end, report): campaigns.py."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from quanyi.db import Database, utcnow
from quanyi.enterprises import service as enterprises_service
from quanyi.enterprises.campaigns import (
    CampaignClosed,
    campaign_by_no,
    hash_claim_code,
    normalize_claim_code,
    options_of,
)
from quanyi.enterprises.models import Campaign, CampaignClaim, CampaignEmployee, CampaignStatus, EnterpriseStatus
from quanyi.errors import Conflict, DomainError, InvalidInput, NotFound
from quanyi.inventory.crypto import CardKeyCipher
from quanyi.inventory.schemas import RevealedKey
from quanyi.money import line_total
from quanyi.orders import service as orders_service
from quanyi.orders.models import Order
from quanyi.payments.balance import pay_order_from_balance

__all__ = ["AlreadyClaimed", "NotOnRoster", "ClaimResult", "employee_by_code", "employee_by_id", "claim_of",
           "is_open", "claim", "reveal_claim"]

RESERVATION = dt.timedelta(minutes=15)  # never used up: a claim's order is paid in the transaction placing it


class AlreadyClaimed(Conflict):
    code = "already_claimed"


class NotOnRoster(NotFound):
    """No employee of this campaign has this claim code / login (one answer for both: it tells nothing)."""

    code = "not_on_roster"


@dataclass(frozen=True, slots=True)
class ClaimResult:
    claim: CampaignClaim
    created: bool


async def employee_by_code(*, session: AsyncSession, cipher: CardKeyCipher, campaign: Campaign,
                           claim_code: str) -> CampaignEmployee:
    normalized = normalize_claim_code(claim_code)
    if not 8 <= len(normalized) <= 32:
        raise NotOnRoster("this claim code is not valid for this campaign")
    employee = await session.scalar(select(CampaignEmployee).where(
        CampaignEmployee.campaign_id == campaign.id,
        CampaignEmployee.claim_code_hash == hash_claim_code(cipher, campaign.campaign_no, normalized)))
    if employee is None:
        raise NotOnRoster("this claim code is not valid for this campaign")
    return employee


async def employee_by_id(*, session: AsyncSession, campaign: Campaign, employee_id: int) -> CampaignEmployee:
    employee = await session.get(CampaignEmployee, employee_id)
    if employee is None or employee.campaign_id != campaign.id:
        raise NotOnRoster("you are not on this campaign's list")
    return employee


async def claim_of(*, session: AsyncSession, employee_id: int) -> CampaignClaim | None:
    return await session.scalar(select(CampaignClaim).where(CampaignClaim.employee_id == employee_id))


def is_open(campaign: Campaign, now: dt.datetime) -> bool:
    return campaign.status == CampaignStatus.ACTIVE.value and campaign.starts_at <= now < campaign.ends_at


async def claim(
    *, db: Database, campaign_no: str, employee_id: int, sku_code: str, quantity: int, via: str, ip: str = "",
    now: dt.datetime | None = None,
) -> ClaimResult:
    """The employee's one claim: an order of `quantity` x `sku_code` within the budget, paid from the campaign's
    account and delivered in one transaction. A second claim (a double tap, another phone) returns the first
    with created False; a refusal (closed, over budget, sold out, the enterprise suspended) changes nothing."""
    now = now or utcnow()
    if via not in ("code", "wecom", "dingtalk"):
        raise InvalidInput("unknown claim channel")
    try:
        async with db.transaction() as session:
            campaign, enterprise = await campaign_by_no(session=session, campaign_no=campaign_no)
            employee = await employee_by_id(session=session, campaign=campaign, employee_id=employee_id)
            earlier = await claim_of(session=session, employee_id=employee.id)
            if earlier is not None:
                return ClaimResult(earlier, False)
            if enterprise.status == EnterpriseStatus.SUSPENDED.value:  # its money is frozen, the campaign's too
                raise enterprises_service.EnterpriseSuspended(
                    "the enterprise's account is suspended: claims are paused until it is active again")
            if not is_open(campaign, now):
                raise CampaignClosed("this campaign is not open for claims" if now < campaign.ends_at
                                     else "this campaign has ended")
            options = {o.sku.code: o for o in await options_of(session=session, campaign=campaign)}
            option = options.get(sku_code.strip().upper())
            if option is None:
                raise InvalidInput("choose one of this campaign's benefits")
            if not isinstance(quantity, int) or not option.sku.min_quantity <= quantity <= option.max_quantity:
                raise InvalidInput(f"you can take 1 to {option.max_quantity} of this benefit within your budget",
                                   max_quantity=option.max_quantity)
            amount = line_total(option.unit_price_cents, quantity)
            # The claim row first: a concurrent claim of this employee waits on the unique employee_id and loses.
            row = CampaignClaim(campaign_id=campaign.id, employee_id=employee.id, order_id=None, sku_id=option.sku.id,
                                quantity=quantity, amount_cents=amount, via=via, claimed_at=now)
            session.add(row)
            await session.flush()
            order = await orders_service.create_order(
                session=session, sku_id=option.sku.id, sku=option.sku, quantity=quantity,
                contact=employee.phone or employee.email or f"{employee.employee_no.lower()}@claims.invalid",
                ip=ip, reservation_ttl=RESERVATION, unit_price_cents=option.unit_price_cents,
                customer_account_id=campaign.account_id, now=now)
            row.order_id = order.id
            await session.flush()
            await pay_order_from_balance(session=session, order_id=order.id, account_id=campaign.account_id, now=now)
            return ClaimResult(row, True)
    except IntegrityError:
        async with db.read_session() as session:
            earlier = await claim_of(session=session, employee_id=employee_id)
        if earlier is None:
            raise
        return ClaimResult(earlier, False)


async def reveal_claim(*, session: AsyncSession, cipher: CardKeyCipher, claim_row: CampaignClaim, ip: str,
                       user_agent: str) -> tuple[Order, list[RevealedKey]]:
    """The claimed order and its codes (an audited reveal, channel "claim"); no codes while it is not delivered."""
    assert claim_row.order_id is not None
    order = await orders_service.get_order_by_id(session=session, order_id=claim_row.order_id)
    try:
        keys = await orders_service.reveal_order_keys(session=session, cipher=cipher, order=order, channel="claim",
                                                      ip=ip, user_agent=user_agent)
    except DomainError:
        keys = []
    return order, keys
