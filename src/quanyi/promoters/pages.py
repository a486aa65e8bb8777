"""The promoter centre (推广中心) of a member's account: apply, the link and its QR code, commission (balance,
held, available), withdrawals and the statement; and its card on the account page. Thin over the services."""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.ext.asyncio import AsyncSession

from quanyi.context import ShopContext
from quanyi.db import utcnow
from quanyi.deps import ContextDep
from quanyi.errors import DomainError
from quanyi.ledger import service as ledger_service
from quanyi.members.dependencies import OptionalMemberDep
from quanyi.members.extensions import AccountSection, register_account_section
from quanyi.members.sessions import MemberLogin
from quanyi.money import InvalidAmount, format_money, parse_amount
from quanyi.promoters import attribution as promoters_attribution
from quanyi.promoters import service as promoters_service
from quanyi.promoters import settlement
from quanyi.promoters import texts as _texts  # noqa: F401 - registers the page texts
from quanyi.promoters.models import Promoter, PromoterStatus
from quanyi.promoters.referral import REFERRAL_COOKIE, code_from_cookie
from quanyi.urls import shop_base_url
from quanyi.web.csrf import CSRF_PROTECTED
from quanyi.web.i18n import pick_locale, translate
from quanyi.web.templating import render

__all__ = ["router"]

router = APIRouter(include_in_schema=False)
PAGE = "/account/promoter"


def _redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


async def _centre(session: AsyncSession, ctx: ShopContext, promoter: Promoter) -> dict[str, Any]:
    """What the centre and the account card show of an approved promoter."""
    balances = await settlement.balances(session=session, promoter=promoter)
    now = utcnow()
    _, lines = await settlement.statement(session=session, promoter=promoter, start=now - dt.timedelta(days=30),
                                          end=now + dt.timedelta(seconds=1))
    withdrawals = await settlement.list_withdrawals(session=session, promoter_id=promoter.id, limit=20)
    return {"link": promoters_service.promotion_link(shop_base_url(ctx.settings), promoter.code),
            "balance": balances.get("CNY") or next(iter(balances.values())),
            "orders": await promoters_attribution.attributed_orders(session=session, promoter=promoter),
            "lines": list(reversed(lines)), "withdrawals": [w for w, _ in withdrawals]}


async def _page(request: Request, ctx: ShopContext, member: MemberLogin, *, notice: str | None = None,
                errors: dict[str, str] | None = None, form: dict[str, str] | None = None,
                status_code: int = 200) -> HTMLResponse:
    await ledger_service.post_all_deferred(ctx.db)  # the commission of orders paid a moment ago
    async with ctx.db.read_session() as session:
        program = await promoters_service.get_program(session)
        promoter = await promoters_service.promoter_for_member(session=session, member_id=member.member_id)
        centre = await _centre(session, ctx, promoter) \
            if promoter is not None and promoter.status != PromoterStatus.PENDING \
            and promoter.status != PromoterStatus.REJECTED else None
    return render(request, "promoter.html", {
        "program": program, "promoter": promoter, "centre": centre, "notice": notice, "errors": errors or {},
        "form": form or {}, "lang_base": PAGE, "min_withdrawal": format_money(program.min_withdrawal_cents, "CNY"),
    }, status_code=status_code)


@router.get(PAGE, response_class=HTMLResponse)
async def promoter_page(request: Request, ctx: ContextDep, member: OptionalMemberDep) -> Response:
    if member is None:
        return _redirect(f"/account/login?next={PAGE}")
    notice = None
    locale = pick_locale(request, ctx.settings.default_locale)
    if request.query_params.get("done") in ("applied", "approved", "withdrawn"):
        notice = translate(locale, {"applied": "promoter.apply.sent", "approved": "promoter.apply.approved",
                                    "withdrawn": "promoter.withdraw.sent"}[request.query_params["done"]])
    return await _page(request, ctx, member, notice=notice)


async def _form(request: Request, *names: str) -> dict[str, str]:
    raw = await request.form()
    return {name: str(raw.get(name, ""))[:500] for name in names}


@router.post(f"{PAGE}/apply", response_class=HTMLResponse, dependencies=[CSRF_PROTECTED])
async def apply(request: Request, ctx: ContextDep, member: OptionalMemberDep) -> Response:
    if member is None:
        return _redirect(f"/account/login?next={PAGE}")
    form = await _form(request, "name", "note")
    contact = member.email or member.phone or ""
    now = utcnow()
    try:
        async with ctx.db.transaction() as session:
            program = await promoters_service.get_program(session)
            # Recruited through another promoter's link: that promoter is this one's level-2 parent.
            referrer = code_from_cookie(ctx.settings.app_secret.get_secret_value(),
                                        request.cookies.get(REFERRAL_COOKIE), now, program.attribution_days)
            bound = await promoters_attribution.active_binding(session=session, member_id=member.member_id, now=now)
            promoter = await promoters_service.apply(
                session=session, member_id=member.member_id, name=form["name"], contact=contact, note=form["note"],
                referrer_code=bound.code if bound is not None else referrer, now=now)
            status = promoter.status
    except promoters_service.InvalidPromoter as exc:
        return await _page(request, ctx, member, form=form, status_code=422,
                           errors={exc.context.get("field", "name"): exc.message})  # type: ignore[dict-item]
    except promoters_service.PromoterConflict as exc:
        return await _page(request, ctx, member, form=form, status_code=409, errors={"name": exc.message})
    return _redirect(f"{PAGE}?done={'approved' if status == PromoterStatus.APPROVED else 'applied'}")


@router.post(f"{PAGE}/withdraw", response_class=HTMLResponse, dependencies=[CSRF_PROTECTED])
async def withdraw(request: Request, ctx: ContextDep, member: OptionalMemberDep) -> Response:
    if member is None:
        return _redirect(f"/account/login?next={PAGE}")
    form = await _form(request, "amount", "payout_account")
    locale = pick_locale(request, ctx.settings.default_locale)
    async with ctx.db.read_session() as session:
        promoter = await promoters_service.promoter_for_member(session=session, member_id=member.member_id)
        program = await promoters_service.get_program(session)
    if promoter is None:
        return _redirect(PAGE)
    minimum = format_money(program.min_withdrawal_cents, "CNY")
    try:
        amount = parse_amount(form["amount"], "CNY")
    except InvalidAmount:
        return await _page(request, ctx, member, form=form, status_code=422,
                           errors={"amount": translate(locale, "promoter.withdraw.bad_amount", min=minimum)})
    await ledger_service.post_all_deferred(ctx.db)
    try:
        async with ctx.db.transaction() as session:
            await settlement.request_withdrawal(session=session, promoter_code=promoter.code, amount_cents=amount,
                                                currency="CNY", payout_account=form["payout_account"],
                                                actor=f"member:{member.member_id}")
    except settlement.WithdrawalExceedsBalance:
        return await _page(request, ctx, member, form=form, status_code=409,
                           errors={"amount": translate(locale, "promoter.withdraw.too_much")})
    except settlement.InvalidWithdrawal as exc:
        key = "promoter.withdraw.bad_account" if exc.context.get("field") == "payout_account" \
            else "promoter.withdraw.bad_amount"
        field = "payout_account" if exc.context.get("field") == "payout_account" else "amount"
        return await _page(request, ctx, member, form=form, status_code=422,
                           errors={field: translate(locale, key, min=minimum)})
    except DomainError as exc:
        return await _page(request, ctx, member, form=form, status_code=409, errors={"amount": exc.message})
    return _redirect(f"{PAGE}?done=withdrawn")


async def _account_card(*, session: AsyncSession, member: MemberLogin) -> dict[str, Any] | None:
    """The promoter card of the account page: status and commission, or the invitation to apply."""
    program = await promoters_service.get_program(session)
    promoter = await promoters_service.promoter_for_member(session=session, member_id=member.member_id)
    if promoter is None:
        return {"promoter": None} if program.enabled else None
    balances = await settlement.balances(session=session, promoter=promoter)
    return {"promoter": promoter, "balance": balances.get("CNY") or next(iter(balances.values()))}


register_account_section(AccountSection(
    key="promoter", title={"zh-CN": "推广中心", "en": "Promoter centre"}, load=_account_card,
    template="promoter_card.html", order=60, href=PAGE))
