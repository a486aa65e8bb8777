"""循环卡密 admin API: the shared codes of a SKU, with their sale counters and limits (inventory.shared_codes)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from quanyi.catalog import service as catalog_service
from quanyi.catalog.models import DeliveryType
from quanyi.deps import AdminDep, ContextDep, ReadSessionDep, ScopeDep
from quanyi.errors import InvalidInput
from quanyi.inventory import shared_codes

__all__ = ["router", "SharedCodeCreate", "SharedCodeUpdate", "SharedCodeRead"]

router = APIRouter(prefix="/api/admin", tags=["admin: stock"])
IdPath = Annotated[int, Path(ge=1, le=2_147_483_647)]
SaleLimit = Annotated[int, Field(ge=1, le=shared_codes.MAX_SALE_LIMIT)]


class NotASharedCodeSku(InvalidInput):
    code = "not_a_shared_code_sku"


class SharedCodeCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    code: Annotated[str, StringConstraints(min_length=1, max_length=600)] = Field(
        description="One line like an import line: `code`, or `card_no,password`, optionally an expiry date")
    sale_limit: SaleLimit = Field(description="How many units may be sold of this one code, in total")


class SharedCodeUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    sale_limit: SaleLimit | None = Field(default=None, description="Never below the units sold or held")
    active: bool | None = Field(default=None, description="false: stop selling this code (buyers keep theirs)")


class SharedCodeRead(BaseModel):
    id: int
    masked: str = Field(description="The code with only its first and last 2 characters shown")
    sale_limit: int
    sold_count: int = Field(description="Units sold or held by unpaid orders")
    active: bool
    leaked: bool


async def _shared_sku(session, sku_id: int, scope):  # type: ignore[no-untyped-def]
    sku = await catalog_service.get_sku(session=session, sku_id=sku_id, scope=scope)
    if sku.delivery_type is not DeliveryType.SHARED_CODE:
        raise NotASharedCodeSku(f"SKU {sku.code} is not a 循环卡密 (shared_code) SKU")
    return sku


def _read(view: shared_codes.SharedCodeView) -> SharedCodeRead:
    return SharedCodeRead(id=view.id, masked=view.masked, sale_limit=view.sale_limit, sold_count=view.sold_count,
                          active=view.active, leaked=view.leaked)


@router.get("/skus/{sku_id}/shared-codes", response_model=list[SharedCodeRead],
            summary="循环卡密: a SKU's shared codes with their sale counters (codes masked; [] for other SKUs)")
async def list_shared_codes(sku_id: IdPath, ctx: ContextDep, session: ReadSessionDep, _: AdminDep,
                            scope: ScopeDep) -> list[SharedCodeRead]:
    sku = await catalog_service.get_sku(session=session, sku_id=sku_id, scope=scope)
    return [_read(v) for v in await shared_codes.list_shared_codes(session=session, cipher=ctx.cipher, sku_id=sku.id)]


@router.post("/skus/{sku_id}/shared-codes", response_model=list[SharedCodeRead], status_code=201,
             summary="循环卡密: add a code sold to many buyers, with its sale limit",
             responses={409: {"description": "shared_code_known: the shop already holds this code"}})
async def add_shared_code(sku_id: IdPath, data: SharedCodeCreate, ctx: ContextDep, admin: AdminDep,
                          scope: ScopeDep) -> list[SharedCodeRead]:
    async with ctx.db.transaction() as session:
        sku = await _shared_sku(session, sku_id, scope)
        await shared_codes.add_shared_code(session=session, cipher=ctx.cipher, sku_id=sku.id,
                                           merchant_id=sku.merchant_id, text=data.code, sale_limit=data.sale_limit,
                                           actor=str(admin))
        views = await shared_codes.list_shared_codes(session=session, cipher=ctx.cipher, sku_id=sku.id)
    return [_read(v) for v in views]


@router.patch("/skus/{sku_id}/shared-codes/{shared_code_id}", response_model=SharedCodeRead,
              summary="循环卡密: change a code's sale limit or stop/resume selling it")
async def change_shared_code(sku_id: IdPath, shared_code_id: IdPath, data: SharedCodeUpdate, ctx: ContextDep,
                             _: AdminDep, scope: ScopeDep) -> SharedCodeRead:
    async with ctx.db.transaction() as session:
        sku = await _shared_sku(session, sku_id, scope)
        await shared_codes.change_shared_code(session=session, sku_id=sku.id, shared_code_id=shared_code_id,
                                              sale_limit=data.sale_limit, active=data.active, scope=scope)
        views = await shared_codes.list_shared_codes(session=session, cipher=ctx.cipher, sku_id=sku.id)
    return next(_read(v) for v in views if v.id == shared_code_id)
