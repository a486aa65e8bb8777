"""Streamed card-key imports (导入任务): an upload of any size becomes an import job that a background worker
works through in chunks, with a progress anyone allowed to see the SKU can follow.

The rules are those of every import (intake.py: normalization and line format in parsing.py, the duplicate rule
across the platform, merchant scope, the batch a leak traces back to); only the pace differs:

- The upload is streamed into an encrypted spool file (spool.py) and never held whole in memory.
- Each chunk (QUANYI_IMPORT_CHUNK_LINES lines) is parsed, fingerprinted, checked and encrypted outside any
  write transaction; its write is one short transaction that inserts the new keys AND advances the job's
  counters from the offset it started at. A crash loses at most the chunk in flight; whoever resumes the job
  starts after the last committed chunk, and a chunk can never be committed twice (the offset guard).
- A worker holds a job by a lease it renews with every chunk; a job whose lease ran out (its process died)
  is taken over by the next worker round of any process (`resume_import_jobs`).
- On SQLite the single writer lock is held only for the inserts of one chunk, so checkouts wait milliseconds.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from quanyi.catalog import service as catalog_service
from quanyi.catalog.models import Sku
from quanyi.db import Database, utcnow
from quanyi.errors import Conflict, NotFound
from quanyi.inventory.crypto import CardKeyCipher, CardKeyDecryptionError, EncryptedCode
from quanyi.inventory.intake import (
    ImportConflict,
    NothingImported,
    card_key_rows,
    classify_keys,
    require_card_key_sku,
)
from quanyi.inventory.models import CardKey, ImportBatch, ImportJob, ImportJobStatus, ImportProblem
from quanyi.inventory.parsing import LineParser, ParsedKey
from quanyi.inventory.schemas import MAX_REPORTED_LINES, ImportJobRead, ImportReport, LineProblem
from quanyi.inventory.sold_out import stock_returned
from quanyi.inventory.spool import MAX_LINE_BYTES, SpoolDamaged, SpooledFile, read_lines, spool_path
from quanyi.scope import PLATFORM, Scope
from quanyi.shoptime import zone_of

__all__ = ["ImportJobNotFound", "ImportSpoolUnreadable", "ImportProgress", "import_now", "create_import_job",
           "get_import_job", "list_import_jobs",
           "import_job_read", "run_import_job", "resume_import_jobs", "remove_orphan_spools", "start_import_job",
           "stop_import_jobs"]

logger = logging.getLogger(__name__)
_CONFLICT_RETRIES = 5
_OPEN = (ImportJobStatus.QUEUED, ImportJobStatus.RUNNING)


class ImportJobNotFound(NotFound):
    code = "import_job_not_found"


@dataclass(frozen=True, slots=True)
class ImportProgress:
    bytes_done: int
    bytes_total: int
    lines_read: int
    added: int
    duplicates: int
    invalid: int


ProgressCallback = Callable[[ImportProgress], None]


def _spool_aad(name: str) -> bytes:
    return b"quanyi import spool " + name.encode()


async def create_import_job(
    *, session: AsyncSession, cipher: CardKeyCipher, sku: Sku, spooled: SpooledFile, source_name: str = "",
    imported_by: str = "", unit_cost_cents: int | None = None, now: dt.datetime | None = None,
    owner: str | None = None, lease_seconds: float = 60.0,
) -> ImportJob:
    """Queue the import of a spooled upload into `sku` (its merchant's). The caller commits, then starts it.
    With `owner` the job is created held by that worker (no other process's round takes it first)."""
    require_card_key_sku(sku)
    sealed = cipher.encrypt(base64.b64encode(spooled.key).decode(), fingerprint=_spool_aad(spooled.name))
    job = ImportJob(
        sku_id=sku.id, merchant_id=sku.merchant_id, status=ImportJobStatus.QUEUED, source_name=source_name[:200],
        imported_by=imported_by[:64], unit_cost_cents=unit_cost_cents, spool_name=spooled.name,
        spool_key_id=sealed.key_id, spool_key=sealed.ciphertext, encoding=spooled.encoding,
        bytes_total=spooled.bytes_total, bytes_done=0, lines_read=0, added=0, duplicates=0, invalid=0,
        content_seen=False, created_at=now or utcnow(), lease_owner=owner,
        lease_until=(now or utcnow()) + dt.timedelta(seconds=lease_seconds) if owner else None,
    )
    session.add(job)
    await session.flush()
    return job


async def get_import_job(*, session: AsyncSession, job_id: int, scope: Scope = PLATFORM) -> ImportJob:
    job = await session.get(ImportJob, job_id)
    if job is None or not scope.sees(job.merchant_id):
        raise ImportJobNotFound(f"import job {job_id} does not exist")
    return job


async def list_import_jobs(*, session: AsyncSession, scope: Scope = PLATFORM, sku_id: int | None = None,
                           limit: int = 50) -> Sequence[ImportJob]:
    stmt = select(ImportJob).where(scope.where(ImportJob.merchant_id)).order_by(ImportJob.id.desc()).limit(limit)
    if sku_id is not None:
        stmt = stmt.where(ImportJob.sku_id == sku_id)
    return (await session.scalars(stmt)).all()


def _percent(job: ImportJob) -> int:
    """Of the file's bytes, those imported; 100 only once the job is finished with the whole file read."""
    if job.status == ImportJobStatus.DONE or (job.status == ImportJobStatus.FAILED
                                              and job.bytes_done >= job.bytes_total):
        return 100
    if not job.bytes_total:
        return 0
    return min(99, job.bytes_done * 100 // job.bytes_total)


async def import_job_read(*, session: AsyncSession, job: ImportJob, with_lines: bool = True) -> ImportJobRead:
    """The job as the API and console show it; a finished job's report carries its duplicate/invalid lines."""
    lines: dict[str, list[LineProblem]] = {"duplicate": [], "invalid": []}
    if with_lines and job.status not in _OPEN:
        rows = await session.execute(select(ImportProblem.kind, ImportProblem.line, ImportProblem.reason)
                                     .where(ImportProblem.job_id == job.id).order_by(ImportProblem.id))
        for kind, line, reason in rows.all():
            lines[kind].append(LineProblem(line=line, reason=reason))
    return ImportJobRead(
        id=job.id, sku_id=job.sku_id, status=job.status, percent=_percent(job), source_name=job.source_name,
        imported_by=job.imported_by, batch_id=job.batch_id, bytes_total=job.bytes_total, bytes_done=job.bytes_done,
        lines_read=job.lines_read, added=job.added, duplicates=job.duplicates, invalid=job.invalid,
        error_code=job.error_code, error=job.error, created_at=job.created_at, started_at=job.started_at,
        finished_at=job.finished_at, duplicate_lines=lines["duplicate"], invalid_lines=lines["invalid"],
        truncated=max(job.duplicates, job.invalid) > MAX_REPORTED_LINES,
    )


# ---------------------------------------------------------------- the worker

@dataclass(slots=True)
class _Chunk:
    keys: list[ParsedKey] = field(default_factory=list)
    invalid: list[tuple[int, str]] = field(default_factory=list)
    lines_read: int = 0
    offset: int = 0
    content_seen: bool = False
    eof: bool = False


class _ChunkReader:
    """Reads and parses the spool chunk by chunk from where the job stands (blocking: run it in a thread)."""

    def __init__(self, path: Path, key: bytes, job: ImportJob, parser: LineParser, chunk_lines: int) -> None:
        self._lines = read_lines(path, key, start=job.bytes_done, bytes_total=job.bytes_total)
        self._parser = parser
        self._encoding = job.encoding
        self._line_no = job.lines_read
        self._offset = job.bytes_done
        self._chunk_lines = chunk_lines

    def next(self) -> _Chunk:
        chunk = _Chunk()
        for count, (raw, end) in enumerate(self._lines, start=1):
            self._offset = end
            if raw is None:
                self._line_no += 1
                chunk.invalid.append((self._line_no, f"line is longer than {MAX_LINE_BYTES} bytes"))
            else:
                # Other line breaks inside (form feed, U+2028 ...) count as lines, as in a whole-file import.
                for piece in raw.decode(self._encoding).splitlines() or [""]:
                    self._line_no += 1
                    parsed = self._parser.parse(self._line_no, piece)
                    if isinstance(parsed, ParsedKey):
                        chunk.keys.append(parsed)
                    elif parsed is not None:
                        chunk.invalid.append(parsed)
            if count >= self._chunk_lines:
                break
        else:
            chunk.eof = True
        chunk.lines_read, chunk.offset, chunk.content_seen = self._line_no, self._offset, self._parser.content_seen
        return chunk


class _LeaseLost(Exception):
    """Another worker holds the job now (ours expired): stop without writing."""


async def _claim(db: Database, job_id: int, owner: str, lease_seconds: float) -> bool:
    now = utcnow()
    async with db.transaction() as session:
        # One UPDATE decides between racing workers: only a job nobody holds (or whose lease ran out) is taken.
        claimed = await session.execute(
            update(ImportJob)
            .where(ImportJob.id == job_id, ImportJob.status.in_(_OPEN),
                   or_(ImportJob.lease_until.is_(None), ImportJob.lease_until < now, ImportJob.lease_owner == owner))
            .values(status=ImportJobStatus.RUNNING, lease_owner=owner,
                    lease_until=now + dt.timedelta(seconds=lease_seconds),
                    started_at=func.coalesce(ImportJob.started_at, now))
        )
        return claimed.rowcount == 1


async def _finish(db: Database, job: ImportJob, owner: str, *, status: ImportJobStatus,
                  error_code: str | None = None, error: str | None = None) -> None:
    async with db.transaction() as session:
        await session.execute(
            update(ImportJob).where(ImportJob.id == job.id, ImportJob.lease_owner == owner)
            .values(status=status, error_code=error_code, error=error and error[:500], finished_at=utcnow(),
                    lease_owner=None, lease_until=None))


async def _commit_chunk(*, db: Database, cipher: CardKeyCipher, job: ImportJob, sku: Sku, chunk: _Chunk,
                        owner: str, lease_seconds: float) -> None:
    """Check, encrypt (outside the transaction) and store one chunk; the job's counters move in the same
    short transaction, guarded by the offset the chunk started at."""
    for attempt in range(_CONFLICT_RETRIES):
        async with db.read_session() as session:
            fresh, duplicates = await classify_keys(session=session, cipher=cipher, sku=sku, keys=chunk.keys,
                                                    batch_id=job.batch_id)
        now = utcnow()
        rows = await asyncio.to_thread(card_key_rows, cipher=cipher, sku=sku, batch_id=0, fresh=fresh, now=now)
        try:
            await _write_chunk(db=db, job=job, sku=sku, chunk=chunk, rows=rows, duplicates=duplicates, owner=owner,
                               now=now, lease_seconds=lease_seconds)
            return
        except IntegrityError:
            # Another import stored some of these codes between our check and our insert: check again.
            logger.info("import job %s: concurrent import of the same codes, chunk retried (%s)", job.id, attempt)
    raise _ConflictPersists()


class _ConflictPersists(Exception):
    pass


async def _write_chunk(*, db: Database, job: ImportJob, sku: Sku, chunk: _Chunk, rows: list[dict[str, object]],
                       duplicates: list[tuple[int, str]], owner: str, now: dt.datetime,
                       lease_seconds: float) -> None:
    async with db.transaction() as session:
        # The offset guard: this chunk is committed once, by the worker holding the lease, or not at all.
        moved = await session.execute(
            update(ImportJob).where(ImportJob.id == job.id, ImportJob.lease_owner == owner,
                                    ImportJob.bytes_done == job.bytes_done)
            .values(bytes_done=chunk.offset, lines_read=chunk.lines_read, content_seen=chunk.content_seen,
                    added=ImportJob.added + len(rows), duplicates=ImportJob.duplicates + len(duplicates),
                    invalid=ImportJob.invalid + len(chunk.invalid),
                    lease_until=now + dt.timedelta(seconds=lease_seconds))
        )
        if moved.rowcount != 1:
            raise _LeaseLost()
        batch_id = job.batch_id
        if rows and batch_id is None:
            batch = ImportBatch(sku_id=sku.id, merchant_id=sku.merchant_id, source_name=job.source_name,
                                imported_by=job.imported_by, added_count=0, duplicate_count=job.duplicates,
                                invalid_count=job.invalid, created_at=now, unit_cost_cents=job.unit_cost_cents)
            session.add(batch)
            await session.flush()
            batch_id = batch.id
            await session.execute(update(ImportJob).where(ImportJob.id == job.id).values(batch_id=batch_id))
        if rows:
            for row in rows:
                row["batch_id"] = batch_id
            await session.execute(insert(CardKey), rows)
            stock_returned(session, sku.id)  # the stock gate sells again once this commits
        if batch_id is not None:
            await session.execute(
                update(ImportBatch).where(ImportBatch.id == batch_id)
                .values(added_count=ImportBatch.added_count + len(rows),
                        duplicate_count=ImportBatch.duplicate_count + len(duplicates),
                        invalid_count=ImportBatch.invalid_count + len(chunk.invalid)))
        problems = [{"job_id": job.id, "kind": "duplicate", "line": line, "reason": reason[:500]}
                    for line, reason in duplicates[:max(0, MAX_REPORTED_LINES - job.duplicates)]]
        problems += [{"job_id": job.id, "kind": "invalid", "line": line, "reason": reason[:500]}
                     for line, reason in chunk.invalid[:max(0, MAX_REPORTED_LINES - job.invalid)]]
        if problems:
            await session.execute(insert(ImportProblem), problems)
    job.batch_id = batch_id
    job.bytes_done, job.lines_read, job.content_seen = chunk.offset, chunk.lines_read, chunk.content_seen
    job.added += len(rows)
    job.duplicates += len(duplicates)
    job.invalid += len(chunk.invalid)


def _spool_key(cipher: CardKeyCipher, job: ImportJob) -> bytes:
    sealed = EncryptedCode(key_id=job.spool_key_id, ciphertext=job.spool_key)
    return base64.b64decode(cipher.decrypt(sealed, fingerprint=_spool_aad(job.spool_name)))


async def run_import_job(
    *, db: Database, cipher: CardKeyCipher, spool_dir: Path, job_id: int, owner: str, lease_seconds: float = 60.0,
    chunk_lines: int = 2000, progress: ProgressCallback | None = None,
) -> ImportJob | None:
    """Claim the job and import it to the end (from where it stands). Returns the job as this worker left it,
    or None when another worker holds it or it is already finished. A database failure leaves the job to be
    resumed once the lease runs out; a spool that cannot be read fails the job."""
    if not await _claim(db, job_id, owner, lease_seconds):
        return None
    async with db.read_session() as session:
        job = await session.get(ImportJob, job_id)
        assert job is not None
        sku = await catalog_service.get_sku(session=session, sku_id=job.sku_id)
        zone = zone_of(session)
    path = spool_path(spool_dir, job.spool_name)
    try:
        key = _spool_key(cipher, job)
        reader = _ChunkReader(path, key, job, LineParser(zone=zone, now=utcnow(), content_seen=job.content_seen),
                              chunk_lines)
        while True:
            chunk = await asyncio.to_thread(reader.next)
            if chunk.lines_read > job.lines_read or chunk.offset > job.bytes_done:
                await _commit_chunk(db=db, cipher=cipher, job=job, sku=sku, chunk=chunk, owner=owner,
                                    lease_seconds=lease_seconds)
                if progress is not None:
                    progress(ImportProgress(job.bytes_done, job.bytes_total, job.lines_read, job.added,
                                            job.duplicates, job.invalid))
            if chunk.eof:
                break
    except _LeaseLost:
        logger.warning("import job %s was taken over by another worker; this one stops", job_id)
        return None
    except SpoolDamaged as exc:
        await _fail(db, job, owner, path, "spool_unreadable", str(exc))
        return job
    except CardKeyDecryptionError:  # the key that sealed the spool's key left the keyring meanwhile
        await _fail(db, job, owner, path, "spool_unreadable",
                    f"the spool's key was sealed with card-key key {job.spool_key_id!r}, no longer in the keyring")
        return job
    except _ConflictPersists:
        await _fail(db, job, owner, path, "import_conflict",
                    "other imports kept adding the same card keys; the rest of the file was not imported")
        return job
    if job.added:
        await _finish(db, job, owner, status=ImportJobStatus.DONE)
        job.status = ImportJobStatus.DONE
    else:
        await _finish(db, job, owner, status=ImportJobStatus.FAILED, error_code="nothing_imported",
                      error="no new card keys in this file")
        job.status, job.error_code = ImportJobStatus.FAILED, "nothing_imported"
    await asyncio.to_thread(path.unlink, missing_ok=True)
    return job


async def _fail(db: Database, job: ImportJob, owner: str, path: Path, code: str, message: str) -> None:
    logger.error("import job %s failed: %s", job.id, message)
    await _finish(db, job, owner, status=ImportJobStatus.FAILED, error_code=code, error=message)
    job.status, job.error_code, job.error = ImportJobStatus.FAILED, code, message
    await asyncio.to_thread(path.unlink, missing_ok=True)


async def resume_import_jobs(*, db: Database, cipher: CardKeyCipher, spool_dir: Path, owner: str,
                             lease_seconds: float = 60.0, chunk_lines: int = 2000) -> int:
    """Work every job nobody holds: queued ones, and running ones whose worker stopped renewing its lease
    (a crashed or restarted process). Returns how many this round finished or advanced."""
    now = utcnow()
    async with db.read_session() as session:
        ids = (await session.scalars(
            select(ImportJob.id).where(ImportJob.status.in_(_OPEN),
                                       or_(ImportJob.lease_until.is_(None), ImportJob.lease_until < now))
            .order_by(ImportJob.id).limit(20))).all()
    worked = 0
    for job_id in ids:
        if await run_import_job(db=db, cipher=cipher, spool_dir=spool_dir, job_id=job_id, owner=owner,
                                lease_seconds=lease_seconds, chunk_lines=chunk_lines) is not None:
            worked += 1
    return worked


class ImportSpoolUnreadable(Conflict):
    code = "spool_unreadable"


async def import_now(*, db: Database, cipher: CardKeyCipher, spool_dir: Path, job_id: int, owner: str,
                     lease_seconds: float = 60.0, chunk_lines: int = 2000) -> ImportReport:
    """Work a job created held by `owner` to its end in this task and answer like the one-transaction import:
    the report, or NothingImported (with the report) when no line was new. Chunked all the same: memory stays
    bounded and checkouts go on; if this process dies, the job resumes in the background."""
    worked = await run_import_job(db=db, cipher=cipher, spool_dir=spool_dir, job_id=job_id, owner=owner,
                                  lease_seconds=lease_seconds, chunk_lines=chunk_lines)
    async with db.read_session() as session:
        job = await get_import_job(session=session, job_id=job_id)
        read = await import_job_read(session=session, job=job)
    report = ImportReport(batch_id=read.batch_id, sku_id=read.sku_id, lines_read=read.lines_read, added=read.added,
                          duplicates=read.duplicates, invalid=read.invalid, duplicate_lines=read.duplicate_lines,
                          invalid_lines=read.invalid_lines, truncated=read.truncated)
    if worked is None:
        raise ImportConflict(f"import job {job_id} is being worked by another process")
    if read.error_code == "nothing_imported":
        raise NothingImported("no new card keys in this file", report=report)
    if read.error_code == "import_conflict":
        raise ImportConflict(read.error or "another import added the same card keys at the same time; retry")
    if read.status != ImportJobStatus.DONE:
        raise ImportSpoolUnreadable(read.error or "the uploaded file could not be read back")
    return report


def _old_spools(spool_dir: Path, cutoff: float) -> dict[str, Path]:
    if not spool_dir.is_dir():
        return {}
    return {path.stem: path for path in spool_dir.glob("*.spool") if path.stat().st_mtime < cutoff}


async def remove_orphan_spools(*, db: Database, spool_dir: Path, older_than: dt.timedelta = dt.timedelta(hours=1)
                               ) -> int:
    """Delete spool files no open job needs: an upload whose process died before its job was committed (a
    finished job removes its own). Only files untouched for `older_than`, so an upload still arriving stays."""
    old = await asyncio.to_thread(_old_spools, spool_dir, time.time() - older_than.total_seconds())
    if not old:
        return 0
    async with db.read_session() as session:
        needed = set((await session.scalars(
            select(ImportJob.spool_name).where(ImportJob.status.in_(_OPEN), ImportJob.spool_name.in_(list(old)))
        )).all())
    orphans = [path for name, path in old.items() if name not in needed]
    for path in orphans:
        await asyncio.to_thread(path.unlink, missing_ok=True)
    return len(orphans)


# ---------------------------------------------------------------- running jobs in this process

_running: set[asyncio.Task[None]] = set()


def start_import_job(*, db: Database, cipher: CardKeyCipher, spool_dir: Path, job_id: int, lease_seconds: float,
                     chunk_lines: int) -> asyncio.Task[None]:
    """Work a just-committed job in the background of this process (the API's and the console's uploads)."""
    from quanyi.leased_worker import worker_owner

    async def work() -> None:
        try:
            await run_import_job(db=db, cipher=cipher, spool_dir=spool_dir, job_id=job_id, owner=worker_owner(),
                                 lease_seconds=lease_seconds, chunk_lines=chunk_lines)
        except asyncio.CancelledError:
            raise
        except Exception:  # the lease runs out and another round resumes the job
            logger.exception("import job %s stopped; it resumes when its lease runs out", job_id)

    task = asyncio.create_task(work(), name=f"quanyi-import-{job_id}")
    _running.add(task)
    task.add_done_callback(_running.discard)
    return task


async def stop_import_jobs() -> None:
    """Cancel this process's running imports (shutdown); their jobs resume elsewhere once the lease runs out."""
    tasks = list(_running)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
