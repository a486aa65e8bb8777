"""Card-key import pages (卡密导入): upload a file of any size, watch the live progress bar of its import job, read
the final report. The same streamed import job as the admin API and `quanyi keys import`
(inventory.import_jobs); the page polls the job's progress as JSON."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from sqlalchemy.ext.asyncio import AsyncSession

import quanyi.console.texts.imports  # noqa: F401 - registers the texts
from quanyi.catalog import service as catalog_service
from quanyi.console.auth import ConsoleUser, console_router, needs
from quanyi.console.i18n import console_text
from quanyi.console.rendering import render_page
from quanyi.console.said import say
from quanyi.deps import ContextDep
from quanyi.errors import DomainError
from quanyi.inventory import import_jobs
from quanyi.inventory.import_routes import queue_import
from quanyi.inventory.models import ImportJob
from quanyi.middleware import RequestTooLarge
from quanyi.money import InvalidAmount, parse_amount
from quanyi.staff.audit import record_action
from quanyi.web.i18n import pick_locale

__all__ = ["router"]

router: APIRouter = console_router("/console/keys")

Manager = Annotated[ConsoleUser, needs("card_keys.manage")]
SkuId = Annotated[int, Path(ge=1, le=2_147_483_647)]
ImportId = Annotated[int, Path(ge=1, le=2_147_483_647)]


def _wants_json(request: Request) -> bool:
    return "application/json" in request.headers.get("accept", "")


async def _upload_page(request: Request, ctx: ContextDep, user: ConsoleUser, sku_id: int, *,
                       message: tuple[str, dict[str, object], str] | None = None,
                       status_code: int = 200) -> HTMLResponse:
    async with ctx.db.read_session() as session:
        sku = await catalog_service.get_sku(session=session, sku_id=sku_id, scope=user.scope)
        jobs = await import_jobs.list_import_jobs(session=session, scope=user.scope, sku_id=sku.id, limit=10)
    return render_page(request, "console/key_import.html", {
        "sku": sku, "jobs": jobs, "message": message,
        "max_mib": ctx.settings.max_import_job_bytes // (1024 * 1024),
    }, user=user, active="keys", status_code=status_code)


@router.get("/skus/{sku_id}/import", response_class=HTMLResponse)
async def import_form(sku_id: SkuId, request: Request, ctx: ContextDep, user: Manager) -> HTMLResponse:
    return await _upload_page(request, ctx, user, sku_id)


@router.post("/skus/{sku_id}/imports", response_class=HTMLResponse)
async def upload(sku_id: SkuId, request: Request, ctx: ContextDep, user: Manager) -> Response:
    """The page's script posts the file (FormData, CSRF header) and gets the job as JSON; a plain form post is
    redirected to the job's page. Parameters ride in the query string, the file in the body."""
    fields: Any = request.query_params
    if request.headers.get("content-type", "").startswith("multipart/form-data"):
        fields = await request.form(max_files=1, max_fields=20)  # the file stays in a temporary file
    source_name = str(fields.get("source_name") or "").strip()[:200]
    unit_cost_cents = None
    cost = str(fields.get("unit_cost") or "").strip()
    if cost:
        async with ctx.db.read_session() as session:
            sku = await catalog_service.get_sku(session=session, sku_id=sku_id, scope=user.scope)
        try:
            unit_cost_cents = parse_amount(cost, sku.currency)
        except InvalidAmount as exc:
            return await _refuse(request, ctx, user, sku_id, "err.bad_unit_cost", str(exc))

    async def audit(session: AsyncSession, job: ImportJob) -> None:
        await record_action(session=session, actor=user.actor, action="keys_import_started", object_type="import",
                            object_id=job.id, summary=f"SKU {job.sku_id}: {job.bytes_total} bytes "
                                                      f"{job.source_name}".strip())

    try:
        job = await queue_import(ctx=ctx, request=request, sku_id=sku_id, scope=user.scope, source_name=source_name,
                                 imported_by=user.name, unit_cost_cents=unit_cost_cents, audit=audit)
    except RequestTooLarge as exc:
        return await _refuse(request, ctx, user, sku_id, "err.import_too_large", str(exc.limit), status_code=413)
    except DomainError as exc:
        if exc.code in ("sku_not_found",):
            raise
        return await _refuse(request, ctx, user, sku_id, "err." + exc.code, exc.message)
    page = f"/console/keys/imports/{job.id}"
    if _wants_json(request):
        return JSONResponse({"id": job.id, "page": page, "progress": page + "/progress"}, status_code=202)
    return RedirectResponse(page, status_code=303)


async def _refuse(request: Request, ctx: ContextDep, user: ConsoleUser, sku_id: int, text: str, detail: str, *,
                  status_code: int = 422) -> Response:
    if _wants_json(request):
        locale = pick_locale(request, ctx.settings.default_locale)
        return JSONResponse({"error": console_text(locale, text, detail=say(detail, locale))}, status_code=status_code)
    return await _upload_page(request, ctx, user, sku_id, message=(text, {"detail": detail}, "err"),
                              status_code=status_code)


@router.get("/imports/{import_id}", response_class=HTMLResponse)
async def job_page(import_id: ImportId, request: Request, ctx: ContextDep, user: Manager) -> HTMLResponse:
    async with ctx.db.read_session() as session:
        job = await import_jobs.get_import_job(session=session, job_id=import_id, scope=user.scope)
        report = await import_jobs.import_job_read(session=session, job=job)
        sku = await catalog_service.get_sku(session=session, sku_id=job.sku_id)
    finished = report.status in ("done", "failed")
    # The lines' reasons by line number, said in the page's language like a form's errors (render_page).
    return render_page(request, "console/key_import_job.html", {
        "sku": sku, "job": report, "finished": finished,
        "invalid_errors": {p.line: p.reason for p in report.invalid_lines},
        "duplicate_errors": {p.line: p.reason for p in report.duplicate_lines}}, user=user, active="keys")


@router.get("/imports/{import_id}/progress")
async def job_progress(import_id: ImportId, ctx: ContextDep, user: Manager) -> JSONResponse:
    """What the progress bar polls: percent, status and counts (no line report)."""
    async with ctx.db.read_session() as session:
        job = await import_jobs.get_import_job(session=session, job_id=import_id, scope=user.scope)
        report = await import_jobs.import_job_read(session=session, job=job, with_lines=False)
    return JSONResponse({"status": report.status, "percent": report.percent, "finished": report.status in
                         ("done", "failed"), "lines_read": report.lines_read, "added": report.added,
                         "duplicates": report.duplicates, "invalid": report.invalid},
                        headers={"Cache-Control": "no-store"})
