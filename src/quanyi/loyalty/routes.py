"""Loyalty API: the points rules, membership levels and their member prices, a member's points (platform
staff); a member's own points and level."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Path, Response
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from quanyi.deps import PlatformAdminDep, ReadSessionDep, SessionDep
from quanyi.loyalty import levels, points
from quanyi.loyalty import service as loyalty_service
from quanyi.members.dependencies import CurrentMemberDep

__all__ = ["admin_router", "member_router"]

admin_router = APIRouter(prefix="/api/admin/loyalty", tags=["admin: loyalty"])
member_router = APIRouter(prefix="/api/members/me", tags=["members"])

LevelCode = Annotated[str, Path(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$")]
MemberIdPath = Annotated[int, Path(ge=1, le=2_147_483_647)]
SkuIdPath = Annotated[int, Path(ge=1, le=2_147_483_647)]


class ProgramRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    points_enabled: bool
    points_per_yuan: int
    point_value_cents: int
    max_points_share_bps: int
    expiry_years: int
    updated_by: str


class ProgramWrite(BaseModel):
    model_config = ConfigDict(extra="forbid")
    points_enabled: bool | None = None
    points_per_yuan: Annotated[int, Field(ge=0, le=10_000)] | None = Field(
        default=None, description="Points earned per ¥1 paid (before the level's multiplier)")
    point_value_cents: Annotated[int, Field(ge=1, le=10_000)] | None = Field(
        default=None, description="Cents one point takes off when spent (revalues outstanding points)")
    max_points_share_bps: Annotated[int, Field(ge=0, le=10_000)] | None = Field(
        default=None, description="Points pay at most this share of an order (after coupons)")
    expiry_years: Annotated[int, Field(ge=1, le=10)] | None = Field(
        default=None, description="Points expire at the end of the year this many years after earning")


class LevelWrite(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
    min_paid_cents: Annotated[int, Field(ge=0, le=10**12, description="Cumulative paid amount that reaches it")]
    discount_bps: Annotated[int, Field(ge=0, le=9999, description="Off every SKU without an own member price")] = 0
    points_multiplier_bps: Annotated[int, Field(ge=0, le=100_000, description="10000 = 1x")] = 10_000


class LevelRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    code: str
    name: str
    min_paid_cents: int
    discount_bps: int
    points_multiplier_bps: int


class LevelPriceWrite(BaseModel):
    model_config = ConfigDict(extra="forbid")
    price_cents: Annotated[int, Field(ge=0, le=10**12)]


class LevelPriceRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    sku_id: int
    price_cents: int


class MovementRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    kind: str
    points: int
    balance_after: int
    note: str
    created_at: dt.datetime


class LoyaltyRead(BaseModel):
    points_balance: int = Field(description="Below zero only as a stated debt after a refund (see README)")
    point_value_cents: int
    expiring_points: int
    expiring_at: dt.datetime | None
    paid_total_cents: int
    level: LevelRead | None
    next_level: LevelRead | None
    to_next_cents: int
    movements: list[MovementRead]


class AdjustmentWrite(BaseModel):
    model_config = ConfigDict(extra="forbid")
    points: Annotated[int, Field(ge=-10**9, le=10**9)]
    reason: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]


class SweepRead(BaseModel):
    count: int


async def _loyalty_read(session, member_id: int) -> LoyaltyRead:  # type: ignore[no-untyped-def]
    found = await loyalty_service.summary(session=session, member_id=member_id)
    moves = await points.movements(session=session, member_id=member_id)
    return LoyaltyRead(
        points_balance=found.points_balance, point_value_cents=found.point_value_cents,
        expiring_points=found.expiring_points, expiring_at=found.expiring_at,
        paid_total_cents=found.paid_total_cents,
        level=LevelRead.model_validate(found.level) if found.level else None,
        next_level=LevelRead.model_validate(found.next_level) if found.next_level else None,
        to_next_cents=found.to_next_cents, movements=[MovementRead.model_validate(m) for m in moves])


@admin_router.get("/program", response_model=ProgramRead, summary="The points rules (积分规则)")
async def get_program(session: ReadSessionDep, _: PlatformAdminDep) -> ProgramRead:
    return ProgramRead.model_validate(await points.get_program(session))


@admin_router.put("/program", response_model=ProgramRead, summary="Change the points rules")
async def put_program(data: ProgramWrite, session: SessionDep, admin: PlatformAdminDep) -> ProgramRead:
    return ProgramRead.model_validate(await points.update_program(
        session=session, data=points.ProgramUpdate(**data.model_dump()), actor=admin))


@admin_router.get("/levels", response_model=list[LevelRead], summary="Membership levels (会员等级), lowest first")
async def list_levels(session: ReadSessionDep, _: PlatformAdminDep) -> list[LevelRead]:
    return [LevelRead.model_validate(level) for level in await levels.list_levels(session)]


@admin_router.put("/levels/{code}", response_model=LevelRead, summary="Create or change a level")
async def put_level(code: LevelCode, data: LevelWrite, session: SessionDep, _: PlatformAdminDep) -> LevelRead:
    return LevelRead.model_validate(await levels.set_level(
        session=session, code=code, name=data.name, min_paid_cents=data.min_paid_cents,
        discount_bps=data.discount_bps, points_multiplier_bps=data.points_multiplier_bps))


@admin_router.delete("/levels/{code}", status_code=204, summary="Remove a level")
async def delete_level(code: LevelCode, session: SessionDep, _: PlatformAdminDep) -> Response:
    await levels.delete_level(session=session, code=code)
    return Response(status_code=204)


@admin_router.get("/levels/{code}/prices", response_model=list[LevelPriceRead], summary="A level's member prices")
async def list_level_prices(code: LevelCode, session: ReadSessionDep, _: PlatformAdminDep) -> list[LevelPriceRead]:
    return [LevelPriceRead.model_validate(p) for p in await levels.level_prices(session, code)]


@admin_router.put("/levels/{code}/prices/{sku_id}", response_model=LevelPriceRead,
                  summary="A level's own price of one SKU (会员价)")
async def put_level_price(code: LevelCode, sku_id: SkuIdPath, data: LevelPriceWrite, session: SessionDep,
                          _: PlatformAdminDep) -> LevelPriceRead:
    return LevelPriceRead.model_validate(await levels.set_level_price(
        session=session, code=code, sku_id=sku_id, price_cents=data.price_cents))


@admin_router.delete("/levels/{code}/prices/{sku_id}", status_code=204, summary="Remove a level's own price")
async def delete_level_price(code: LevelCode, sku_id: SkuIdPath, session: SessionDep,
                             _: PlatformAdminDep) -> Response:
    await levels.delete_level_price(session=session, code=code, sku_id=sku_id)
    return Response(status_code=204)


@admin_router.post("/levels/reevaluate", response_model=SweepRead,
                   summary="Re-evaluate every member's level by what they paid (up or down; yearly)")
async def reevaluate(session: SessionDep, _: PlatformAdminDep) -> SweepRead:
    return SweepRead(count=await levels.reevaluate(session=session))


@admin_router.post("/points/expire", response_model=SweepRead, summary="Expire points that are due now")
async def expire(session: SessionDep, _: PlatformAdminDep) -> SweepRead:
    return SweepRead(count=await points.expire_all_due(session=session))


@admin_router.get("/members/{member_id}", response_model=LoyaltyRead, summary="A member's points and level")
async def member_loyalty(member_id: MemberIdPath, session: ReadSessionDep, _: PlatformAdminDep) -> LoyaltyRead:
    await _member(session, member_id)
    return await _loyalty_read(session, member_id)


@admin_router.post("/members/{member_id}/adjustments", response_model=LoyaltyRead,
                   summary="Correct a member's points (+ gift, - deduction) with a reason")
async def adjust(member_id: MemberIdPath, data: AdjustmentWrite, session: SessionDep,
                 admin: PlatformAdminDep) -> LoyaltyRead:
    await _member(session, member_id)
    await points.adjust(session=session, member_id=member_id, points=data.points, reason=data.reason, actor=admin)
    await session.flush()
    return await _loyalty_read(session, member_id)


async def _member(session, member_id: int) -> None:  # type: ignore[no-untyped-def]
    from quanyi.members import service as members_service

    await members_service.get_member(session=session, member_id=member_id)


@member_router.get("/loyalty", response_model=LoyaltyRead, summary="My points (积分) and level (会员等级)")
async def my_loyalty(member: CurrentMemberDep, session: ReadSessionDep) -> LoyaltyRead:
    return await _loyalty_read(session, member.member_id)
