"""Admin API for bulk purchases (批量采购) and their download links, and the download itself (by link)."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Request
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import StreamingResponse

from quanyi.deps import ContextDep, PlatformAdminDep, ReadSessionDep, SessionDep, client_ip, user_agent
from quanyi.enterprises import downloads, purchases
from quanyi.enterprises.models import BulkPurchase, DownloadLink
from quanyi.enterprises.routes import CodePath, IdempotencyKey
from quanyi.enterprises.schemas import LinkCreate, LinkRead, PurchaseCreate, PurchaseRead
from quanyi.exports import export_response
from quanyi.money import line_total
from quanyi.urls import shop_base_url

__all__ = ["router", "download_router", "describe_purchase"]

logger = logging.getLogger("quanyi.enterprises.purchases")
router = APIRouter(prefix="/api/admin/enterprises/{code}/purchases", tags=["admin: enterprises"])
download_router = APIRouter(tags=["admin: enterprises"])
PurchaseNoPath = Annotated[str, Path(min_length=1, max_length=32, pattern=r"^[A-Z0-9]+$")]


async def describe_purchase(*, session: AsyncSession, purchase: BulkPurchase) -> PurchaseRead:
    progress = await purchases.progress_of(session=session, purchase=purchase)
    return PurchaseRead(
        purchase_no=purchase.purchase_no, enterprise_code=progress.enterprise_code, sku_code=progress.sku_code,
        quantity=purchase.quantity, unit_price_cents=purchase.unit_price_cents,
        total_cents=line_total(purchase.unit_price_cents, purchase.quantity), currency=purchase.currency,
        status=purchase.status, placed_quantity=purchase.placed_quantity,
        delivered_quantity=progress.delivered_quantity, orders=progress.orders,
        progress_percent=purchase.placed_quantity * 100 // purchase.quantity, error_code=purchase.error_code,
        error=purchase.error, created_at=purchase.created_at, finished_at=purchase.finished_at)


def _link(link: DownloadLink, base: str | None = None, token: str | None = None) -> LinkRead:
    read = LinkRead(id=link.id, expires_at=link.expires_at, max_downloads=link.max_downloads,
                    downloads=link.downloads, revoked=link.revoked_at is not None)
    if base and token:
        read.csv_url = f"{base}/api/enterprise-downloads?format=csv&t={token}"
        read.xlsx_url = f"{base}/api/enterprise-downloads?format=xlsx&t={token}"
    return read


@router.post("", response_model=PurchaseRead, status_code=202,
             summary="Buy N codes (批量采购) at the enterprise's price: a background job (Idempotency-Key: once)")
async def create_purchase(code: CodePath, data: PurchaseCreate, session: SessionDep, admin: PlatformAdminDep,
                          idempotency_key: IdempotencyKey = None) -> PurchaseRead:
    purchase, created = await purchases.create_purchase(
        session=session, code=code, sku_code=data.sku_code, quantity=data.quantity, actor=admin,
        max_unit_price_cents=data.max_unit_price_cents, reference=idempotency_key)
    if created:
        logger.info("bulk purchase %s of %d x %s for %s by %s", purchase.purchase_no, data.quantity,
                    data.sku_code, code, admin)
    return await describe_purchase(session=session, purchase=purchase)


@router.get("", response_model=list[PurchaseRead], summary="The enterprise's bulk purchases, newest first")
async def list_purchases(code: CodePath, session: ReadSessionDep, _: PlatformAdminDep) -> list[PurchaseRead]:
    return [await describe_purchase(session=session, purchase=p)
            for p in await purchases.list_purchases(session=session, code=code)]


@router.get("/{purchase_no}", response_model=PurchaseRead, summary="One bulk purchase with its progress")
async def get_purchase(code: CodePath, purchase_no: PurchaseNoPath, session: ReadSessionDep,
                       _: PlatformAdminDep) -> PurchaseRead:
    purchase = await purchases.get_purchase(session=session, code=code, purchase_no=purchase_no)
    return await describe_purchase(session=session, purchase=purchase)


@router.post("/{purchase_no}/resume", response_model=PurchaseRead, summary="Queue a paused purchase again")
async def resume_purchase(code: CodePath, purchase_no: PurchaseNoPath, session: SessionDep,
                          admin: PlatformAdminDep) -> PurchaseRead:
    purchase = await purchases.resume_purchase(session=session, code=code, purchase_no=purchase_no)
    logger.info("bulk purchase %s resumed by %s", purchase_no, admin)
    return await describe_purchase(session=session, purchase=purchase)


@router.post("/{purchase_no}/cancel", response_model=PurchaseRead,
             summary="Stop a purchase for good (what was placed stays placed and paid)")
async def cancel_purchase(code: CodePath, purchase_no: PurchaseNoPath, session: SessionDep,
                          admin: PlatformAdminDep) -> PurchaseRead:
    purchase = await purchases.cancel_purchase(session=session, code=code, purchase_no=purchase_no)
    logger.info("bulk purchase %s cancelled by %s", purchase_no, admin)
    return await describe_purchase(session=session, purchase=purchase)


@router.post("/{purchase_no}/links", response_model=LinkRead, status_code=201,
             summary="An expiring download link of the codes (CSV/XLSX); its URLs are in this answer only")
async def create_link(code: CodePath, purchase_no: PurchaseNoPath, session: SessionDep, ctx: ContextDep,
                      admin: PlatformAdminDep, data: LinkCreate | None = None) -> LinkRead:
    data = data or LinkCreate()
    issued = await downloads.create_link(session=session, code=code, purchase_no=purchase_no,
                                         ttl=dt.timedelta(minutes=data.ttl_minutes),
                                         max_downloads=data.max_downloads, actor=admin)
    logger.info("download link %d of purchase %s made by %s", issued.link.id, purchase_no, admin)
    return _link(issued.link, shop_base_url(ctx.settings).rstrip("/"), issued.token)


@router.get("/{purchase_no}/links", response_model=list[LinkRead], summary="Download links (never their tokens)")
async def list_links(code: CodePath, purchase_no: PurchaseNoPath, session: ReadSessionDep,
                     _: PlatformAdminDep) -> list[LinkRead]:
    return [_link(link) for link in await downloads.list_links(session=session, code=code, purchase_no=purchase_no)]


@router.delete("/{purchase_no}/links/{link_id}", status_code=204, summary="Revoke a download link")
async def revoke_link(code: CodePath, purchase_no: PurchaseNoPath, link_id: Annotated[int, Path(ge=1, le=2**31 - 1)],
                      session: SessionDep, _: PlatformAdminDep) -> None:
    await downloads.revoke_link(session=session, code=code, purchase_no=purchase_no, link_id=link_id)


@download_router.get("/api/enterprise-downloads", summary="Download a bulk purchase's codes by link (audited)",
                     response_class=StreamingResponse)
async def download(request: Request, ctx: ContextDep,
                   t: Annotated[str, Query(min_length=20, max_length=100, pattern=r"^[A-Za-z0-9_-]+$")],
                   format: Annotated[Literal["csv", "xlsx"], Query()] = "csv") -> StreamingResponse:
    ip, agent = client_ip(request), user_agent(request)
    async with ctx.db.transaction() as session:  # committed (counted, audited) before the file streams
        opened = await downloads.open_link(session=session, token=t, file_format=format, ip=ip, user_agent=agent)
    if opened is None:
        raise downloads.LinkRefused("this download link is not valid (expired, used up or unknown); ask for a "
                                    "new one")
    logger.info("codes of purchase %s downloaded as %s from %s", opened.purchase_no, format, ip)
    rows = downloads.code_rows(db=ctx.db, cipher=ctx.cipher, purchase_id=opened.purchase_id, ip=ip, user_agent=agent)
    return export_response(format, filename=f"codes-{opened.purchase_no}", columns=downloads.COLUMNS, rows=rows,
                           sheet_name=opened.purchase_no)
