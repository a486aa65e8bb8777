"""Card-key stock (卡密库存): import, count, reserve, deliver, release, void and reveal.

Locking rule for the whole shop: a transaction that touches an order's keys locks the order row first
(orders.service does), then the keys in id order. Allocation from free stock uses FOR UPDATE SKIP LOCKED,
which never waits, so it cannot deadlock. On SQLite the clauses are not rendered; there every write
transaction holds the database's single writer lock from BEGIN IMMEDIATE (see quanyi.db).
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from collections.abc import Callable, Sequence

from sqlalchemy import func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from quanyi.catalog.models import DeliveryType, Sku
from quanyi.db import utcnow
from quanyi.errors import Conflict, DomainError, InvalidInput, NotFound
from quanyi.inventory.crypto import CardKeyCipher, EncryptedCode
from quanyi.inventory.masking import remember_codes
from quanyi.inventory.models import CardKey, CardKeyStatus, ImportBatch, KeyReveal
from quanyi.inventory.parsing import SEPARATOR, parse_card_keys, split_secret
from quanyi.inventory.schemas import (
    MAX_REPORTED_LINES,
    ImportReport,
    LineProblem,
    RevealedKey,
    StockSummary,
)

__all__ = [
    "OutOfStock", "NotACardKeySku", "NothingImported", "ImportConflict", "BatchNotFound", "BatchAlreadyVoided",
    "SALE_MARGIN", "available_counts", "stock_summary", "import_card_keys", "void_batch", "list_batches",
    "get_batch", "sku_has_history", "lock_card_keys_for_sale", "reserve_card_keys", "release_card_keys",
    "deliver_card_keys",
    "reveal_card_keys", "count_order_keys", "withdrawable_keys", "withdraw_card_keys", "receive_supplier_codes",
    "count_held_keys",
]

# Channel of staff reveals (inventory.staff_access); every other channel is the buyer's.
STAFF_REVEAL_CHANNEL = "staff"
# A key is only sold while it stays redeemable for at least this long: a buyer must have time to use it.
SALE_MARGIN = dt.timedelta(days=1)
_CHUNK = 2000
_LOOKUP_CHUNK = 500

ProgressCallback = Callable[[int, int], None]


class OutOfStock(DomainError):
    code = "sold_out"


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


def _sellable(now: dt.datetime):  # type: ignore[no-untyped-def]
    """SQL condition for 'this available key may be handed to a buyer now'. The one definition of it.
    A key reported leaked is never sold, whatever its status says."""
    return (CardKey.status == CardKeyStatus.AVAILABLE) & CardKey.leaked_at.is_(None) & or_(
        CardKey.expires_at.is_(None), CardKey.expires_at > now + SALE_MARGIN
    )


# ---------------------------------------------------------------- counting

async def available_counts(
    *, session: AsyncSession, sku_ids: Sequence[int], now: dt.datetime | None = None
) -> dict[int, int]:
    """Live sellable stock per SKU."""
    if not sku_ids:
        return {}
    now = now or utcnow()
    stmt = (
        select(CardKey.sku_id, func.count())
        .where(CardKey.sku_id.in_(sku_ids), _sellable(now))
        .group_by(CardKey.sku_id)
    )
    return {sku_id: count for sku_id, count in (await session.execute(stmt)).all()}


async def stock_summary(*, session: AsyncSession, sku_id: int, now: dt.datetime | None = None) -> StockSummary:
    """Counts by status for the operator; 'expired' are available keys too close to expiry to sell."""
    now = now or utcnow()
    rows = await session.execute(
        select(CardKey.status, func.count()).where(CardKey.sku_id == sku_id).group_by(CardKey.status)
    )
    by_status = dict(rows.all())
    sellable = (await available_counts(session=session, sku_ids=[sku_id], now=now)).get(sku_id, 0)
    return StockSummary(
        sku_id=sku_id,
        available=sellable,
        reserved=by_status.get(CardKeyStatus.RESERVED, 0),
        sold=by_status.get(CardKeyStatus.SOLD, 0),
        voided=by_status.get(CardKeyStatus.VOIDED, 0),
        expired=by_status.get(CardKeyStatus.AVAILABLE, 0) - sellable,
    )


async def sku_has_history(*, session: AsyncSession, sku_id: int) -> bool:
    """True once a SKU has had any card key or import batch (so deleting it would lose records)."""
    for model in (CardKey, ImportBatch):
        if await session.scalar(select(model.id).where(model.sku_id == sku_id).limit(1)) is not None:
            return True
    return False


# ---------------------------------------------------------------- import

def _problems(items: list[tuple[int, str]]) -> list[LineProblem]:
    return [LineProblem(line=line, reason=reason) for line, reason in items[:MAX_REPORTED_LINES]]


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
    """Import a batch of card keys: normalize, dedupe by fingerprint, encrypt, store. All or nothing.
    `unit_cost_cents`: what one key cost the shop (the ledger's cost of goods when it sells), if known."""
    if sku.delivery_type is not DeliveryType.CARD_KEY:
        raise NotACardKeySku(f"SKU {sku.code} is delivered by {sku.delivery_type.value}, not card keys")
    now = now or utcnow()
    parsed = parse_card_keys(text, now=now)
    remember_codes(key.secret for key in parsed.keys)

    duplicates: list[tuple[int, str]] = []
    first_line: dict[bytes, int] = {}
    unique = []
    for key in parsed.keys:
        fingerprint = cipher.fingerprint(key.secret)
        if fingerprint in first_line:
            duplicates.append((key.line_no, f"duplicate of line {first_line[fingerprint]} in this file"))
            continue
        first_line[fingerprint] = key.line_no
        unique.append((key, fingerprint))

    existing: dict[bytes, int] = {}
    fingerprints = [fp for _, fp in unique]
    for start in range(0, len(fingerprints), _LOOKUP_CHUNK):
        chunk = fingerprints[start : start + _LOOKUP_CHUNK]
        rows = await session.execute(
            select(CardKey.fingerprint, CardKey.sku_id).where(CardKey.fingerprint.in_(chunk))
        )
        existing.update({fp: sku_id for fp, sku_id in rows.all()})
    fresh = []
    for key, fingerprint in unique:
        owner = existing.get(fingerprint)
        if owner is None:
            fresh.append((key, fingerprint))
        elif owner == sku.id:
            duplicates.append((key.line_no, "already in stock for this SKU"))
        else:
            duplicates.append((key.line_no, f"already in stock for another SKU (id {owner})"))
    duplicates.sort()

    report = ImportReport(
        batch_id=None, sku_id=sku.id, lines_read=parsed.lines_read, added=len(fresh),
        duplicates=len(duplicates), invalid=len(parsed.invalid),
        duplicate_lines=_problems(duplicates), invalid_lines=_problems(parsed.invalid),
        truncated=max(len(duplicates), len(parsed.invalid)) > MAX_REPORTED_LINES,
    )
    if not fresh:
        raise NothingImported("no new card keys in this file", report=report)

    batch = ImportBatch(
        sku_id=sku.id, source_name=source_name[:200], imported_by=imported_by[:64],
        added_count=len(fresh), duplicate_count=len(duplicates), invalid_count=len(parsed.invalid),
        created_at=now, unit_cost_cents=unit_cost_cents,
    )
    session.add(batch)
    await session.flush()

    total = len(fresh)
    for start in range(0, total, _CHUNK):
        rows = []
        for key, fingerprint in fresh[start : start + _CHUNK]:
            sealed = cipher.encrypt(key.secret, fingerprint=fingerprint)
            rows.append(
                {
                    "sku_id": sku.id, "batch_id": batch.id, "status": CardKeyStatus.AVAILABLE,
                    "fingerprint": fingerprint, "key_id": sealed.key_id, "ciphertext": sealed.ciphertext,
                    "expires_at": key.expires_at, "created_at": now,
                }
            )
        try:
            await session.execute(insert(CardKey), rows)
        except IntegrityError:
            # The unique fingerprint constraint caught a concurrent import of the same codes.
            raise ImportConflict("another import added some of these card keys at the same time; retry") from None
        if progress is not None:
            progress(min(start + _CHUNK, total), total)
    return report.model_copy(update={"batch_id": batch.id})


# ---------------------------------------------------------------- batches

async def get_batch(*, session: AsyncSession, batch_id: int, lock: bool = False) -> ImportBatch:
    stmt = select(ImportBatch).where(ImportBatch.id == batch_id)
    if lock:
        stmt = stmt.with_for_update()
    batch = await session.scalar(stmt)
    if batch is None:
        raise BatchNotFound(f"import batch {batch_id} does not exist")
    return batch


async def list_batches(*, session: AsyncSession, sku_id: int) -> Sequence[ImportBatch]:
    stmt = select(ImportBatch).where(ImportBatch.sku_id == sku_id).order_by(ImportBatch.id.desc())
    return (await session.scalars(stmt)).all()


async def void_batch(
    *, session: AsyncSession, batch_id: int, reason: str, now: dt.datetime | None = None
) -> ImportBatch:
    """Withdraw a batch's unsold keys (available and reserved); sold keys stay with their orders."""
    now = now or utcnow()
    # Batch row lock: two operators voiding at once void once.
    batch = await get_batch(session=session, batch_id=batch_id, lock=True)
    if batch.voided_at is not None:
        raise BatchAlreadyVoided(f"import batch {batch_id} was already voided")
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


# ---------------------------------------------------------------- reservation and delivery

def _buyer_revealed():  # type: ignore[no-untyped-def]
    """SQL condition 'the buyer has seen this key'. Staff reveals (support, leak checks) do not count."""
    return (
        select(KeyReveal.id)
        .where(KeyReveal.card_key_id == CardKey.id, KeyReveal.channel != STAFF_REVEAL_CHANNEL)
        .exists()
    )


async def _lock_sellable(session: AsyncSession, *, sku_id: int, quantity: int, now: dt.datetime) -> list[int]:
    # SKIP LOCKED: concurrent buyers each take different free rows instead of queueing on the same ones;
    # a row another transaction holds is not free for us anyway. Soonest-expiring keys are sold first.
    stmt = (
        select(CardKey.id)
        .where(CardKey.sku_id == sku_id, _sellable(now))
        .order_by(CardKey.expires_at.asc().nulls_last(), CardKey.id)
        .limit(quantity)
        .with_for_update(skip_locked=True)
    )
    return list((await session.scalars(stmt)).all())


async def lock_card_keys_for_sale(
    *, session: AsyncSession, sku_id: int, quantity: int, now: dt.datetime | None = None
) -> list[int]:
    """Lock up to `quantity` sellable keys of a SKU until the transaction ends; fewer (maybe none) when stock is
    short. Checkout locks before it writes anything, so a sold-out checkout costs one SELECT and no writes."""
    return await _lock_sellable(session, sku_id=sku_id, quantity=quantity, now=now or utcnow())


async def reserve_card_keys(
    *, session: AsyncSession, key_ids: Sequence[int], order_id: int, now: dt.datetime | None = None
) -> None:
    """Hold keys locked by `lock_card_keys_for_sale` (same transaction) for a new order."""
    await session.execute(
        update(CardKey)
        .where(CardKey.id.in_(key_ids))
        .values(status=CardKeyStatus.RESERVED, order_id=order_id, reserved_at=now or utcnow())
    )


async def release_card_keys(*, session: AsyncSession, order_id: int) -> int:
    """Return an order's reserved (never sold) keys to stock. Caller holds the order row lock."""
    result = await session.execute(
        update(CardKey)
        .where(CardKey.order_id == order_id, CardKey.status == CardKeyStatus.RESERVED)
        .values(status=CardKeyStatus.AVAILABLE, order_id=None, reserved_at=None)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


async def deliver_card_keys(
    *, session: AsyncSession, sku_id: int, order_id: int, quantity: int, now: dt.datetime | None = None
) -> list[int]:
    """Hand `quantity` keys to a paid order: its reserved keys, topped up from free stock if some were
    released (late payment) or voided. Raises OutOfStock having changed nothing. Caller holds the order lock."""
    now = now or utcnow()
    held = list(
        (
            await session.scalars(
                select(CardKey.id)
                .where(CardKey.order_id == order_id, CardKey.status == CardKeyStatus.RESERVED)
                .order_by(CardKey.id)
                .with_for_update()
            )
        ).all()
    )[:quantity]
    missing = quantity - len(held)
    extra = await _lock_sellable(session, sku_id=sku_id, quantity=missing, now=now) if missing else []
    if len(extra) < missing:
        raise OutOfStock("not enough stock to deliver", available=len(held) + len(extra), requested=quantity)
    ids = held + extra
    await session.execute(
        update(CardKey)
        .where(CardKey.id.in_(ids))
        .values(status=CardKeyStatus.SOLD, order_id=order_id, sold_at=now)
    )
    return ids


async def count_order_keys(*, session: AsyncSession, order_id: int) -> int:
    return int(
        await session.scalar(
            select(func.count()).where(CardKey.order_id == order_id, CardKey.status == CardKeyStatus.SOLD)
        )
        or 0
    )


async def withdrawable_keys(*, session: AsyncSession, order_id: int) -> tuple[int, int]:
    """(sold keys the buyer still holds, how many of them were never revealed) for a delivered order."""
    revealed = _buyer_revealed()
    rows = await session.execute(
        select(revealed, func.count())
        .where(CardKey.order_id == order_id, CardKey.status == CardKeyStatus.SOLD)
        .group_by(revealed)
    )
    counts = {bool(was_revealed): int(n) for was_revealed, n in rows.all()}
    return counts.get(True, 0) + counts.get(False, 0), counts.get(False, 0)


async def withdraw_card_keys(
    *, session: AsyncSession, order_id: int, quantity: int, include_revealed: bool, now: dt.datetime | None = None
) -> list[int]:
    """Take `quantity` sold keys back from an order for a refund: never-revealed keys first (newest id first
    among equals), revealed ones only when allowed. They become REFUNDED: never resold, never revealed again.
    Raises OutOfStock having changed nothing. Caller holds the order row lock."""
    now = now or utcnow()
    revealed = _buyer_revealed()
    stmt = select(CardKey.id, revealed).where(CardKey.order_id == order_id, CardKey.status == CardKeyStatus.SOLD)
    if not include_revealed:
        stmt = stmt.where(~revealed)
    # Locked in id order like every other key writer; the order row lock already serializes us.
    rows = (await session.execute(stmt.order_by(CardKey.id).with_for_update(of=CardKey))).all()
    rows.sort(key=lambda row: (bool(row[1]), -row[0]))
    ids = sorted(row[0] for row in rows[:quantity])
    if len(ids) < quantity:
        raise OutOfStock("not enough card keys can be withdrawn", available=len(ids), requested=quantity)
    await session.execute(
        update(CardKey).where(CardKey.id.in_(ids)).values(status=CardKeyStatus.REFUNDED, voided_at=now)
    )
    return ids


async def reveal_card_keys(
    *,
    session: AsyncSession,
    cipher: CardKeyCipher,
    order_id: int,
    channel: str,
    ip: str,
    user_agent: str,
    now: dt.datetime | None = None,
) -> list[RevealedKey]:
    """Decrypt an order's delivered keys for its buyer, writing one audit row per key shown."""
    now = now or utcnow()
    keys = (
        await session.scalars(
            select(CardKey)
            .where(CardKey.order_id == order_id, CardKey.status == CardKeyStatus.SOLD)
            .order_by(CardKey.id)
        )
    ).all()
    revealed = []
    for key in keys:
        secret = cipher.decrypt(EncryptedCode(key.key_id, key.ciphertext), fingerprint=key.fingerprint)
        remember_codes([secret])
        card_no, code = split_secret(secret)
        revealed.append(RevealedKey(card_no=card_no, code=code, expires_at=key.expires_at))
    if keys:
        await session.execute(
            insert(KeyReveal),
            [
                {"card_key_id": key.id, "order_id": order_id, "revealed_at": now, "channel": channel[:16],
                 "ip": ip[:64], "user_agent": user_agent[:512]}
                for key in keys
            ],
        )
    return revealed


# ---------------------------------------------------------------- codes bought from suppliers

async def receive_supplier_codes(
    *,
    session: AsyncSession,
    cipher: CardKeyCipher,
    sku_id: int,
    order_id: int,
    codes: Sequence[tuple[str, dt.datetime | None]],
    source_name: str,
    imported_by: str,
    now: dt.datetime | None = None,
) -> tuple[int | None, int, int]:
    """Store codes a supplier sold us for one paid order, encrypted, held (reserved) for that order, in a batch
    named after the purchase so a leaked code traces back to it. Returns (batch id, stored, duplicates).

    A code whose fingerprint we already hold (sold, in stock, or sent twice in this answer) is not stored and
    never delivered twice; the caller records the count against the supplier. Caller holds the order lock."""
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
    batch = ImportBatch(sku_id=sku_id, source_name=source_name[:200], imported_by=imported_by[:64],
                        added_count=len(new), duplicate_count=duplicates, created_at=now)
    session.add(batch)
    await session.flush()
    rows = []
    for fingerprint, (secret, expires_at) in new.items():
        sealed = cipher.encrypt(secret, fingerprint=fingerprint)
        rows.append({"sku_id": sku_id, "batch_id": batch.id, "status": CardKeyStatus.RESERVED, "order_id": order_id,
                     "reserved_at": now, "fingerprint": fingerprint, "key_id": sealed.key_id,
                     "ciphertext": sealed.ciphertext, "expires_at": expires_at, "created_at": now})
    # A concurrent import of the same code would violate the unique fingerprint and roll the whole
    # transaction back: the caller's attempt stays open and is resolved again (nothing delivered twice).
    await session.execute(insert(CardKey), rows)
    return batch.id, len(new), duplicates


def _supplier_secret(raw: str) -> str:
    """A supplier's code as we store imported ones: "CARDNO PASSWORD" (space, tab or ----) becomes card number +
    password, so the buyer sees both fields and the fingerprint matches the same card imported from a file."""
    text = unicodedata.normalize("NFKC", raw).strip()
    parts = [p for p in re.split(r"----|\t| +", text) if p]
    return SEPARATOR.join(parts) if len(parts) == 2 else text


async def set_batch_unit_cost(*, session: AsyncSession, batch_id: int, unit_cost_cents: int) -> None:
    """What one key of this batch cost the shop, once known (supplier codes that went on sale)."""
    await session.execute(update(ImportBatch).where(ImportBatch.id == batch_id)
                          .values(unit_cost_cents=unit_cost_cents))


async def count_held_keys(*, session: AsyncSession, order_id: int) -> int:
    """Keys reserved for an order and not yet delivered (paid orders waiting for suppliers hold them too)."""
    return int(await session.scalar(
        select(func.count()).where(CardKey.order_id == order_id, CardKey.status == CardKeyStatus.RESERVED)) or 0)
