"""`quanyi keys import FILE --sku CODE` and `quanyi keys resume-import JOB`: the streamed import job (the API's
and the console's), run in this process with a Rich progress bar, then its report."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from quanyi.cli_support import console, err, merchant_scope
from quanyi.cli_support import run_job as _run

__all__ = ["import_file", "resume_import"]

_READ_BLOCK = 256 * 1024


def _bar() -> Progress:
    return Progress(TextColumn("[bold]importing[/bold]"), BarColumn(), TaskProgressColumn(),
                    TextColumn("{task.fields[counts]}"), TimeElapsedColumn(), console=console, transient=False)


async def _work(ctx, job_id: int):  # type: ignore[no-untyped-def]
    from quanyi.inventory import import_jobs
    from quanyi.leased_worker import worker_owner

    with _bar() as bar:
        task = bar.add_task("import", total=100, counts="")

        def show(p: import_jobs.ImportProgress) -> None:
            bar.update(task, completed=p.bytes_done * 100 / max(p.bytes_total, 1),
                       counts=f"{p.lines_read} lines: {p.added} added, {p.duplicates} duplicates, {p.invalid} invalid")

        worked = await import_jobs.run_import_job(
            db=ctx.db, cipher=ctx.cipher, spool_dir=Path(ctx.settings.import_spool_dir), job_id=job_id,
            owner=worker_owner(), lease_seconds=ctx.settings.import_lease_seconds,
            chunk_lines=ctx.settings.import_chunk_lines, progress=show)
        if worked is not None and worked.status == "done":
            bar.update(task, completed=100)
    async with ctx.db.read_session() as session:
        job = await import_jobs.get_import_job(session=session, job_id=job_id)
        return await import_jobs.import_job_read(session=session, job=job), worked is None


def import_file(*, file: Path, sku: str, source: str, unit_cost: int | None, merchant: str | None) -> None:
    """Spool the file (encrypted, streamed), queue the job and work it here."""
    from quanyi.catalog import service as catalog_service
    from quanyi.inventory import import_jobs
    from quanyi.inventory.intake import require_card_key_sku
    from quanyi.inventory.spool import NotText, SpoolTooLarge, SpoolWriter

    async def job(ctx):  # type: ignore[no-untyped-def]
        async with ctx.db.read_session() as session:
            target = await catalog_service.get_sku_by_code(session=session, code=sku,
                                                           scope=await merchant_scope(session, merchant))
            require_card_key_sku(target)
        # No upload limit here: the operator's own file on the shop's machine.
        with SpoolWriter(Path(ctx.settings.import_spool_dir), max_bytes=2**62) as writer, file.open("rb") as handle:
            while block := handle.read(_READ_BLOCK):
                writer.write(block)
            if writer.bytes_written == 0:
                return None, "the file is empty"
            try:
                spooled = writer.finish()
            except (NotText, SpoolTooLarge) as exc:
                return None, str(exc)
        async with ctx.db.transaction() as session:
            target = await catalog_service.get_sku(session=session, sku_id=target.id)
            created = await import_jobs.create_import_job(
                session=session, cipher=ctx.cipher, sku=target, spooled=spooled, source_name=source or file.name,
                imported_by="cli", unit_cost_cents=unit_cost)
        console.print(f"Import job {created.id}: {spooled.bytes_total} bytes queued.")
        return await _work(ctx, created.id), None

    outcome, problem = _run(job)
    if problem is not None:
        err.print(f"[red]Cannot read {file}:[/red] {problem}")
        raise typer.Exit(2)
    _report(sku, *outcome)


def resume_import(job_id: int) -> None:
    """Work an import job left unfinished (its process stopped): it continues after its last committed chunk."""
    _report("", *_run(lambda ctx: _work(ctx, job_id)))


def _report(sku: str, report, held_elsewhere: bool) -> None:  # type: ignore[no-untyped-def]
    if held_elsewhere and report.status in ("queued", "running"):
        console.print(f"Import job {report.id} is being worked by another process ({report.percent} %).")
        return
    table = Table(title=f"Import into {sku.upper()}" if sku else f"Import job {report.id}")
    for column in ("job", "batch", "lines", "added", "duplicates", "invalid"):
        table.add_column(column, justify="right")
    table.add_row(str(report.id), str(report.batch_id or "-"), str(report.lines_read),
                  f"[green]{report.added}[/green]", str(report.duplicates),
                  f"[red]{report.invalid}[/red]" if report.invalid else "0")
    console.print(table)
    for problem in report.invalid_lines[:20]:
        console.print(f"  line {problem.line}: [red]invalid[/red] {problem.reason}")
    for problem in report.duplicate_lines[:20]:
        console.print(f"  line {problem.line}: [yellow]duplicate[/yellow] {problem.reason}")
    if max(report.invalid, report.duplicates) > 20:
        console.print(f"  (the full report: GET /api/admin/imports/{report.id})")
    if report.status == "failed":
        err.print(f"[red]Error ({report.error_code}):[/red] {report.error}")
        raise typer.Exit(1)
    if report.status != "done":
        err.print(f"[yellow]Import job {report.id} stopped at {report.percent} %; continue it with "
                  f"`quanyi keys resume-import {report.id}`.[/yellow]")
        raise typer.Exit(1)
