"""Benefit campaigns in the portal (福利活动): create one (a draft; employees may also sign in through the
enterprise's WeCom / DingTalk app, the same options as the admin API), load its roster (claim codes shown on that
answer only), fund it from the enterprise's balance (activation), close it (the unclaimed budget returns), and see
who claimed what. The enterprises campaign service does each step and keeps every money rule; every action is
audited with the enterprise user as actor."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import Path, Request
from fastapi.responses import HTMLResponse, Response

from quanyi.deps import ContextDep
from quanyi.enterprises import campaigns, oauth, pricing, users
from quanyi.enterprises import service as enterprises_service
from quanyi.enterprises.campaign_routes import claim_url
from quanyi.enterprises.portal import auth
from quanyi.enterprises.portal.auth import PortalUser, UserDep, needs
from quanyi.enterprises.portal.pages import audit, forms, not_found
from quanyi.enterprises.portal.rendering import render_page
from quanyi.errors import DomainError, NotFound
from quanyi.money import format_money
from quanyi.shoptime import shop_zone

__all__ = ["router", "parse_roster"]

router = auth.portal_router("/portal/campaigns")
RunnerDep = Annotated[PortalUser, needs(users.CAMPAIGNS)]
CampaignNo = Annotated[str, Path(min_length=4, max_length=24, pattern=r"^[A-Z0-9]+$")]
MESSAGES = ("campaign_created", "campaign_activated", "campaign_ended")
MAX_ROSTER_LINES = 2_000  # per form; the API takes up to campaigns.MAX_EMPLOYEES


def parse_roster(text: str) -> list[campaigns.EmployeeIn]:
    """`employee no,name,mobile,e-mail,WeCom user id,DingTalk union id` per line, the last four optional (a comma,
    a tab or a Chinese comma between fields)."""
    rows = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        fields = [f.strip() for f in line.replace("，", ",").replace("\t", ",").split(",")]
        if len(fields) < 2 or len(fields) > 6:
            raise forms.FormError(f"line {number}: give employee no,name[,mobile[,e-mail[,WeCom user id[,DingTalk "
                                  "union id]]]]", field="employees")
        fields += [""] * (6 - len(fields))
        rows.append(campaigns.EmployeeIn(employee_no=fields[0], name=fields[1], phone=fields[2], email=fields[3],
                                         wecom_userid=fields[4], dingtalk_union_id=fields[5]))
    if not rows:
        raise forms.FormError("no employees given", field="employees")
    if len(rows) > MAX_ROSTER_LINES:
        raise forms.FormError(f"at most {MAX_ROSTER_LINES} employees per form", field="employees")
    return rows


async def _list_page(request: Request, ctx: ContextDep, user: PortalUser, *, message: forms.Message | None = None,
                     typed: dict[str, str] | None = None, status_code: int = 200) -> HTMLResponse:
    async with ctx.db.read_session() as session:
        enterprise = await enterprises_service.get_enterprise(session=session, code=user.code)
        account = await enterprises_service.account_of(session=session, enterprise=enterprise)
        reports = [await campaigns.report(session=session, campaign=c)
                   for c in await campaigns.list_campaigns(session=session, code=user.code)]
        priced = await pricing.price_list(session=session, code=user.code)
        apps = {row.provider for row in await oauth.login_apps(session=session, code=user.code)}
    today = dt.datetime.now(shop_zone(ctx.settings.shop_timezone)).date()
    return render_page(request, "portal/campaigns.html", {
        "campaigns": reports, "message": message, "currency": account.currency, "apps": apps,
        "providers": oauth.PROVIDERS,
        "typed": typed or {"skus": ", ".join(sku.code for sku, _ in priced), "starts": today.isoformat(),
                           "ends": (today + dt.timedelta(days=14)).isoformat()},
    }, user=user, active="campaigns", status_code=status_code)


@router.get("", response_class=HTMLResponse)
async def campaign_list(request: Request, ctx: ContextDep, user: UserDep) -> Response:
    return await _list_page(request, ctx, user, message=forms.flash(request, "portal", MESSAGES, values=("no",)))


def _day(form: Any, name: str, zone: dt.tzinfo, *, next_day: bool = False) -> dt.datetime:
    day = forms.day(form, name)
    start = dt.datetime.combine(day + dt.timedelta(days=1 if next_day else 0), dt.time(), zone)
    return start.astimezone(dt.UTC)


@router.post("", response_class=HTMLResponse)
async def new_campaign(request: Request, ctx: ContextDep, user: RunnerDep) -> Response:
    form = await request.form()
    typed = {name: str(form.get(name, ""))[:300] for name in ("name", "name_en", "skus", "budget", "starts", "ends",
                                                              "greeting", "allow_wecom", "allow_dingtalk")}
    zone = shop_zone(ctx.settings.shop_timezone)
    try:
        enterprises_service.check_not_suspended(user.login.enterprise_status)
        starts_at = max(_day(form, "starts", zone), dt.datetime.now(dt.UTC).replace(microsecond=0))
        ends_at = _day(form, "ends", zone, next_day=True)  # the end day is included
        async with ctx.db.transaction() as session:
            enterprise = await enterprises_service.get_enterprise(session=session, code=user.code)
            account = await enterprises_service.account_of(session=session, enterprise=enterprise)
            budget = forms.amount(form, "budget", account.currency) if typed["budget"].strip() else None
            campaign = await campaigns.create_campaign(
                session=session, code=user.code, name=forms.text(form, "name", max_length=200, required=True),
                name_en=forms.text(form, "name_en", max_length=200),
                greeting=forms.text(form, "greeting", max_length=500),
                sku_codes=[c for c in forms.text(form, "skus", max_length=2000, required=True)
                           .replace("，", ",").split(",") if c.strip()],
                budget_per_employee_cents=budget, starts_at=starts_at, ends_at=ends_at,
                allow_wecom=forms.checkbox(form, "allow_wecom"), allow_dingtalk=forms.checkbox(form, "allow_dingtalk"),
                actor=user.actor_name)
            await audit(session, user, "portal_campaign_created", f"{campaign.campaign_no}: {campaign.name}"
                        f" (WeCom {'on' if campaign.allow_wecom else 'off'}, DingTalk "
                        f"{'on' if campaign.allow_dingtalk else 'off'})")
    except DomainError as exc:
        return await _list_page(request, ctx, user, message=forms.error(exc), typed=typed,
                                status_code=forms.status_for(exc))
    return forms.back(f"/portal/campaigns/{campaign.campaign_no}", "campaign_created", no=campaign.campaign_no)


async def _detail(request: Request, ctx: ContextDep, user: PortalUser, campaign_no: str, *,
                  message: forms.Message | None = None, issued: list[dict[str, str]] | None = None,
                  roster_text: str = "", status_code: int = 200) -> HTMLResponse:
    try:
        async with ctx.db.read_session() as session:
            campaign = await campaigns.get_campaign(session=session, code=user.code, campaign_no=campaign_no)
            report = await campaigns.report(session=session, campaign=campaign)
            options = await campaigns.options_of(session=session, campaign=campaign)
            rows = await campaigns.roster_rows(session=session, campaign=campaign)
    except NotFound:
        return not_found(request, user)
    return render_page(request, "portal/campaign.html", {
        "c": campaign, "r": report, "options": options, "rows": rows, "message": message, "issued": issued,
        "roster_text": roster_text, "claim_url": claim_url(ctx, campaign.campaign_no),
    }, user=user, active="campaigns", status_code=status_code)


@router.get("/{campaign_no}", response_class=HTMLResponse)
async def campaign_detail(campaign_no: CampaignNo, request: Request, ctx: ContextDep, user: UserDep) -> Response:
    return await _detail(request, ctx, user, campaign_no,
                         message=forms.flash(request, "portal", MESSAGES, values=("no", "amount")))


@router.post("/{campaign_no}/{action}", response_class=HTMLResponse)
async def campaign_action(campaign_no: CampaignNo, action: Annotated[str, Path(
        pattern=r"^(employees|activate|end)$")], request: Request, ctx: ContextDep, user: RunnerDep) -> Response:
    form = await request.form()
    roster_text = str(form.get("employees", ""))[:200_000]
    try:
        async with ctx.db.transaction() as session:
            campaign = await campaigns.get_campaign(session=session, code=user.code, campaign_no=campaign_no)
            if action != "end":  # ending winds down (the rest goes back to the enterprise)
                enterprises_service.check_not_suspended(user.login.enterprise_status)
            if action == "employees":
                added = await campaigns.add_employees(session=session, cipher=ctx.cipher, code=user.code,
                                                      campaign_no=campaign_no, employees=parse_roster(roster_text),
                                                      actor=user.actor_name)
                summary = f"{campaign_no}: {len(added)} employees"
            elif action == "activate":
                campaign = await campaigns.activate_campaign(session=session, code=user.code,
                                                             campaign_no=campaign_no, actor=user.actor_name)
                summary = f"{campaign_no}: funded {campaign.funded_cents}"
            else:
                moved = await campaigns.end_campaign(session=session, campaign=campaign, actor=user.actor_name)
                summary = f"{campaign_no}: {moved} returned"
            await audit(session, user, f"portal_campaign_{action}", summary)
    except NotFound:
        return not_found(request, user)
    except DomainError as exc:
        return await _detail(request, ctx, user, campaign_no, message=forms.error(exc), roster_text=roster_text,
                             status_code=forms.status_for(exc))
    if action == "employees":  # the claim codes are on this answer only (no-store, never in a redirect or a log)
        base = claim_url(ctx, campaign_no)
        return await _detail(request, ctx, user, campaign_no, issued=[
            {"no": e.employee_no, "name": e.name, "code": code, "url": f"{base}#code={code}"} for e, code in added])
    if action == "activate":
        return forms.back(f"/portal/campaigns/{campaign_no}", "campaign_activated")
    return forms.back(f"/portal/campaigns/{campaign_no}", "campaign_ended",
                      amount=format_money(moved, campaign.currency))
