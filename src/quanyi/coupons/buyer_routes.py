"""Coupon API for buyers: the claim centre (领券中心), claiming, and a member's own coupons."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request

from quanyi.coupons import abuse
from quanyi.coupons import service as coupons_service
from quanyi.coupons.schemas import ClaimableCoupon, MemberCouponRead
from quanyi.coupons.texts import summary
from quanyi.deps import ContextDep, ReadSessionDep, client_ip
from quanyi.members.dependencies import CurrentMemberDep, OptionalMemberDep
from quanyi.risk.checkout import request_device

__all__ = ["router"]

router = APIRouter(prefix="/api/coupons", tags=["coupons"])
CouponIdPath = Annotated[int, Path(ge=1, le=2_147_483_647)]


def _locale(request: Request, ctx: ContextDep) -> str:
    return "en" if request.headers.get("accept-language", ctx.settings.default_locale).startswith("en") else "zh-CN"


@router.get("/claimable", response_model=list[ClaimableCoupon], summary="The claim centre: coupons open to claim")
async def claimable(request: Request, ctx: ContextDep, session: ReadSessionDep,
                    member: OptionalMemberDep) -> list[ClaimableCoupon]:
    locale = _locale(request, ctx)
    rows = await coupons_service.claimable_coupons(session=session, member_id=member.member_id if member else None)
    return [ClaimableCoupon(id=c.id, name=c.name, description=c.description, kind=c.kind, summary=summary(c, locale),
                            ends_at=c.ends_at, held=held,
                            left=None if c.total_quantity is None else c.total_quantity - c.taken_count)
            for c, held in rows]


@router.post("/{coupon_id}/claim", response_model=MemberCouponRead, status_code=201, summary="Claim a coupon",
             responses={401: {"description": "Sign in first"}, 404: {"description": "Not in the claim centre"},
                        409: {"description": "All claimed, limit reached, not open, or new members only"},
                        429: {"description": "Too many claims from this device or address (Retry-After)"}})
async def claim(coupon_id: CouponIdPath, request: Request, ctx: ContextDep,
                member: CurrentMemberDep) -> MemberCouponRead:
    async with ctx.db.read_session() as session:
        wanted = await coupons_service.get_coupon(session=session, coupon_id=coupon_id)
    await abuse.check_claim(ctx, member_id=member.member_id, ip=client_ip(request),
                            device=request_device(ctx, request).id, new_members_only=wanted.new_members_only)
    async with ctx.db.transaction() as session:
        grant = await coupons_service.claim_coupon(session=session, coupon_id=coupon_id, member_id=member.member_id)
        coupon = await coupons_service.get_coupon(session=session, coupon_id=coupon_id)
    return MemberCouponRead(id=grant.id, coupon_id=coupon.id, name=coupon.name, kind=coupon.kind,
                            summary=summary(coupon, _locale(request, ctx)), status=grant.status,
                            ends_at=coupon.ends_at)


@router.get("/mine", response_model=list[MemberCouponRead], summary="My coupons (usable ones first)")
async def mine(request: Request, ctx: ContextDep, session: ReadSessionDep,
               member: CurrentMemberDep) -> list[MemberCouponRead]:
    locale = _locale(request, ctx)
    rows = await coupons_service.member_coupons(session=session, member_id=member.member_id,
                                                statuses=("available", "reserved", "used"))
    return [MemberCouponRead(id=g.id, coupon_id=c.id, name=c.name, kind=c.kind, summary=summary(c, locale),
                             status=g.status, ends_at=c.ends_at) for g, c in rows]
