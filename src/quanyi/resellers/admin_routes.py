"""Admin API for resellers: register (the secret is in this answer only), change, rotate the secret, price
list, prepaid top-ups. Operators also have `quanyi resellers ...` (cli.py)."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Annotated

from fastapi import APIRouter, Header, Path
from sqlalchemy.ext.asyncio import AsyncSession

from quanyi.deps import ContextDep, PlatformAdminDep, ReadSessionDep, SessionDep
from quanyi.resellers import service as resellers_service
from quanyi.resellers.models import Reseller, ResellerStatus
from quanyi.resellers.schemas import (
    BalanceRead,
    PriceRead,
    PriceSet,
    ResellerCreate,
    ResellerIssued,
    ResellerRead,
    ResellerUpdate,
    SecretRead,
    SecretRotate,
    TopUp,
)

__all__ = ["router", "describe"]

logger = logging.getLogger("quanyi.resellers.admin")
router = APIRouter(prefix="/api/admin/resellers", tags=["admin: resellers"])
CodePath = Annotated[str, Path(min_length=1, max_length=48, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")]
SkuCodePath = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")]
IdempotencyKey = Annotated[str | None, Header(alias="Idempotency-Key", max_length=100,
                                              pattern=r"^[\x21-\x7e]+$")]


async def describe(*, session: AsyncSession, reseller: Reseller) -> ResellerRead:
    account = await resellers_service.account_of(session=session, reseller=reseller)
    secrets = await resellers_service.live_secrets(session=session, reseller_id=reseller.id)
    return ResellerRead(
        code=reseller.code, name=reseller.name, contact_email=reseller.contact_email, app_id=reseller.app_id,
        status=reseller.status, rate_limit_per_minute=reseller.rate_limit_per_minute,
        callback_url=reseller.callback_url, account_code=account.code, balance_cents=account.balance_cents,
        credit_limit_cents=account.credit_limit_cents, currency=account.currency, created_at=reseller.created_at,
        secrets=[SecretRead(hint=s.hint, created_at=s.created_at, expires_at=s.expires_at) for s in secrets])


async def _issued(session: AsyncSession, issued: resellers_service.IssuedSecret) -> ResellerIssued:
    read = await describe(session=session, reseller=issued.reseller)
    return ResellerIssued(**read.model_dump(), secret=issued.secret,
                          previous_secret_expires_at=issued.previous_expires_at)


@router.get("", response_model=list[ResellerRead], summary="Resellers with balances (secrets never shown)")
async def list_resellers(session: ReadSessionDep, _: PlatformAdminDep) -> list[ResellerRead]:
    resellers = await resellers_service.list_resellers(session=session)
    return [await describe(session=session, reseller=r) for r in resellers]


@router.post("", response_model=ResellerIssued, status_code=201,
             summary="Register a reseller: app id, prepaid account, and its secret (shown in this answer only)")
async def create_reseller(data: ResellerCreate, session: SessionDep, ctx: ContextDep,
                          admin: PlatformAdminDep) -> ResellerIssued:
    issued = await resellers_service.create_reseller(
        session=session, cipher=ctx.cipher, code=data.code, name=data.name, contact_email=data.contact_email,
        rate_limit_per_minute=data.rate_limit_per_minute, credit_limit_cents=data.credit_limit_cents,
        callback_url=data.callback_url, actor=admin)
    logger.info("reseller %s registered by %s (app id %s)", data.code, admin, issued.reseller.app_id)
    return await _issued(session, issued)


@router.get("/{code}", response_model=ResellerRead, summary="One reseller")
async def get_reseller(code: CodePath, session: ReadSessionDep, _: PlatformAdminDep) -> ResellerRead:
    return await describe(session=session, reseller=await resellers_service.get_reseller(session=session, code=code))


@router.patch("/{code}", response_model=ResellerRead,
              summary="Name, status (active / suspended), rate limit, callback URL, credit limit")
async def update_reseller(code: CodePath, data: ResellerUpdate, session: SessionDep,
                          admin: PlatformAdminDep) -> ResellerRead:
    reseller = await resellers_service.update_reseller(
        session=session, code=code, name=data.name, status=ResellerStatus(data.status) if data.status else None,
        rate_limit_per_minute=data.rate_limit_per_minute, callback_url=data.callback_url or None,
        clear_callback_url=data.callback_url == "", credit_limit_cents=data.credit_limit_cents)
    logger.info("reseller %s changed by %s: %s", code, admin, data.model_dump(exclude_none=True))
    return await describe(session=session, reseller=reseller)


@router.post("/{code}/rotate-secret", response_model=ResellerIssued,
             summary="A new secret (shown once); the old one keeps working for overlap_seconds")
async def rotate_secret(code: CodePath, session: SessionDep, ctx: ContextDep, admin: PlatformAdminDep,
                        data: SecretRotate | None = None) -> ResellerIssued:
    data = data or SecretRotate()
    reseller = await resellers_service.get_reseller(session=session, code=code)
    issued = await resellers_service.rotate_secret(session=session, cipher=ctx.cipher, reseller=reseller,
                                                   overlap=dt.timedelta(seconds=data.overlap_seconds), actor=admin)
    logger.info("reseller %s secret rotated by %s (overlap %d s)", code, admin, data.overlap_seconds)
    return await _issued(session, issued)


@router.get("/{code}/prices", response_model=list[PriceRead], summary="The reseller's price list")
async def prices(code: CodePath, session: ReadSessionDep, _: PlatformAdminDep) -> list[PriceRead]:
    return [PriceRead(sku_code=sku, list_price_cents=listed, price_cents=own)
            for sku, listed, own in await resellers_service.price_list(session=session, code=code)]


@router.put("/{code}/prices/{sku_code}", response_model=PriceRead, summary="Set the reseller's price of a SKU")
async def set_price(code: CodePath, sku_code: SkuCodePath, data: PriceSet, session: SessionDep,
                    admin: PlatformAdminDep) -> PriceRead:
    await resellers_service.set_price(session=session, code=code, sku_code=sku_code, price_cents=data.price_cents,
                                      actor=admin)
    listed = {sku: (lp, own) for sku, lp, own in await resellers_service.price_list(session=session, code=code)}
    sku = sku_code.strip().upper()
    return PriceRead(sku_code=sku, list_price_cents=listed[sku][0], price_cents=listed[sku][1])


@router.delete("/{code}/prices/{sku_code}", status_code=204, summary="Back to the list price")
async def remove_price(code: CodePath, sku_code: SkuCodePath, session: SessionDep, _: PlatformAdminDep) -> None:
    await resellers_service.remove_price(session=session, code=code, sku_code=sku_code)


@router.post("/{code}/top-ups", response_model=BalanceRead, status_code=201,
             summary="Record money the reseller paid in (Idempotency-Key: the same key credits once)")
async def top_up(code: CodePath, data: TopUp, session: SessionDep, admin: PlatformAdminDep,
                 idempotency_key: IdempotencyKey = None) -> BalanceRead:
    account, created = await resellers_service.top_up(session=session, code=code, amount_cents=data.amount_cents,
                                                      note=data.note, actor=admin, reference=idempotency_key)
    logger.info("reseller %s topped up by %d cents by %s (new: %s)", code, data.amount_cents, admin, created)
    return BalanceRead(account_code=account.code, balance_cents=account.balance_cents,
                       credit_limit_cents=account.credit_limit_cents, currency=account.currency, created=created)

