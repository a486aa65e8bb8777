"""Storefront pages of coupons (zh-CN / en): the claim centre (领券中心) with the member's own coupons, claiming
(CSRF-checked form), the account page's coupon card, and the sign-up gift rule. Thin over coupons.service."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.ext.asyncio import AsyncSession

from quanyi.coupons import abuse
from quanyi.coupons import service as coupons_service
from quanyi.coupons.texts import reason_text, summary
from quanyi.deps import ContextDep, client_ip
from quanyi.errors import DomainError
from quanyi.members.dependencies import OptionalMemberDep
from quanyi.members.extensions import AccountSection, on_member_created, register_account_section
from quanyi.risk.checkout import request_device
from quanyi.web.csrf import CSRF_PROTECTED
from quanyi.web.i18n import pick_locale, register_messages, translate
from quanyi.web.templating import render

__all__ = ["router", "member_coupon_views"]

router = APIRouter(include_in_schema=False)
CouponIdPath = Annotated[int, Path(ge=1, le=2_147_483_647)]

register_messages({
    "zh-CN": {"nav.coupons": "领券中心", "coupons.title": "领券中心", "coupons.intro": "领取优惠券，下单时选择使用。",
              "coupons.claim": "立即领取", "coupons.claimed": "已领取", "coupons.login_to_claim": "登录后领取",
              "coupons.none": "暂时没有可领取的优惠券", "coupons.mine": "我的优惠券",
              "coupons.mine.none": "还没有优惠券", "coupons.until": "有效期至 {date}", "coupons.left": "剩余 {n} 张",
              "coupons.claim_ok": "领取成功！下单时在「优惠券」中选择即可使用。", "coupons.status.available": "可使用",
              "coupons.status.reserved": "使用中", "coupons.status.used": "已使用",
              "coupons.err.limited": "今天领取太频繁了，请明天再来。",
              "coupons.err.risk": "该设备或网络不能再领取新人券。",
              "checkout.coupon": "优惠券", "checkout.coupon_code": "优惠码", "checkout.coupon_none": "不使用优惠券",
              "checkout.coupon_placeholder": "输入优惠码（可选）", "checkout.apply": "计算优惠",
              "checkout.discount": "优惠", "checkout.member_discount": "会员价优惠", "checkout.payable": "应付",
              "checkout.list_total": "商品金额", "err.coupon": "优惠码格式不正确",
              "checkout.coupon_risk": "该设备或网络不能再使用新人券。"},
    "en": {"nav.coupons": "Coupons", "coupons.title": "Coupon centre",
           "coupons.intro": "Claim coupons here and choose one when you check out.", "coupons.claim": "Claim",
           "coupons.claimed": "Claimed", "coupons.login_to_claim": "Sign in to claim",
           "coupons.none": "No coupons to claim right now", "coupons.mine": "My coupons",
           "coupons.mine.none": "No coupons yet", "coupons.until": "Valid until {date}", "coupons.left": "{n} left",
           "coupons.claim_ok": "Claimed! Choose it under Coupon when you check out.",
           "coupons.status.available": "Usable", "coupons.status.reserved": "On an unpaid order",
           "coupons.status.used": "Used", "coupons.err.limited": "Too many claims today; please come back tomorrow.",
           "coupons.err.risk": "New-member coupons cannot be claimed from this device or network any more.",
           "checkout.coupon": "Coupon", "checkout.coupon_code": "Coupon code", "checkout.coupon_none": "No coupon",
           "checkout.coupon_placeholder": "Enter a code (optional)", "checkout.apply": "Apply",
           "checkout.discount": "Discount", "checkout.member_discount": "Member price", "checkout.payable": "To pay",
           "checkout.list_total": "Items", "err.coupon": "That is not a valid coupon code",
           "checkout.coupon_risk": "New-member coupons cannot be used from this device or network any more."},
})


async def member_coupon_views(session: AsyncSession, member_id: int, locale: str,
                              statuses: tuple[str, ...] = ("available",)) -> list[dict[str, Any]]:
    rows = await coupons_service.member_coupons(session=session, member_id=member_id, statuses=statuses)
    return [{"id": g.id, "name": c.name, "summary": summary(c, locale), "status": g.status, "ends_at": c.ends_at}
            for g, c in rows]


async def _page(request: Request, ctx: ContextDep, member_id: int | None, *, notice: str | None = None,
                error: str | None = None, status_code: int = 200) -> HTMLResponse:
    locale = pick_locale(request, ctx.settings.default_locale)
    async with ctx.db.read_session() as session:
        rows = await coupons_service.claimable_coupons(session=session, member_id=member_id)
        mine = await member_coupon_views(session, member_id, locale, ("available", "reserved", "used")) \
            if member_id else []
    claimable = [{"id": c.id, "name": c.name, "description": c.description, "summary": summary(c, locale),
                  "ends_at": c.ends_at, "held": held,
                  "left": None if c.total_quantity is None else c.total_quantity - c.taken_count,
                  "can_claim": held < (c.per_member_limit or 1 << 30)} for c, held in rows]
    return render(request, "coupons/centre.html", {"claimable": claimable, "mine": mine, "signed_in": bool(member_id),
                                                   "notice": notice, "error": error}, status_code=status_code)


@router.get("/coupons", response_class=HTMLResponse)
async def claim_centre(request: Request, ctx: ContextDep, member: OptionalMemberDep) -> HTMLResponse:
    notice = None
    if request.query_params.get("claimed"):
        notice = translate(pick_locale(request, ctx.settings.default_locale), "coupons.claim_ok")
    return await _page(request, ctx, member.member_id if member else None, notice=notice)


@router.post("/coupons/{coupon_id}/claim", dependencies=[CSRF_PROTECTED])
async def claim(coupon_id: CouponIdPath, request: Request, ctx: ContextDep, member: OptionalMemberDep) -> Response:
    if member is None:
        return RedirectResponse("/account/login?next=/coupons", status_code=303)
    locale = pick_locale(request, ctx.settings.default_locale)
    try:
        async with ctx.db.read_session() as session:
            wanted = await coupons_service.get_coupon(session=session, coupon_id=coupon_id)
        await abuse.check_claim(ctx, member_id=member.member_id, ip=client_ip(request),
                                device=request_device(ctx, request).id, new_members_only=wanted.new_members_only)
        async with ctx.db.transaction() as session:
            await coupons_service.claim_coupon(session=session, coupon_id=coupon_id, member_id=member.member_id)
    except abuse.CouponClaimsLimited as exc:
        page = await _page(request, ctx, member.member_id, error=translate(locale, "coupons.err.limited"),
                           status_code=429)
        page.headers["Retry-After"] = str(exc.context["retry_after"])
        return page
    except abuse.CouponRefusedByRisk:
        return await _page(request, ctx, member.member_id, error=translate(locale, "coupons.err.risk"),
                           status_code=403)
    except coupons_service.CouponNotFound as exc:
        return await _page(request, ctx, member.member_id, error=reason_text(locale, exc), status_code=404)
    except DomainError as exc:
        return await _page(request, ctx, member.member_id, error=reason_text(locale, exc), status_code=409)
    return RedirectResponse("/coupons?claimed=1", status_code=303)


# ---------------------------------------------------------------- members' extension points

@on_member_created
async def sign_up_gifts(*, session: AsyncSession, member_id: int, contact_kind: str, contact: str,
                        now: dt.datetime) -> None:
    """Rule issue: every open sign-up gift coupon goes to the new member, in the sign-up's transaction."""
    await coupons_service.issue_signup_gifts(session=session, member_id=member_id, now=now)


async def _account_card(*, session: AsyncSession, member: Any) -> dict[str, Any] | None:
    locale = getattr(member, "locale", "zh-CN")
    return {"coupons": await member_coupon_views(session, member.member_id, locale)}


register_account_section(AccountSection(key="coupons", title={"zh-CN": "我的优惠券", "en": "My coupons"},
                                        load=_account_card, template="coupons/_account_card.html", order=20,
                                        href="/coupons"))
