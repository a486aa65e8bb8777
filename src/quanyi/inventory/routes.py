"""Card-key stock admin API: import batches (multipart upload), list and void them, stock counts."""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import APIRouter, File, Form, Path, UploadFile

from quanyi.catalog import service as catalog_service
from quanyi.deps import AdminDep, ContextDep, ReadSessionDep, ScopeDep, SessionDep
from quanyi.errors import InvalidInput
from quanyi.inventory import service as inventory_service
from quanyi.inventory.parsing import decode_upload
from quanyi.inventory.schemas import BatchRead, BatchVoid, ImportReport, StockSummary

router = APIRouter(prefix="/api/admin", tags=["admin: stock"])

IdPath = Annotated[int, Path(ge=1, le=2_147_483_647)]
# The upload that may exceed QUANYI_MAX_REQUEST_BYTES: up to QUANYI_MAX_IMPORT_BYTES plus the multipart envelope.
IMPORT_UPLOAD_PATH = re.compile(r"/api/admin/skus/[0-9]+/card-keys/import")
MULTIPART_ENVELOPE_BYTES = 64 * 1024


class ImportFileInvalid(InvalidInput):
    code = "import_file_invalid"


@router.post(
    "/skus/{sku_id}/card-keys/import",
    response_model=ImportReport,
    status_code=201,
    summary="Import a batch of card keys from a text/CSV file",
    description=(
        "One code per line, or `card_no,password`, optionally followed by an expiry date (`2027-06-30`). "
        "Fields may be separated by comma, tab, `----` or spaces. Duplicates (within the file or against any "
        "key ever imported) and invalid lines are skipped and reported with their line numbers."
    ),
)
async def import_card_keys(
    sku_id: IdPath,
    session: SessionDep,
    ctx: ContextDep,
    admin: AdminDep,
    scope: ScopeDep,
    file: Annotated[UploadFile, File(description="UTF-8 or GB18030 text / CSV")],
    source_name: Annotated[str, Form(max_length=200)] = "",
    unit_cost_cents: Annotated[int | None, Form(ge=0, le=10_000_000_000, description="Cost of one key")] = None,
) -> ImportReport:
    data = await file.read(ctx.settings.max_import_bytes + 1)
    if len(data) > ctx.settings.max_import_bytes:
        raise ImportFileInvalid(f"file is larger than {ctx.settings.max_import_bytes} bytes")
    try:
        text = decode_upload(data)
    except ValueError as exc:
        raise ImportFileInvalid(str(exc)) from None
    sku = await catalog_service.get_sku(session=session, sku_id=sku_id, scope=scope)
    report = await inventory_service.import_card_keys(
        session=session, cipher=ctx.cipher, sku=sku, text=text,
        source_name=source_name or (file.filename or "")[:200], imported_by=admin, unit_cost_cents=unit_cost_cents,
    )
    ctx.sold_out.forget(sku.id)  # back in stock: this process sells again at once
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
