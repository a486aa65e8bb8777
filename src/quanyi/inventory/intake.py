"""Stock intake (入库): import batches of card keys from a file, codes bought from suppliers for one order, and
voiding a batch. Every key enters in a batch (导入批次), so a leaked code traces back to where it came from."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Sequence

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from quanyi.catalog.models import DeliveryType, Sku
from quanyi.db import utcnow
from quanyi.errors import Conflict, InvalidInput, NotFound
from quanyi.inventory import shared_codes
from quanyi.inventory.crypto import CardKeyCipher
from quanyi.inventory.masking import remember_codes
from quanyi.inventory.models import CardKey, CardKeyStatus, ImportBatch
from quanyi.inventory.parsing import SEPARATOR, ParsedKey, normalize_code_text, parse_card_keys
from quanyi.inventory.schemas import MAX_REPORTED_LINES, ImportReport, LineProblem
from quanyi.inventory.sold_out import stock_returned
from quanyi.scope import PLATFORM, Scope
from quanyi.shoptime import zone_of

__all__ = [
    "NotACardKeySku", "NothingImported", "ImportConflict", "BatchNotFound", "BatchAlreadyVoided", "SharedCodeBatch",
    "import_card_keys", "require_card_key_sku", "classify_keys", "card_key_rows",
    "get_batch", "list_batches", "void_batch", "receive_supplier_codes", "set_batch_unit_cost",
]

_CHUNK = 2000
_LOOKUP_CHUNK = 500

ProgressCallback = Callable[[int, int], None]


class NotACardKeySku(InvalidInput):
    code = "not_a_card_key_sku"


class NothingImported(InvalidInput):
    code = "nothing_imported"


class ImportConflict(Conflict):
    code = "import_conflict"


class BatchNotFound(NotFound):
    code = "batch_not_found"


class BatchAlreadyVoided(Conflict):
    code = "batch_already_voided"


class SharedCodeBatch(Conflict):
    code = "shared_code_batch"


# ---------------------------------------------------------------- import

def _problems(items: list[tuple[int, str]]) -> list[LineProblem]:
    return [LineProblem(line=line, reason=reason) for line, reason in items[:MAX_REPORTED_LINES]]


def require_card_key_sku(sku: Sku) -> None:
    """Only SKUs delivered by card keys take an import."""
    if sku.delivery_type is not DeliveryType.CARD_KEY:
        raise NotACardKeySku(f"SKU {sku.code} is delivered by {sku.delivery_type.value}, not card keys")


async def classify_keys(
    *, session: AsyncSession, cipher: CardKeyCipher, sku: Sku, keys: Sequence[ParsedKey],
    batch_id: int | None = None,
) -> tuple[list[tuple[ParsedKey, bytes]], list[tuple[int, str]]]:
    """The duplicate rule of every import, for one file or one chunk of a streamed file: which keys are new
    (with their fingerprints) and which lines are duplicates (line, reason), sorted by line.

    A code exists once on the whole platform: one another merchant holds is a duplicate too, reported without
    naming its SKU or merchant (a merchant learns nothing about another's stock but that the code is taken).
    `batch_id`: the batch earlier chunks of this same file went into (their codes are "earlier in this file")."""
    remember_codes(key.secret for key in keys)
    duplicates: list[tuple[int, str]] = []
    first_line: dict[bytes, int] = {}
    unique = []
    for key in keys:
        fingerprint = cipher.fingerprint(key.secret)
        if fingerprint in first_line:
            duplicates.append((key.line_no, f"duplicate of line {first_line[fingerprint]} in this file"))
            continue
        first_line[fingerprint] = key.line_no
        unique.append((key, fingerprint))

    existing: dict[bytes, tuple[int, int, int]] = {}
    fingerprints = [fp for _, fp in unique]
    for start in range(0, len(fingerprints), _LOOKUP_CHUNK):
        chunk = fingerprints[start : start + _LOOKUP_CHUNK]
        rows = await session.execute(
            select(CardKey.fingerprint, CardKey.sku_id, CardKey.merchant_id, CardKey.batch_id)
            .where(CardKey.fingerprint.in_(chunk))
        )
        existing.update({fp: (sku_id, merchant_id, batch) for fp, sku_id, merchant_id, batch in rows.all()})
    fresh = []
    for key, fingerprint in unique:
        owner_sku, owner_merchant, owner_batch = existing.get(fingerprint, (None, None, None))
        if owner_sku is None:
            fresh.append((key, fingerprint))
        elif batch_id is not None and owner_batch == batch_id:
            duplicates.append((key.line_no, "duplicate of an earlier line in this file"))
        elif owner_sku == sku.id:
            duplicates.append((key.line_no, "already in stock for this SKU"))
        elif owner_merchant == sku.merchant_id:
            duplicates.append((key.line_no, f"already in stock for another SKU (id {owner_sku})"))
        else:
            duplicates.append((key.line_no, "already held elsewhere on the platform"))
    duplicates.sort()
    return fresh, duplicates


def card_key_rows(*, cipher: CardKeyCipher, sku: Sku, batch_id: int, fresh: Sequence[tuple[ParsedKey, bytes]],
                  now: dt.datetime) -> list[dict[str, object]]:
    """New keys as rows to insert: encrypted, available, in their batch."""
    rows: list[dict[str, object]] = []
    for key, fingerprint in fresh:
        sealed = cipher.encrypt(key.secret, fingerprint=fingerprint)
        rows.append({"sku_id": sku.id, "merchant_id": sku.merchant_id, "batch_id": batch_id,
                     "status": CardKeyStatus.AVAILABLE, "fingerprint": fingerprint, "key_id": sealed.key_id,
                     "ciphertext": sealed.ciphertext, "expires_at": key.expires_at, "created_at": now})
    return rows


async def import_card_keys(
    *,
    session: AsyncSession,
    cipher: CardKeyCipher,
    sku: Sku,
    text: str,
    source_name: str = "",
    imported_by: str = "",
    progress: ProgressCallback | None = None,
    now: dt.datetime | None = None,
    unit_cost_cents: int | None = None,
) -> ImportReport:
    """Import a batch of card keys into the SKU's merchant: normalize, dedupe by fingerprint, encrypt, store. All or
    nothing. `unit_cost_cents`: what one key cost (the ledger's cost of goods when it sells), if known.

    A code exists once on the whole platform: one another merchant holds is a duplicate too, reported without
    naming its SKU or merchant (a merchant learns nothing about another's stock but that the code is taken)."""
    require_card_key_sku(sku)
    now = now or utcnow()
    parsed = parse_card_keys(text, now=now, zone=zone_of(session))
    fresh, duplicates = await classify_keys(session=session, cipher=cipher, sku=sku, keys=parsed.keys)
    report = ImportReport(
        batch_id=None, sku_id=sku.id, lines_read=parsed.lines_read, added=len(fresh),
        duplicates=len(duplicates), invalid=len(parsed.invalid),
        duplicate_lines=_problems(duplicates), invalid_lines=_problems(parsed.invalid),
        truncated=max(len(duplicates), len(parsed.invalid)) > MAX_REPORTED_LINES,
    )
    if not fresh:
        raise NothingImported("no new card keys in this file", report=report)

    batch = ImportBatch(
        sku_id=sku.id, merchant_id=sku.merchant_id, source_name=source_name[:200], imported_by=imported_by[:64],
        added_count=len(fresh), duplicate_count=len(duplicates), invalid_count=len(parsed.invalid),
        created_at=now, unit_cost_cents=unit_cost_cents,
    )
    session.add(batch)
    await session.flush()
    stock_returned(session, batch.sku_id)  # the stock gate sells again once this commits

    total = len(fresh)
    for start in range(0, total, _CHUNK):
        rows = card_key_rows(cipher=cipher, sku=sku, batch_id=batch.id, fresh=fresh[start : start + _CHUNK], now=now)
        try:
            await session.execute(insert(CardKey), rows)
        except IntegrityError:
            # The unique fingerprint constraint caught a concurrent import of the same codes.
            raise ImportConflict("another import added some of these card keys at the same time; retry") from None
        if progress is not None:
            progress(min(start + _CHUNK, total), total)
    return report.model_copy(update={"batch_id": batch.id})


# ---------------------------------------------------------------- batches

async def get_batch(*, session: AsyncSession, batch_id: int, lock: bool = False,
                    scope: Scope = PLATFORM) -> ImportBatch:
    stmt = select(ImportBatch).where(ImportBatch.id == batch_id)
    if lock:
        stmt = stmt.with_for_update()
    batch = await session.scalar(stmt)
    if batch is None or not scope.sees(batch.merchant_id):
        raise BatchNotFound(f"import batch {batch_id} does not exist")
    return batch


async def list_batches(*, session: AsyncSession, sku_id: int) -> Sequence[ImportBatch]:
    stmt = select(ImportBatch).where(ImportBatch.sku_id == sku_id).order_by(ImportBatch.id.desc())
    return (await session.scalars(stmt)).all()


async def void_batch(
    *, session: AsyncSession, batch_id: int, reason: str, now: dt.datetime | None = None, scope: Scope = PLATFORM
) -> ImportBatch:
    """Withdraw a batch's unsold keys (available and reserved); sold keys stay with their orders. A 循环卡密
    batch is refused: its one code has no unsold keys, voiding it would stop nothing (it is stopped on its
    shared-code page, which can resume it)."""
    now = now or utcnow()
    # Batch row lock: two operators voiding at once void once.
    batch = await get_batch(session=session, batch_id=batch_id, lock=True, scope=scope)
    if batch.voided_at is not None:
        raise BatchAlreadyVoided(f"import batch {batch_id} was already voided")
    if await shared_codes.shared_code_batch_ids(session=session, batch_ids=[batch_id]):
        raise SharedCodeBatch(f"import batch {batch_id} holds a shared code (循环卡密), sold to many buyers: there "
                              "are no unsold keys to void; stop selling the code on its shared-code page instead",
                              sku_id=batch.sku_id)
    # Lock keys in id order, the same order delivery uses, so the two cannot deadlock.
    ids = (
        await session.scalars(
            select(CardKey.id)
            .where(
                CardKey.batch_id == batch_id,
                CardKey.status.in_([CardKeyStatus.AVAILABLE, CardKeyStatus.RESERVED]),
            )
            .order_by(CardKey.id)
            .with_for_update()
        )
    ).all()
    for start in range(0, len(ids), _CHUNK):
        await session.execute(
            update(CardKey)
            .where(CardKey.id.in_(ids[start : start + _CHUNK]))
            .values(status=CardKeyStatus.VOIDED, voided_at=now)
        )
    batch.voided_at = now
    batch.void_reason = reason
    batch.voided_count = len(ids)
    await session.flush()
    return batch


# ---------------------------------------------------------------- codes bought from suppliers

async def receive_supplier_codes(
    *,
    session: AsyncSession,
    cipher: CardKeyCipher,
    sku_id: int,
    merchant_id: int,
    order_id: int,
    codes: Sequence[tuple[str, dt.datetime | None]],
    source_name: str,
    imported_by: str,
    now: dt.datetime | None = None,
) -> tuple[int | None, int, int]:
    """Store codes a supplier sold us for one paid order, encrypted, held (reserved) for that order, in a batch
    named after the purchase so a leaked code traces back to it. Returns (batch id, stored, duplicates).

    A code whose fingerprint the platform already holds (sold, in stock, at any merchant, or sent twice in this
    answer) is not stored and never delivered twice; the caller records the count against the supplier. The
    codes belong to the order's merchant (`merchant_id`). Caller holds the order lock."""
    now = now or utcnow()
    fresh: dict[bytes, tuple[str, dt.datetime | None]] = {}
    for raw, expires_at in codes:
        secret = _supplier_secret(raw)
        if secret:
            fresh.setdefault(cipher.fingerprint(secret), (secret, expires_at))
    # Masked in logs from now on, as imported codes are (duplicates too: they are codes all the same).
    remember_codes(secret for secret, _ in fresh.values())
    known = set()
    fingerprints = list(fresh)
    for start in range(0, len(fingerprints), _LOOKUP_CHUNK):
        chunk = fingerprints[start : start + _LOOKUP_CHUNK]
        known.update((await session.scalars(select(CardKey.fingerprint).where(CardKey.fingerprint.in_(chunk)))).all())
    new = {fp: value for fp, value in fresh.items() if fp not in known}
    duplicates = len(codes) - len(new)
    if not new:
        return None, 0, duplicates
    batch = ImportBatch(sku_id=sku_id, merchant_id=merchant_id, source_name=source_name[:200],
                        imported_by=imported_by[:64], added_count=len(new), duplicate_count=duplicates, created_at=now)
    session.add(batch)
    await session.flush()
    stock_returned(session, batch.sku_id)  # the stock gate sells again once this commits
    rows = []
    for fingerprint, (secret, expires_at) in new.items():
        sealed = cipher.encrypt(secret, fingerprint=fingerprint)
        rows.append({"sku_id": sku_id, "merchant_id": merchant_id, "batch_id": batch.id,
                     "status": CardKeyStatus.RESERVED, "order_id": order_id, "reserved_at": now,
                     "fingerprint": fingerprint, "key_id": sealed.key_id, "ciphertext": sealed.ciphertext,
                     "expires_at": expires_at, "created_at": now})
    # A concurrent import of the same code would violate the unique fingerprint and roll the whole
    # transaction back: the caller's attempt stays open and is resolved again (nothing delivered twice).
    await session.execute(insert(CardKey), rows)
    return batch.id, len(new), duplicates


def _supplier_secret(raw: str) -> str:
    """A supplier's code as we store imported ones: "CARDNO PASSWORD" (space, tab or ----) becomes card number +
    password, so the buyer sees both fields and the fingerprint matches the same card imported from a file."""
    text = normalize_code_text(raw)
    parts = [p for p in re.split(r"----|\t| +", text) if p]
    return SEPARATOR.join(parts) if len(parts) == 2 else text


async def set_batch_unit_cost(*, session: AsyncSession, batch_id: int, unit_cost_cents: int) -> None:
    """What one key of this batch cost the shop, once known (supplier codes that went on sale)."""
    await session.execute(update(ImportBatch).where(ImportBatch.id == batch_id)
                          .values(unit_cost_cents=unit_cost_cents))
