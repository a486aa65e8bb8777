"""Card-key stock admin API: import batches (multipart upload), list and void them, stock counts."""

from __future__ import annotations

import re
from pathlib import Path as FilePath
from typing import Annotated

from fastapi import APIRouter, File, Form, Path, UploadFile

from quanyi.catalog import service as catalog_service
from quanyi.deps import AdminDep, ContextDep, ReadSessionDep, ScopeDep, SessionDep
from quanyi.inventory import import_jobs
from quanyi.inventory import service as inventory_service
from quanyi.inventory.import_routes import spool_file
from quanyi.inventory.intake import require_card_key_sku
from quanyi.inventory.schemas import BatchRead, BatchVoid, ImportReport, StockSummary
from quanyi.inventory.spool import spool_path
from quanyi.leased_worker import worker_owner

router = APIRouter(prefix="/api/admin", tags=["admin: stock"])

IdPath = Annotated[int, Path(ge=1, le=2_147_483_647)]
# The upload that may exceed QUANYI_MAX_REQUEST_BYTES: up to QUANYI_MAX_IMPORT_BYTES plus the multipart envelope.
IMPORT_UPLOAD_PATH = re.compile(r"/api/admin/skus/[0-9]+/card-keys/import")
MULTIPART_ENVELOPE_BYTES = 64 * 1024


@router.post(
    "/skus/{sku_id}/card-keys/import",
    response_model=ImportReport,
    status_code=201,
    summary="Import a batch of card keys from a text/CSV file",
    description=(
        "One code per line, or `card_no,password`, optionally followed by an expiry date (`2027-06-30`). "
        "Fields may be separated by comma, tab, `----` or spaces. Duplicates (within the file or against any "
        "key ever imported) and invalid lines are skipped and reported with their line numbers. Answers when "
        "the import is done (up to `QUANYI_MAX_IMPORT_BYTES`); it runs like `POST /api/admin/imports` (streamed "
        "to an encrypted spool, chunks of short transactions), which answers at once and suits big files."
    ),
)
async def import_card_keys(
    sku_id: IdPath,
    ctx: ContextDep,
    admin: AdminDep,
    scope: ScopeDep,
    file: Annotated[UploadFile, File(description="UTF-8 or GB18030 text / CSV")],
    source_name: Annotated[str, Form(max_length=200)] = "",
    unit_cost_cents: Annotated[int | None, Form(ge=0, le=10_000_000_000, description="Cost of one key")] = None,
) -> ImportReport:
    async with ctx.db.read_session() as session:
        require_card_key_sku(await catalog_service.get_sku(session=session, sku_id=sku_id, scope=scope))
    spooled = await spool_file(file, ctx.settings, max_bytes=ctx.settings.max_import_bytes)
    spool_dir, owner = FilePath(ctx.settings.import_spool_dir), worker_owner()
    try:
        async with ctx.db.transaction() as session:
            sku = await catalog_service.get_sku(session=session, sku_id=sku_id, scope=scope)
            job = await import_jobs.create_import_job(
                session=session, cipher=ctx.cipher, sku=sku, spooled=spooled,
                source_name=source_name or (file.filename or "")[:200], imported_by=admin,
                unit_cost_cents=unit_cost_cents, owner=owner, lease_seconds=ctx.settings.import_lease_seconds)
    except BaseException:
        spool_path(spool_dir, spooled.name).unlink(missing_ok=True)
        raise
    report = await import_jobs.import_now(db=ctx.db, cipher=ctx.cipher, spool_dir=spool_dir, job_id=job.id,
                                          owner=owner, lease_seconds=ctx.settings.import_lease_seconds,
                                          chunk_lines=ctx.settings.import_chunk_lines)
    ctx.sold_out.forget(sku_id)  # back in stock: this process sells again at once
    return report


@router.get("/skus/{sku_id}/stock", response_model=StockSummary, summary="Stock of a SKU by status")
async def stock(sku_id: IdPath, session: ReadSessionDep, _: AdminDep, scope: ScopeDep) -> StockSummary:
    await catalog_service.get_sku(session=session, sku_id=sku_id, scope=scope)
    return await inventory_service.stock_summary(session=session, sku_id=sku_id)


@router.get("/skus/{sku_id}/batches", response_model=list[BatchRead], summary="Import batches of a SKU")
async def batches(sku_id: IdPath, session: ReadSessionDep, _: AdminDep, scope: ScopeDep) -> list[BatchRead]:
    await catalog_service.get_sku(session=session, sku_id=sku_id, scope=scope)
    rows = await inventory_service.list_batches(session=session, sku_id=sku_id)
    return [BatchRead.model_validate(b) for b in rows]


@router.post("/batches/{batch_id}/void", response_model=BatchRead, summary="Withdraw a batch's unsold keys")
async def void_batch(batch_id: IdPath, data: BatchVoid, session: SessionDep, _: AdminDep,
                     scope: ScopeDep) -> BatchRead:
    batch = await inventory_service.void_batch(session=session, batch_id=batch_id, reason=data.reason, scope=scope)
    return BatchRead.model_validate(batch)
