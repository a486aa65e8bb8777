"""Merchants admin API: the platform admits and manages merchants; a merchant's staff see their own."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from quanyi.deps import AdminDep, PlatformAdminDep, ReadSessionDep, ScopeDep, SessionDep
from quanyi.merchants import service as merchants_service
from quanyi.merchants.schemas import MerchantCreate, MerchantRead, MerchantUpdate

__all__ = ["admin_router"]

admin_router = APIRouter(prefix="/api/admin/merchants", tags=["admin: merchants"])

MerchantCodePath = Annotated[str, Path(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9-]+$")]


@admin_router.get("", response_model=list[MerchantRead], summary="Merchants (a merchant's staff: their own)")
async def list_merchants(session: ReadSessionDep, _: AdminDep, scope: ScopeDep) -> list[MerchantRead]:
    return [MerchantRead.model_validate(m) for m in await merchants_service.list_merchants(session=session,
                                                                                          scope=scope)]


@admin_router.post("", response_model=MerchantRead, status_code=201, summary="Admit a merchant (platform staff)")
async def create_merchant(data: MerchantCreate, session: SessionDep, _: PlatformAdminDep) -> MerchantRead:
    return MerchantRead.model_validate(await merchants_service.create_merchant(session=session, data=data))


@admin_router.get("/{code}", response_model=MerchantRead, summary="One merchant")
async def get_merchant(code: MerchantCodePath, session: ReadSessionDep, _: AdminDep, scope: ScopeDep) -> MerchantRead:
    return MerchantRead.model_validate(await merchants_service.get_merchant(session=session, code=code, scope=scope))


@admin_router.patch("/{code}", response_model=MerchantRead,
                    summary="Change a merchant's commission, hold period, profile or status (platform staff)")
async def update_merchant(code: MerchantCodePath, data: MerchantUpdate, session: SessionDep,
                          _: PlatformAdminDep) -> MerchantRead:
    return MerchantRead.model_validate(await merchants_service.update_merchant(session=session, code=code, data=data))
