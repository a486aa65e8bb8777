"""Streamed card-key imports over the admin API: upload (multipart or the raw file as the body) → 202 and a job
to follow; the job's progress and final report."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from pathlib import Path as FilePath
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import JSONResponse
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import UploadFile

from quanyi.catalog import service as catalog_service
from quanyi.config import Settings
from quanyi.context import ShopContext
from quanyi.deps import AdminDep, ContextDep, ScopeDep
from quanyi.errors import InvalidInput
from quanyi.inventory import import_jobs
from quanyi.inventory.intake import require_card_key_sku
from quanyi.inventory.models import ImportJob
from quanyi.inventory.schemas import ImportJobRead
from quanyi.inventory.spool import FRAME_BYTES, NotText, SpooledFile, SpoolTooLarge, SpoolWriter, spool_path
from quanyi.middleware import RequestTooLarge

__all__ = ["router", "IMPORT_JOB_UPLOAD_PATH", "ImportUploadInvalid", "spool_upload", "spool_file", "queue_import"]

router = APIRouter(prefix="/api/admin", tags=["admin: stock"])

# Uploads that may exceed QUANYI_MAX_REQUEST_BYTES (up to QUANYI_MAX_IMPORT_JOB_BYTES plus the multipart envelope).
IMPORT_JOB_UPLOAD_PATH = re.compile(r"/api/admin/imports|/console/keys/skus/[0-9]+/imports")
_RAW_TYPES = {"", "text/plain", "text/csv", "application/octet-stream"}
JobId = Annotated[int, Path(ge=1, le=2_147_483_647)]


class ImportUploadInvalid(InvalidInput):
    code = "import_file_invalid"


async def copy_upload(upload: UploadFile, writer: SpoolWriter) -> None:
    """A multipart file part (Starlette's anonymous temporary file) into the spool, block by block."""
    while block := await upload.read(FRAME_BYTES):
        writer.write(block)
    await upload.close()


async def spool_file(upload: UploadFile, settings: Settings, *, max_bytes: int) -> SpooledFile:
    """One uploaded file part into a spool (the one-transaction endpoint's upload)."""
    with SpoolWriter(FilePath(settings.import_spool_dir), max_bytes=max_bytes) as writer:
        try:
            await copy_upload(upload, writer)
            if writer.bytes_written == 0:
                raise ImportUploadInvalid("the file is empty")
            return writer.finish()
        except SpoolTooLarge as exc:
            raise ImportUploadInvalid(f"file is larger than {exc.limit} bytes") from None
        except NotText as exc:
            raise ImportUploadInvalid(str(exc)) from None


async def spool_upload(request: Request, settings: Settings) -> tuple[SpooledFile, str]:
    """Stream the request's file into an encrypted spool: a multipart part named `file` (Starlette keeps it in
    an anonymous temporary file, at most 1 MiB in memory), or the whole body for text/plain, text/csv and
    application/octet-stream. Returns the spool and the file name the client gave."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "multipart/form-data" and content_type not in _RAW_TYPES:
        raise ImportUploadInvalid(f"send the file as multipart/form-data (part `file`) or as a text/plain body, "
                                  f"not {content_type}")
    filename = ""
    with SpoolWriter(FilePath(settings.import_spool_dir), max_bytes=settings.max_import_job_bytes) as writer:
        try:
            if content_type == "multipart/form-data":
                form = await request.form(max_files=1, max_fields=20)
                upload = form.get("file")
                if not isinstance(upload, UploadFile):
                    raise ImportUploadInvalid("the multipart upload has no file part named `file`")
                filename = upload.filename or ""
                await copy_upload(upload, writer)
            else:
                async for block in request.stream():
                    writer.write(block)
            if writer.bytes_written == 0:
                raise ImportUploadInvalid("the file is empty")
            return writer.finish(), filename
        except SpoolTooLarge as exc:
            raise RequestTooLarge(exc.limit) from None
        except NotText as exc:
            raise ImportUploadInvalid(str(exc)) from None


async def queue_import(*, ctx: ShopContext, request: Request, sku_id: int, scope: Any, source_name: str,
                       imported_by: str, unit_cost_cents: int | None,
                       audit: Callable[[AsyncSession, ImportJob], Awaitable[None]] | None = None) -> ImportJobRead:
    """Check the SKU (before a byte of the body is read), spool the upload, queue the job and start it here.
    `audit` writes the console's audit entry in the job's own transaction."""
    async with ctx.db.read_session() as session:
        require_card_key_sku(await catalog_service.get_sku(session=session, sku_id=sku_id, scope=scope))
    spooled, filename = await spool_upload(request, ctx.settings)
    try:
        async with ctx.db.transaction() as session:
            sku = await catalog_service.get_sku(session=session, sku_id=sku_id, scope=scope)
            job = await import_jobs.create_import_job(
                session=session, cipher=ctx.cipher, sku=sku, spooled=spooled,
                source_name=source_name or filename, imported_by=imported_by, unit_cost_cents=unit_cost_cents)
            answer = await import_jobs.import_job_read(session=session, job=job)
    except BaseException:
        spool_path(FilePath(ctx.settings.import_spool_dir), spooled.name).unlink(missing_ok=True)
        raise
    import_jobs.start_import_job(db=ctx.db, cipher=ctx.cipher, spool_dir=FilePath(ctx.settings.import_spool_dir),
                                 job_id=answer.id, lease_seconds=ctx.settings.import_lease_seconds,
                                 chunk_lines=ctx.settings.import_chunk_lines)
    return answer


_UPLOAD_BODY = {
    "required": True,
    "content": {
        "multipart/form-data": {"schema": {"type": "object", "required": ["file"], "properties": {
            "file": {"type": "string", "format": "binary", "description": "UTF-8 or GB18030 text / CSV"}}}},
        "text/plain": {"schema": {"type": "string", "description": "the import file itself"}},
    },
}


@router.post(
    "/imports", response_model=ImportJobRead, status_code=202,
    summary="Import card keys from a file of any size, as a background job",
    description=(
        "The file (same format and rules as `POST /api/admin/skus/{sku_id}/card-keys/import`: one code per line, "
        "or `card_no,password`, optional expiry) is streamed to an encrypted spool and imported in chunks of "
        "`QUANYI_IMPORT_CHUNK_LINES` lines, each its own short transaction, so checkouts go on meanwhile. Answers "
        "202 with the job; follow it with `GET /api/admin/imports/{import_id}` (`percent`, counts, and the "
        "duplicate and invalid lines once `status` is `done` or `failed`). Up to `QUANYI_MAX_IMPORT_JOB_BYTES`."
    ),
    responses={202: {"headers": {"Location": {"description": "the job", "schema": {"type": "string"}}}}},
    openapi_extra={"requestBody": _UPLOAD_BODY},
)
async def start_import(
    request: Request, ctx: ContextDep, admin: AdminDep, scope: ScopeDep,
    sku_id: Annotated[int, Query(ge=1, le=2_147_483_647, description="SKU to stock")],
    source_name: Annotated[str, Query(max_length=200, description="Where the batch came from")] = "",
    unit_cost_cents: Annotated[int | None, Query(ge=0, le=10_000_000_000, description="Cost of one key")] = None,
) -> JSONResponse:
    job = await queue_import(ctx=ctx, request=request, sku_id=sku_id, scope=scope, source_name=source_name,
                             imported_by=admin, unit_cost_cents=unit_cost_cents)
    return JSONResponse(job.model_dump(mode="json"), status_code=202,
                        headers={"Location": f"/api/admin/imports/{job.id}"})


@router.get("/imports/{import_id}", response_model=ImportJobRead, summary="An import job's progress and report")
async def import_progress(import_id: JobId, ctx: ContextDep, _: AdminDep, scope: ScopeDep) -> ImportJobRead:
    async with ctx.db.read_session() as session:
        job = await import_jobs.get_import_job(session=session, job_id=import_id, scope=scope)
        return await import_jobs.import_job_read(session=session, job=job)


@router.get("/imports", response_model=list[ImportJobRead], summary="Recent import jobs (without line reports)")
async def recent_imports(
    ctx: ContextDep, _: AdminDep, scope: ScopeDep,
    sku_id: Annotated[int | None, Query(ge=1, le=2_147_483_647)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> list[ImportJobRead]:
    async with ctx.db.read_session() as session:
        jobs = await import_jobs.list_import_jobs(session=session, scope=scope, sku_id=sku_id, limit=limit)
        return [await import_jobs.import_job_read(session=session, job=job, with_lines=False) for job in jobs]
