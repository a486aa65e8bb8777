"""Coupon admin API: create, list, pause, issue to members, single-use code batches and their CSV export.
Scoped: a merchant's staff see and make their own merchant's coupons only. Buyers' routes: buyer_routes.py."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import StreamingResponse

from quanyi.context import ShopContext
from quanyi.coupons import level_gifts
from quanyi.coupons import service as coupons_service
from quanyi.coupons.models import Coupon, CouponCodeBatch
from quanyi.coupons.schemas import (
    CodeBatchCreate,
    CodeBatchRead,
    CouponCreate,
    CouponRead,
    CouponTargetIn,
    CouponUpdate,
    IssueRequest,
    IssueResult,
    LevelGiftsRead,
    LevelGiftsUpdate,
)
from quanyi.deps import (
    AdminDep,
    ContextDep,
    PlatformAdminDep,
    PrincipalDep,
    ReadSessionDep,
    ScopeDep,
    SessionDep,
    client_ip,
    user_agent,
)
from quanyi.exports import Cell, Column, export_response
from quanyi.merchants import service as merchants_service
from quanyi.staff.audit import Actor, record_action
from quanyi.staff.service import Principal

__all__ = ["router", "describe_coupon", "export_batch", "audit_codes"]

router = APIRouter(prefix="/api/admin/coupons", tags=["admin: coupons"])
CouponIdPath = Annotated[int, Path(ge=1, le=2_147_483_647)]
BatchIdPath = Annotated[int, Path(ge=1, le=2_147_483_647)]


async def describe_coupon(*, session: AsyncSession, coupon: Coupon) -> CouponRead:
    targets = await coupons_service.targets_of(session=session, coupon_id=coupon.id)
    usage = await coupons_service.usage_counts(session=session, coupon_id=coupon.id)
    return CouponRead.model_validate({**{c: getattr(coupon, c) for c in CouponRead.model_fields
                                        if c not in ("targets", "usage")},
                                      "targets": [CouponTargetIn(kind=k, id=i) for k, i in targets],  # type: ignore[arg-type]
                                      "usage": usage})


def _gifts_read(level: Any, coupons: Sequence[Coupon]) -> LevelGiftsRead:
    return LevelGiftsRead(level_code=level.code, level_name=level.name, min_paid_cents=level.min_paid_cents,
                          coupons=[{"id": c.id, "name": c.name, "active": c.active, "ends_at": c.ends_at}  # type: ignore[misc]
                                   for c in coupons])


# Declared before /{coupon_id}, which would take "level-gifts" for an id.
@router.get("/level-gifts", response_model=list[LevelGiftsRead],
            summary="Level-up gifts (升级礼券): each membership level with the coupons it gives (platform staff)")
async def list_level_gifts(session: ReadSessionDep, _: PlatformAdminDep) -> list[LevelGiftsRead]:
    return [_gifts_read(level, coupons) for level, coupons in await level_gifts.level_gifts(session=session)]


@router.put("/level-gifts/{code}", response_model=LevelGiftsRead,
            summary="Set the coupons a level gives a member reaching it, once per member and level (platform staff)",
            responses={404: {"description": "Unknown level or coupon"},
                       422: {"description": "Not an issued coupon, or ended"}})
async def set_level_gifts(code: Annotated[str, Path(min_length=1, max_length=32)], data: LevelGiftsUpdate,
                          session: SessionDep, actor: PlatformAdminDep) -> LevelGiftsRead:
    level, coupons = await level_gifts.set_level_gifts(session=session, level_code=code, coupon_ids=data.coupon_ids,
                                                       actor=actor)
    return _gifts_read(level, coupons)


@router.post("", response_model=CouponRead, status_code=201, summary="Create a coupon",
             responses={404: {"description": "Unknown merchant"}, 422: {"description": "Inconsistent coupon"}})
async def create_coupon(data: CouponCreate, session: SessionDep, actor: AdminDep, scope: ScopeDep) -> CouponRead:
    owner = await merchants_service.resolve_owner(session=session, scope=scope, merchant_code=data.merchant_code)
    coupon = await coupons_service.create_coupon(session=session, fields=data.fields(), owner=owner, actor=actor,
                                                 targets=[(t.kind, t.id) for t in data.targets])
    return await describe_coupon(session=session, coupon=coupon)


@router.get("", response_model=list[CouponRead], summary="Coupons (newest first)")
async def list_coupons(session: ReadSessionDep, _: AdminDep, scope: ScopeDep,
                       limit: Annotated[int, Query(ge=1, le=500)] = 100,
                       offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0) -> list[CouponRead]:
    coupons = await coupons_service.list_coupons(session=session, scope=scope, limit=limit, offset=offset)
    return [await describe_coupon(session=session, coupon=c) for c in coupons]


@router.get("/{coupon_id}", response_model=CouponRead, summary="A coupon with its usage")
async def get_coupon(coupon_id: CouponIdPath, session: ReadSessionDep, _: AdminDep, scope: ScopeDep) -> CouponRead:
    coupon = await coupons_service.get_coupon(session=session, coupon_id=coupon_id, scope=scope)
    return await describe_coupon(session=session, coupon=coupon)


@router.patch("/{coupon_id}", response_model=CouponRead,
              summary="Pause or resume a coupon, or change its name, window, quantities and flags",
              responses={422: {"description": "Not changeable, or a total below what is taken"}})
async def update_coupon(coupon_id: CouponIdPath, data: CouponUpdate, session: SessionDep, _: AdminDep,
                        scope: ScopeDep) -> CouponRead:
    coupon = await coupons_service.get_coupon(session=session, coupon_id=coupon_id, scope=scope, lock=True)
    await coupons_service.update_coupon(session=session, coupon=coupon, changes=data.changes())
    return await describe_coupon(session=session, coupon=coupon)


@router.post("/{coupon_id}/issue", response_model=IssueResult, summary="Hand the coupon to members",
             responses={409: {"description": "Not open any more"}, 422: {"description": "Not an issued coupon"}})
async def issue(coupon_id: CouponIdPath, data: IssueRequest, session: SessionDep, actor: AdminDep,
                scope: ScopeDep) -> IssueResult:
    coupon = await coupons_service.get_coupon(session=session, coupon_id=coupon_id, scope=scope)
    issued, refused = await coupons_service.issue_coupon(session=session, coupon=coupon, member_ids=data.member_ids,
                                                         actor=actor)
    return IssueResult(issued=issued, refused=refused)


def _batch_read(batch: CouponCodeBatch) -> CodeBatchRead:
    return CodeBatchRead(id=batch.id, coupon_id=batch.coupon_id, size=batch.size, note=batch.note,
                         created_at=batch.created_at,
                         export_url=f"/api/admin/coupons/{batch.coupon_id}/code-batches/{batch.id}/codes.csv")


async def audit_codes(*, session: AsyncSession, actor: Actor, action: str, coupon: Coupon,
                      batch: CouponCodeBatch) -> None:
    """Single-use codes are money: making a batch (coupon_codes_made) and every download (coupon_codes_exported)
    go to the staff audit log in the caller's transaction, from the console and the admin API alike."""
    await record_action(session=session, actor=actor, action=action, object_type="coupon", object_id=coupon.id,
                        summary=f"{coupon.name}: batch {batch.id} of {batch.size} codes"
                                + (f"; {batch.note}" if batch.note else ""))


def _api_actor(principal: Principal, request: Request) -> Actor:
    return Actor(name=principal.name, staff_id=principal.staff_id, ip=client_ip(request),
                 user_agent=user_agent(request))


@router.post("/{coupon_id}/code-batches", response_model=CodeBatchRead, status_code=201,
             summary="Make a batch of unique single-use codes (up to 10,000); audited",
             responses={409: {"description": "Would pass the total quantity"}})
async def make_codes(coupon_id: CouponIdPath, data: CodeBatchCreate, session: SessionDep, actor: AdminDep,
                     scope: ScopeDep, principal: PrincipalDep, request: Request) -> CodeBatchRead:
    coupon = await coupons_service.get_coupon(session=session, coupon_id=coupon_id, scope=scope)
    batch = await coupons_service.make_codes(session=session, coupon=coupon, count=data.count, note=data.note,
                                             actor=actor)
    await audit_codes(session=session, actor=_api_actor(principal, request), action="coupon_codes_made",
                      coupon=coupon, batch=batch)
    return _batch_read(batch)


CODE_COLUMNS = [Column("code", 16), Column("coupon", 28), Column("status", 12)]


def export_batch(ctx: ShopContext, coupon: Coupon, batch_id: int) -> StreamingResponse:
    """A batch's codes as CSV (quanyi.exports), read and sent in pages of 1,000."""
    async def rows() -> AsyncIterator[Sequence[Sequence[Cell]]]:
        after = 0
        while True:
            async with ctx.db.read_session() as session:
                page = await coupons_service.batch_codes(session=session, batch_id=batch_id, after_id=after)
            if not page:
                return
            after = page[-1][0]
            yield [[code, coupon.name, status] for _, code, status in page]

    return export_response("csv", filename=f"coupon-{coupon.id}-batch-{batch_id}", columns=CODE_COLUMNS,
                           rows=rows())


@router.get("/{coupon_id}/code-batches/{batch_id}/codes.csv", summary="A batch's codes as CSV; audited",
            response_class=StreamingResponse, responses={200: {"content": {"text/csv": {}}}})
async def export_codes(coupon_id: CouponIdPath, batch_id: BatchIdPath, session: ReadSessionDep, _: AdminDep,
                       scope: ScopeDep, ctx: ContextDep, principal: PrincipalDep,
                       request: Request) -> StreamingResponse:
    coupon = await coupons_service.get_coupon(session=session, coupon_id=coupon_id, scope=scope)
    batch = await session.get(CouponCodeBatch, batch_id)
    if batch is None or batch.coupon_id != coupon.id:
        raise coupons_service.CouponNotFound("no such batch of this coupon")
    async with ctx.db.transaction() as audit_session:
        await audit_codes(session=audit_session, actor=_api_actor(principal, request), action="coupon_codes_exported",
                          coupon=coupon, batch=batch)
    return export_batch(ctx, coupon, batch_id)
