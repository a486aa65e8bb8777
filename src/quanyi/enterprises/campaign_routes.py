"""Admin API for benefit campaigns (福利活动): create, roster (claim codes shown once), activate (funds it from
the enterprise's balance), end (returns the rest), report (JSON, or CSV/XLSX per employee)."""

from __future__ import annotations

import logging
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import StreamingResponse

from quanyi.context import ShopContext
from quanyi.deps import ContextDep, PlatformAdminDep, ReadSessionDep, SessionDep
from quanyi.enterprises import campaigns
from quanyi.enterprises.models import Campaign
from quanyi.enterprises.routes import CodePath
from quanyi.enterprises.schemas import (
    CampaignCreate,
    CampaignRead,
    EmployeeIssued,
    EmployeesAdd,
    OptionRead,
)
from quanyi.exports import Column, export_response
from quanyi.urls import shop_base_url

__all__ = ["router", "describe_campaign", "claim_url"]

logger = logging.getLogger("quanyi.enterprises.campaigns")
router = APIRouter(prefix="/api/admin/enterprises/{code}/campaigns", tags=["admin: enterprises"])
CampaignNoPath = Annotated[str, Path(min_length=4, max_length=24, pattern=r"^[A-Z0-9]+$")]
_REPORT_COLUMNS = [Column("employee no", 16), Column("name", 16), Column("claimed", 8), Column("sku", 16),
                   Column("quantity", 8), Column("amount (cents)", 14), Column("via", 10), Column("claimed at", 20)]


def claim_url(ctx: ShopContext, campaign_no: str) -> str:
    return f"{shop_base_url(ctx.settings).rstrip('/')}/claim/{campaign_no}"


async def describe_campaign(*, session: AsyncSession, ctx: ShopContext, campaign: Campaign) -> CampaignRead:
    report = await campaigns.report(session=session, campaign=campaign)
    options = await campaigns.options_of(session=session, campaign=campaign)
    return CampaignRead(
        campaign_no=campaign.campaign_no, enterprise_code=report.enterprise_code, name=campaign.name,
        name_en=campaign.name_en, status=campaign.status, budget_per_employee_cents=campaign.budget_per_employee_cents,
        currency=campaign.currency, starts_at=campaign.starts_at, ends_at=campaign.ends_at,
        allow_wecom=campaign.allow_wecom, allow_dingtalk=campaign.allow_dingtalk,
        claim_url=claim_url(ctx, campaign.campaign_no),
        options=[OptionRead(sku_code=o.sku.code, unit_price_cents=o.unit_price_cents) for o in options],
        employees=report.employees, claimed=report.claimed, claimed_cents=report.claimed_cents,
        funded_cents=campaign.funded_cents, returned_cents=campaign.returned_cents, balance_cents=report.balance_cents,
        claims_by_option={code: n for code, n, _ in report.by_option}, claims_by_channel=report.by_via)


@router.post("", response_model=CampaignRead, status_code=201, summary="A benefit campaign (draft) with its options")
async def create_campaign(code: CodePath, data: CampaignCreate, session: SessionDep, ctx: ContextDep,
                          admin: PlatformAdminDep) -> CampaignRead:
    campaign = await campaigns.create_campaign(
        session=session, code=code, name=data.name, name_en=data.name_en, greeting=data.greeting,
        sku_codes=data.sku_codes, budget_per_employee_cents=data.budget_per_employee_cents,
        starts_at=data.starts_at, ends_at=data.ends_at, allow_wecom=data.allow_wecom,
        allow_dingtalk=data.allow_dingtalk, actor=admin)
    logger.info("campaign %s of %s created by %s", campaign.campaign_no, code, admin)
    return await describe_campaign(session=session, ctx=ctx, campaign=campaign)


@router.get("", response_model=list[CampaignRead], summary="The enterprise's campaigns with their figures")
async def list_campaigns(code: CodePath, session: ReadSessionDep, ctx: ContextDep,
                         _: PlatformAdminDep) -> list[CampaignRead]:
    return [await describe_campaign(session=session, ctx=ctx, campaign=c)
            for c in await campaigns.list_campaigns(session=session, code=code)]


@router.get("/{campaign_no}", response_model=CampaignRead, summary="One campaign with its report")
async def get_campaign(code: CodePath, campaign_no: CampaignNoPath, session: ReadSessionDep, ctx: ContextDep,
                       _: PlatformAdminDep) -> CampaignRead:
    campaign = await campaigns.get_campaign(session=session, code=code, campaign_no=campaign_no)
    return await describe_campaign(session=session, ctx=ctx, campaign=campaign)


@router.post("/{campaign_no}/employees", response_model=list[EmployeeIssued], status_code=201,
             summary="Put employees on the roster; their claim codes are in this answer only")
async def add_employees(code: CodePath, campaign_no: CampaignNoPath, data: EmployeesAdd, session: SessionDep,
                        ctx: ContextDep, admin: PlatformAdminDep) -> list[EmployeeIssued]:
    issued = await campaigns.add_employees(
        session=session, cipher=ctx.cipher, code=code, campaign_no=campaign_no, actor=admin,
        employees=[campaigns.EmployeeIn(**e.model_dump()) for e in data.employees])
    logger.info("%d employees added to campaign %s by %s", len(issued), campaign_no, admin)
    base = claim_url(ctx, campaign_no)
    return [EmployeeIssued(employee_no=e.employee_no, name=e.name, claim_code=claim_code,
                           claim_url=f"{base}#code={claim_code}") for e, claim_code in issued]


@router.post("/{campaign_no}/activate", response_model=CampaignRead,
             summary="Fund the campaign from the enterprise's balance (headcount x budget) and open it")
async def activate(code: CodePath, campaign_no: CampaignNoPath, session: SessionDep, ctx: ContextDep,
                   admin: PlatformAdminDep) -> CampaignRead:
    campaign = await campaigns.activate_campaign(session=session, code=code, campaign_no=campaign_no, actor=admin)
    logger.info("campaign %s activated by %s (%d cents)", campaign_no, admin, campaign.funded_cents)
    return await describe_campaign(session=session, ctx=ctx, campaign=campaign)


@router.post("/{campaign_no}/end", response_model=CampaignRead,
             summary="Close the campaign now; the unclaimed budget goes back to the enterprise's balance (once)")
async def end(code: CodePath, campaign_no: CampaignNoPath, session: SessionDep, ctx: ContextDep,
              admin: PlatformAdminDep) -> CampaignRead:
    campaign = await campaigns.get_campaign(session=session, code=code, campaign_no=campaign_no)
    moved = await campaigns.end_campaign(session=session, campaign=campaign, actor=admin)
    logger.info("campaign %s ended by %s; %d cents returned", campaign_no, admin, moved)
    campaign = await campaigns.get_campaign(session=session, code=code, campaign_no=campaign_no)
    return await describe_campaign(session=session, ctx=ctx, campaign=campaign)


@router.get("/{campaign_no}/report", summary="Who claimed what, per employee, as CSV or XLSX (no codes)",
            response_class=StreamingResponse)
async def report_file(code: CodePath, campaign_no: CampaignNoPath, session: ReadSessionDep, _: PlatformAdminDep,
                      format: Annotated[Literal["csv", "xlsx"], Query()] = "csv") -> StreamingResponse:
    campaign = await campaigns.get_campaign(session=session, code=code, campaign_no=campaign_no)
    rows = await campaigns.roster_rows(session=session, campaign=campaign)

    async def chunks():  # type: ignore[no-untyped-def]
        yield rows

    return export_response(format, filename=f"campaign-{campaign_no}", columns=_REPORT_COLUMNS, rows=chunks(),
                           sheet_name=campaign_no)
