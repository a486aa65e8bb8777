"""The employees' claim page (福利领取, mobile first, zh-CN and English): sign in with the claim code (or WeCom /
DingTalk, oauth_routes.py), choose within the budget, claim once, see the codes. Thin over campaign_claims.py."""

from __future__ import annotations

import logging
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from quanyi.catalog import service as catalog_service
from quanyi.db import utcnow
from quanyi.deps import ContextDep, client_ip, user_agent
from quanyi.enterprises import campaign_claims, campaigns, oauth
from quanyi.enterprises import service as enterprises_service
from quanyi.enterprises.claim_session import COOKIE, TTL_SECONDS, ClaimSession, read_session, sign_session
from quanyi.enterprises.models import CampaignStatus, EnterpriseStatus
from quanyi.enterprises.texts import MESSAGES
from quanyi.errors import DomainError
from quanyi.inventory.service import OutOfStock
from quanyi.urls import shop_base_url
from quanyi.web.csrf import CSRF_PROTECTED
from quanyi.web.i18n import pick_locale, register_messages, translate
from quanyi.web.templating import render

__all__ = ["router", "start_session", "CampaignNoPath"]

register_messages(MESSAGES)
router = APIRouter(include_in_schema=False)
CampaignNoPath = Annotated[str, Path(min_length=4, max_length=24, pattern=r"^[A-Z0-9]+$")]
ProviderPath = Annotated[Literal["wecom", "dingtalk"], Path()]
logger = logging.getLogger("quanyi.enterprises.claims")
_LOGIN_TRIES = 20  # wrong claim codes per address and campaign in the window below, counted before checking
_LOGIN_WINDOW = 600


def _secret(request: Request) -> str:
    return request.app.state.ctx.settings.app_secret.get_secret_value()  # type: ignore[no-any-return]


def _session(request: Request, campaign_no: str) -> ClaimSession | None:
    return read_session(_secret(request), request.cookies.get(COOKIE), campaign_no)


def start_session(request: Request, response: Response, session: ClaimSession) -> Response:
    """Sign the employee in on this browser (the cookie works only on /claim/ pages of this campaign)."""
    response.set_cookie(COOKIE, sign_session(_secret(request), session), max_age=TTL_SECONDS, httponly=True,
                        samesite="lax", path="/claim/", secure=request.url.scheme == "https")
    return response


async def _page(request: Request, campaign_no: str, *, error: str | None = None, status_code: int = 200,
                reveal: bool = False) -> HTMLResponse:
    ctx = request.app.state.ctx
    now = utcnow()
    signed_in = _session(request, campaign_no)
    context: dict[str, Any] = {"error": error, "employee": None, "claimed": None, "keys": [], "guide": None}
    async with ctx.db.transaction() as session:  # a write: showing codes is an audited reveal
        campaign, enterprise = await campaigns.campaign_by_no(session=session, campaign_no=campaign_no)
        context.update(campaign=campaign, enterprise=enterprise, open=campaign_claims.is_open(campaign, now),
                       suspended=enterprise.status == EnterpriseStatus.SUSPENDED.value,
                       ended=campaign.status == CampaignStatus.ENDED.value or now >= campaign.ends_at)
        if signed_in is not None:
            try:
                employee = await campaign_claims.employee_by_id(session=session, campaign=campaign,
                                                                employee_id=signed_in.employee_id)
            except campaign_claims.NotOnRoster:
                employee = None
            context["employee"] = employee
            claim_row = await campaign_claims.claim_of(session=session, employee_id=employee.id) if employee else None
            if claim_row is not None:
                order = await _order(session, claim_row, reveal, request, context)
                context["guide"] = await catalog_service.redemption_guide(session=session,
                                                                          product_id=order.product_id)
            else:
                context["options"] = await campaigns.options_of(session=session, campaign=campaign)
    page = render(request, "claim.html", context, status_code=status_code)
    page.headers["Cache-Control"] = "no-store"  # codes and names: never kept by a cache
    return page


async def _order(session: Any, claim_row: Any, reveal: bool, request: Request, context: dict[str, Any]) -> Any:
    ctx = request.app.state.ctx
    if reveal:
        order, keys = await campaign_claims.reveal_claim(session=session, cipher=ctx.cipher, claim_row=claim_row,
                                                         ip=client_ip(request), user_agent=user_agent(request))
        context["keys"] = keys
    else:
        from quanyi.orders import service as orders_service

        order = await orders_service.get_order_by_id(session=session, order_id=claim_row.order_id)
    context.update(claimed=claim_row, order=order)
    return order


@router.get("/claim/{campaign_no}", response_class=HTMLResponse)
async def claim_page(campaign_no: CampaignNoPath, request: Request) -> HTMLResponse:
    return await _page(request, campaign_no)


@router.post("/claim/{campaign_no}/login", response_class=HTMLResponse, dependencies=[CSRF_PROTECTED])
async def login(campaign_no: CampaignNoPath, request: Request, ctx: ContextDep) -> Response:
    locale = pick_locale(request, ctx.settings.default_locale)
    code = str((await request.form()).get("code", ""))[:64]
    # Counted before the code is checked: guessing codes is slow whatever the answers.
    if await ctx.limiter.hit(f"claim-login:{campaign_no}:ip:{client_ip(request)}", _LOGIN_WINDOW) > _LOGIN_TRIES:
        return await _page(request, campaign_no, error=translate(locale, "claim.err.limited"), status_code=429)
    async with ctx.db.read_session() as session:
        campaign, _ = await campaigns.campaign_by_no(session=session, campaign_no=campaign_no)
        try:
            employee = await campaign_claims.employee_by_code(session=session, cipher=ctx.cipher, campaign=campaign,
                                                              claim_code=code)
        except campaign_claims.NotOnRoster:
            return await _page(request, campaign_no, error=translate(locale, "claim.err.code"), status_code=422)
    response = RedirectResponse(f"/claim/{campaign_no}", status_code=303)
    return start_session(request, response, ClaimSession(campaign.campaign_no, employee.id, "code"))


@router.post("/claim/{campaign_no}", response_class=HTMLResponse, dependencies=[CSRF_PROTECTED])
async def claim(campaign_no: CampaignNoPath, request: Request, ctx: ContextDep) -> Response:
    locale = pick_locale(request, ctx.settings.default_locale)
    signed_in = _session(request, campaign_no)
    if signed_in is None:
        return RedirectResponse(f"/claim/{campaign_no}", status_code=303)
    form = await request.form()
    quantity_text = str(form.get("quantity", "1")).strip()
    if not quantity_text.isdigit() or not 1 <= int(quantity_text) <= 1000:
        return await _page(request, campaign_no, error=translate(locale, "claim.err.choice"), status_code=422)
    try:
        result = await campaign_claims.claim(db=ctx.db, campaign_no=campaign_no, employee_id=signed_in.employee_id,
                                             sku_code=str(form.get("sku", ""))[:64], quantity=int(quantity_text),
                                             via=signed_in.via, ip=client_ip(request))
    except campaigns.CampaignClosed:
        return await _page(request, campaign_no, status_code=409)
    except enterprises_service.EnterpriseSuspended:  # the page says so in place of the form
        return await _page(request, campaign_no, status_code=409)
    except OutOfStock:
        return await _page(request, campaign_no, error=translate(locale, "claim.err.sold_out"), status_code=409)
    except campaigns.CampaignNotFound:
        raise
    except DomainError as exc:
        key = "claim.err.choice" if exc.code in ("invalid_input", "quantity_out_of_range") else "claim.err.generic"
        return await _page(request, campaign_no, error=translate(locale, key), status_code=422 if
                           key == "claim.err.choice" else 409)
    # A repeated claim (a double tap) shows the first one, its codes behind the reveal button.
    return await _page(request, campaign_no, reveal=result.created)


@router.post("/claim/{campaign_no}/reveal", response_class=HTMLResponse, dependencies=[CSRF_PROTECTED])
async def reveal(campaign_no: CampaignNoPath, request: Request) -> Response:
    if _session(request, campaign_no) is None:
        return RedirectResponse(f"/claim/{campaign_no}", status_code=303)
    return await _page(request, campaign_no, reveal=True)


# ---------------------------------------------------------------- WeCom / DingTalk sign-in (oauth.py)

def _callback_url(request: Request, campaign_no: str, provider: str) -> str:
    return f"{shop_base_url(request.app.state.ctx.settings).rstrip('/')}/claim/{campaign_no}/oauth/{provider}/callback"


@router.get("/claim/{campaign_no}/oauth/{provider}")
async def oauth_start(campaign_no: CampaignNoPath, provider: ProviderPath, request: Request,
                      ctx: ContextDep) -> Response:
    """Off to the provider's sign-in page, with a state this browser must bring back."""
    locale = pick_locale(request, ctx.settings.default_locale)
    async with ctx.db.read_session() as session:
        campaign, enterprise = await campaigns.campaign_by_no(session=session, campaign_no=campaign_no)
        allowed = campaign.allow_wecom if provider == "wecom" else campaign.allow_dingtalk
        try:
            if not allowed:
                raise oauth.LoginAppNotFound(f"{provider} sign-in is not offered on this campaign")
            app_row = await oauth.login_app_for(session=session, enterprise_id=enterprise.id, provider=provider)
        except oauth.LoginAppNotFound:
            return await _page(request, campaign_no, error=translate(locale, "claim.err.login"), status_code=404)
    state, cookie = oauth.sign_state(_secret(request), campaign_no, provider)
    response = RedirectResponse(oauth.authorize_url(ctx.settings, app_row, state=state,
                                                    redirect_uri=_callback_url(request, campaign_no, provider)),
                                status_code=303)
    response.set_cookie(oauth.STATE_COOKIE, cookie, max_age=oauth.STATE_TTL_SECONDS, httponly=True, samesite="lax",
                        path="/claim/", secure=request.url.scheme == "https")
    return response


@router.get("/claim/{campaign_no}/oauth/{provider}/callback")
async def oauth_callback(campaign_no: CampaignNoPath, provider: ProviderPath, request: Request,
                         ctx: ContextDep) -> Response:
    """Back from the provider: its code -> the user (their server API) -> the roster -> signed in."""
    locale = pick_locale(request, ctx.settings.default_locale)
    q = request.query_params
    code = (q.get("authCode") or q.get("code") or "")[:512]
    if not oauth.read_state(_secret(request), request.cookies.get(oauth.STATE_COOKIE), campaign_no, provider,
                            q.get("state", "")[:100]):
        return await _page(request, campaign_no, error=translate(locale, "claim.err.login"), status_code=403)
    try:
        async with ctx.db.read_session() as session:
            campaign, enterprise = await campaigns.campaign_by_no(session=session, campaign_no=campaign_no)
            app_row = await oauth.login_app_for(session=session, enterprise_id=enterprise.id, provider=provider)
        identity = await oauth.identify(http=ctx.http, settings=ctx.settings, cipher=ctx.cipher,
                                        enterprise_code=enterprise.code, row=app_row, code=code)
        async with ctx.db.read_session() as session:
            employee = await oauth.find_employee(session=session, campaign=campaign, identity=identity)
    except (oauth.LoginFailed, oauth.LoginAppNotFound):
        return await _page(request, campaign_no, error=translate(locale, "claim.err.login"), status_code=403)
    except oauth.ProviderUnavailable as exc:
        logger.warning("claim sign-in through %s failed: %s", provider, exc.message)
        return await _page(request, campaign_no, error=translate(locale, "claim.err.generic"), status_code=502)
    response = RedirectResponse(f"/claim/{campaign_no}", status_code=303)
    response.delete_cookie(oauth.STATE_COOKIE, path="/claim/")  # a state works once
    return start_session(request, response, ClaimSession(campaign.campaign_no, employee.id, provider))
