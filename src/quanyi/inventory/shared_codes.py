"""循环卡密 (shared codes): one code - a shared account, a universal redeem code - sold to many buyers, each code
with its own sale counter and limit.

The code is stored like any card key (a CardKey row of status `shared`: encrypted, fingerprinted, found by leak
tracing, rotated with the keyring) and every buyer's reveal is written to the reveal log. The counter is the
`inventory_shared_code.sold_count` column: a checkout claims its units with one conditional UPDATE
(`sold_count + q <= sale_limit`), which PostgreSQL re-checks on the newest row version after waiting for a
concurrent claim (SQLite: the writer lock serializes checkouts), so the limit is never passed; a CHECK constraint
refuses anything past it as the last line of defence. An unpaid order's units come back when it is cancelled.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import and_, case, exists, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from quanyi.db import utcnow
from quanyi.errors import Conflict, InvalidInput, NotFound
from quanyi.inventory.crypto import CardKeyCipher, EncryptedCode
from quanyi.inventory.masking import mask_code, remember_codes
from quanyi.inventory.models import CardKey, CardKeyStatus, ImportBatch, SharedCode, SharedCodeUse
from quanyi.inventory.parsing import _parse_line, normalize_code_text, split_secret
from quanyi.scope import PLATFORM, Scope
from quanyi.shoptime import zone_of

__all__ = ["SharedCodeNotFound", "SharedCodeInvalid", "SharedCodeKnown", "SharedCodeView", "SharedUnits",
           "add_shared_code", "change_shared_code", "list_shared_codes", "capacity", "unit_counts",
           "shared_code_batch_ids", "stop_codes_of_keys", "claim", "record_use", "release_uses", "deliver_use",
           "order_shared_keys", "MAX_SALE_LIMIT"]

MAX_SALE_LIMIT = 1_000_000
USE_RESERVED, USE_SOLD, USE_RELEASED = "reserved", "sold", "released"
SALE_MARGIN = dt.timedelta(days=1)  # like card keys: not sold in its last day


class SharedCodeNotFound(NotFound):
    code = "shared_code_not_found"


class SharedCodeInvalid(InvalidInput):
    code = "shared_code_invalid"


class SharedCodeKnown(Conflict):
    code = "shared_code_known"


@dataclass(frozen=True, slots=True)
class SharedCodeView:
    id: int
    masked: str
    sale_limit: int
    sold_count: int
    active: bool
    leaked: bool
    created_by: str
    created_at: dt.datetime


@dataclass(frozen=True, slots=True)
class SharedUnits:
    """A SKU's shared-code units, in the stock page's words."""
    available: int = 0
    reserved: int = 0
    sold: int = 0
    voided: int = 0
    expired: int = 0


def _code_usable(now: dt.datetime):  # type: ignore[no-untyped-def]
    """The shared code's key is not reported leaked and not about to expire."""
    return exists().where(CardKey.id == SharedCode.card_key_id, CardKey.leaked_at.is_(None),
                          or_(CardKey.expires_at.is_(None), CardKey.expires_at > now + SALE_MARGIN))


def _check_limit(sale_limit: int) -> int:
    if not 1 <= sale_limit <= MAX_SALE_LIMIT:
        raise SharedCodeInvalid(f"the sale limit must be between 1 and {MAX_SALE_LIMIT}", field="sale_limit")
    return sale_limit


async def add_shared_code(*, session: AsyncSession, cipher: CardKeyCipher, sku_id: int, merchant_id: int,
                          text: str, sale_limit: int, actor: str, now: dt.datetime | None = None) -> SharedCode:
    """Store a shared code for a 循环卡密 SKU (the caller checked the SKU and its scope): one line like an import
    line (`code`, or `card_no,password`, optionally an expiry date). A code the shop already holds is refused."""
    now = now or utcnow()
    _check_limit(sale_limit)
    try:
        secret, expires_at = _parse_line(normalize_code_text(text), now, zone_of(session))
    except ValueError as exc:
        raise SharedCodeInvalid(f"not a valid code: {exc}", field="code") from None
    remember_codes([secret])  # masked in every log line from now on
    fingerprint = cipher.fingerprint(secret)
    if await session.scalar(select(CardKey.id).where(CardKey.fingerprint == fingerprint)) is not None:
        raise SharedCodeKnown("this code is already in the shop (as a card key or a shared code)", field="code")
    batch = ImportBatch(sku_id=sku_id, merchant_id=merchant_id, source_name="shared code", imported_by=actor[:64],
                        added_count=1, created_at=now)
    session.add(batch)
    await session.flush()
    sealed = cipher.encrypt(secret, fingerprint=fingerprint)
    key = CardKey(sku_id=sku_id, merchant_id=merchant_id, batch_id=batch.id, status=CardKeyStatus.SHARED,
                  fingerprint=fingerprint, key_id=sealed.key_id, ciphertext=sealed.ciphertext, expires_at=expires_at,
                  created_at=now)
    session.add(key)
    await session.flush()
    code = SharedCode(sku_id=sku_id, merchant_id=merchant_id, card_key_id=key.id, sale_limit=sale_limit, sold_count=0,
                      active=True, created_by=actor[:64], created_at=now)
    session.add(code)
    await session.flush()
    return code


async def change_shared_code(*, session: AsyncSession, sku_id: int, shared_code_id: int,
                             sale_limit: int | None = None, active: bool | None = None,
                             scope: Scope = PLATFORM) -> SharedCode:
    """Raise or lower a code's sale limit (never below what is sold or held) or stop/resume selling it."""
    code = await session.scalar(select(SharedCode).where(SharedCode.id == shared_code_id, SharedCode.sku_id == sku_id)
                                .with_for_update().execution_options(populate_existing=True))
    if code is None or not scope.sees(code.merchant_id):
        raise SharedCodeNotFound(f"shared code {shared_code_id} does not exist")
    if sale_limit is not None:
        if _check_limit(sale_limit) < code.sold_count:
            raise SharedCodeInvalid(f"{code.sold_count} units are already sold or held: the limit cannot be lower",
                                    field="sale_limit", sold_count=code.sold_count)
        code.sale_limit = sale_limit
    if active is not None:
        code.active = active
    await session.flush()
    return code


async def list_shared_codes(*, session: AsyncSession, cipher: CardKeyCipher, sku_id: int) -> list[SharedCodeView]:
    """A SKU's shared codes with their counters, codes masked (first and last 2 characters)."""
    rows = (await session.execute(select(SharedCode, CardKey).join(CardKey, CardKey.id == SharedCode.card_key_id)
                                  .where(SharedCode.sku_id == sku_id).order_by(SharedCode.id))).all()
    views = []
    for code, key in rows:
        secret = cipher.decrypt(EncryptedCode(key.key_id, key.ciphertext), fingerprint=key.fingerprint)
        remember_codes([secret])
        card_no, plain = split_secret(secret)
        masked = (f"{mask_code(card_no)} / " if card_no else "") + mask_code(plain)
        views.append(SharedCodeView(id=code.id, masked=masked,
                                    sale_limit=code.sale_limit, sold_count=code.sold_count, active=code.active,
                                    leaked=key.leaked_at is not None, created_by=code.created_by,
                                    created_at=code.created_at))
    return views


async def capacity(*, session: AsyncSession, sku_ids: Sequence[int], now: dt.datetime | None = None) -> dict[int, int]:
    """Units left to sell per 循环卡密 SKU: over its active, usable codes, limit minus sold-or-held."""
    if not sku_ids:
        return {}
    rows = await session.execute(
        select(SharedCode.sku_id, func.sum(SharedCode.sale_limit - SharedCode.sold_count))
        .where(SharedCode.sku_id.in_(sku_ids), SharedCode.active.is_(True), _code_usable(now or utcnow()))
        .group_by(SharedCode.sku_id))
    return {sku_id: int(left or 0) for sku_id, left in rows.all() if left}


async def unit_counts(*, session: AsyncSession, sku_id: int, now: dt.datetime | None = None) -> SharedUnits:
    """A 循环卡密 SKU's units for the stock page: left to sell (`capacity`), held by unpaid orders, sold (delivered),
    and the unsold rest of codes that will not sell any more: leaked (voided) or (about to be) expired. The one
    key row is sold many times, so these count units, never card-key rows."""
    now = now or utcnow()
    held = dict((await session.execute(
        select(SharedCodeUse.status, func.sum(SharedCodeUse.quantity))
        .join(SharedCode, SharedCode.id == SharedCodeUse.shared_code_id)
        .where(SharedCode.sku_id == sku_id, SharedCodeUse.status.in_([USE_RESERVED, USE_SOLD]))
        .group_by(SharedCodeUse.status))).all())
    left = SharedCode.sale_limit - SharedCode.sold_count  # >= 0: a CHECK constraint
    expiring = and_(CardKey.leaked_at.is_(None), CardKey.expires_at.is_not(None),
                    CardKey.expires_at <= now + SALE_MARGIN)
    voided, expired = (await session.execute(
        select(func.coalesce(func.sum(case((CardKey.leaked_at.is_not(None), left), else_=0)), 0),
               func.coalesce(func.sum(case((expiring, left), else_=0)), 0))
        .join_from(SharedCode, CardKey, CardKey.id == SharedCode.card_key_id)
        .where(SharedCode.sku_id == sku_id))).one()
    available = (await capacity(session=session, sku_ids=[sku_id], now=now)).get(sku_id, 0)
    return SharedUnits(available=available, reserved=int(held.get(USE_RESERVED) or 0),
                       sold=int(held.get(USE_SOLD) or 0), voided=int(voided), expired=int(expired))


async def shared_code_batch_ids(*, session: AsyncSession, batch_ids: Sequence[int]) -> set[int]:
    """Which of these batches hold a shared code (a batch of one code sold many times, no unsold keys to void)."""
    if not batch_ids:
        return set()
    return set((await session.scalars(select(CardKey.batch_id).where(
        CardKey.batch_id.in_(batch_ids), CardKey.status == CardKeyStatus.SHARED).distinct())).all())


async def stop_codes_of_keys(*, session: AsyncSession, card_key_ids: Sequence[int]) -> dict[int, int]:
    """Stop selling the shared codes among these card keys that still sell (a leak trace found them): shared code
    id -> card key id of those stopped. FOR UPDATE, not the UPDATE's weaker row lock: it conflicts with the FOR KEY
    SHARE a delivery takes (`_still_on_sale`), so a payment delivers before the stop commits or sees it stopped."""
    if not card_key_ids:
        return {}
    stopped = {code_id: key_id for code_id, key_id in (await session.execute(
        select(SharedCode.id, SharedCode.card_key_id)
        .where(SharedCode.card_key_id.in_(card_key_ids), SharedCode.active.is_(True))
        .order_by(SharedCode.id).with_for_update())).all()}
    if stopped:
        await session.execute(update(SharedCode).where(SharedCode.id.in_(list(stopped))).values(active=False)
                              .execution_options(synchronize_session=False))
    return stopped


async def claim(*, session: AsyncSession, sku_id: int, quantity: int, now: dt.datetime | None = None) -> int | None:
    """Take `quantity` units of one of the SKU's codes (the oldest with room) for a checkout; None when no code has
    room. One conditional UPDATE per try: PostgreSQL re-evaluates `sold_count + q <= sale_limit` on the row a
    concurrent claim just changed, so two checkouts can never both take the last units."""
    now = now or utcnow()
    for _ in range(20):  # a few codes per SKU at most; each failed try means another buyer took the room
        candidate = (select(SharedCode.id).where(
            SharedCode.sku_id == sku_id, SharedCode.active.is_(True),
            SharedCode.sold_count + quantity <= SharedCode.sale_limit, _code_usable(now))
            .order_by(SharedCode.id).limit(1).scalar_subquery())
        taken = await session.scalar(
            update(SharedCode)
            .where(and_(SharedCode.id == candidate, SharedCode.active.is_(True),
                        SharedCode.sold_count + quantity <= SharedCode.sale_limit))
            .values(sold_count=SharedCode.sold_count + quantity)
            .returning(SharedCode.id).execution_options(synchronize_session=False))
        if taken is not None:
            return int(taken)
        still_room = await session.scalar(select(SharedCode.id).where(
            SharedCode.sku_id == sku_id, SharedCode.active.is_(True),
            SharedCode.sold_count + quantity <= SharedCode.sale_limit, _code_usable(now)).limit(1))
        if still_room is None:
            return None
    return None


async def record_use(*, session: AsyncSession, shared_code_id: int, order_id: int, quantity: int,
                     now: dt.datetime | None = None, sold: bool = False) -> None:
    """The order holds the units `claim` took (same transaction)."""
    now = now or utcnow()
    session.add(SharedCodeUse(shared_code_id=shared_code_id, order_id=order_id, quantity=quantity,
                              status=USE_SOLD if sold else USE_RESERVED, created_at=now, sold_at=now if sold else None))
    await session.flush()


async def release_uses(*, session: AsyncSession, order_id: int) -> int:
    """An unpaid (or undeliverable) order gives its held units back to the counter. Caller holds the order lock."""
    use = await session.scalar(select(SharedCodeUse).where(SharedCodeUse.order_id == order_id,
                                                           SharedCodeUse.status == USE_RESERVED))
    if use is None:
        return 0
    await _release(session, use)
    return use.quantity


async def _release(session: AsyncSession, use: SharedCodeUse) -> None:
    await session.execute(update(SharedCode).where(SharedCode.id == use.shared_code_id)
                          .values(sold_count=SharedCode.sold_count - use.quantity)
                          .execution_options(synchronize_session=False))
    use.status = USE_RELEASED
    await session.flush()


async def _still_on_sale(session: AsyncSession, shared_code_id: int) -> bool:
    """The code an order holds units of is still handed over: not stopped, not reported leaked.
    FOR KEY SHARE: waits for a leak trace's or an operator's stop (FOR UPDATE) and then reads the stopped row;
    it does not wait for checkouts claiming units of the same code (their UPDATE takes a weaker lock)."""
    active, leaked_at = (await session.execute(
        select(SharedCode.active, CardKey.leaked_at).join(CardKey, CardKey.id == SharedCode.card_key_id)
        .where(SharedCode.id == shared_code_id)
        .with_for_update(read=True, key_share=True, of=SharedCode))).one()
    return bool(active) and leaked_at is None


async def deliver_use(*, session: AsyncSession, order_id: int, sku_id: int, quantity: int,
                      now: dt.datetime | None = None) -> None:
    """A paid 循环卡密 order gets its code: the units it holds become sold. An order whose units were released
    (paid late), or whose code was stopped or reported leaked since its checkout (its units go back: that code is
    never handed over again), claims units of another code on sale, or raises OutOfStock (it then waits for a
    refund). Caller holds the order lock."""
    from quanyi.inventory.service import OutOfStock

    now = now or utcnow()
    use = await session.scalar(select(SharedCodeUse).where(SharedCodeUse.order_id == order_id))
    if use is not None and use.status == USE_RESERVED:
        if await _still_on_sale(session, use.shared_code_id):
            use.status, use.sold_at = USE_SOLD, now
            await session.flush()
            return
        await _release(session, use)
    if use is not None and use.status == USE_SOLD:
        return
    shared_code_id = await claim(session=session, sku_id=sku_id, quantity=quantity, now=now)
    if shared_code_id is None:
        raise OutOfStock("the shared code's sale limit is reached", available=0, requested=quantity)
    if use is None:
        await record_use(session=session, shared_code_id=shared_code_id, order_id=order_id, quantity=quantity,
                         now=now, sold=True)
    else:
        use.shared_code_id, use.status, use.sold_at = shared_code_id, USE_SOLD, now
        await session.flush()


async def order_shared_keys(*, session: AsyncSession, order_id: int) -> list[CardKey]:
    """The shared code (as its CardKey row) a delivered order may reveal; [] for other orders."""
    return list((await session.scalars(
        select(CardKey).join(SharedCode, SharedCode.card_key_id == CardKey.id)
        .join(SharedCodeUse, SharedCodeUse.shared_code_id == SharedCode.id)
        .where(SharedCodeUse.order_id == order_id, SharedCodeUse.status == USE_SOLD))).all())
