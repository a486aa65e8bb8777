"""Card-key stock (卡密库存): count, reserve, deliver, release, withdraw and reveal; intake (import, supplier
codes, void) is in intake.py and re-exported here.

Locking rule for the whole shop: a transaction that touches an order's keys locks the order row first
(orders.service does), then the keys in id order. Allocation from free stock uses FOR UPDATE SKIP LOCKED,
which never waits, so it cannot deadlock. On SQLite the clauses are not rendered; there every write
transaction holds the database's single writer lock from BEGIN IMMEDIATE (see quanyi.db).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any, Protocol

from sqlalchemy import Integer, Select, bindparam, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.orm.util import identity_key

from quanyi import sqlite_trip
from quanyi.db import UTCDateTime, utcnow
from quanyi.errors import DomainError
from quanyi.inventory import shared_codes
from quanyi.inventory.crypto import CardKeyCipher, EncryptedCode
from quanyi.inventory.intake import (
    BatchAlreadyVoided,
    BatchNotFound,
    ImportConflict,
    NotACardKeySku,
    NothingImported,
    SharedCodeBatch,
    get_batch,
    import_card_keys,
    list_batches,
    receive_supplier_codes,
    set_batch_unit_cost,
    void_batch,
)
from quanyi.inventory.masking import remember_codes
from quanyi.inventory.models import CardKey, CardKeyStatus, KeyReveal
from quanyi.inventory.parsing import split_secret
from quanyi.inventory.schemas import (
    RevealedKey,
    StockSummary,
)
from quanyi.inventory.sold_out import stock_returned

__all__ = [
    "OutOfStock", "NotACardKeySku", "NothingImported", "ImportConflict", "BatchNotFound", "BatchAlreadyVoided",
    "SharedCodeBatch", "SALE_MARGIN", "available_counts", "stock_summary", "import_card_keys", "void_batch",
    "list_batches", "get_batch", "lock_card_keys_for_sale", "reserve_card_keys", "reserve_step", "keys_reserved",
    "release_card_keys",
    "deliver_card_keys", "sellable_keys_query", "return_withdrawn_keys",
    "reveal_card_keys", "decrypt_for_buyer", "reveal_audit_rows",
    "count_order_keys", "withdrawable_keys", "withdraw_card_keys", "receive_supplier_codes",
    "count_held_keys", "set_batch_unit_cost", "list_order_reveals", "list_order_keys", "stock_returned",
]

# Channel of staff reveals (inventory.staff_access); every other channel is the buyer's.
STAFF_REVEAL_CHANNEL = "staff"
# A key is only sold while it stays redeemable for at least this long: a buyer must have time to use it.
SALE_MARGIN = dt.timedelta(days=1)


class OutOfStock(DomainError):
    code = "sold_out"


def _sellable(now: dt.datetime):  # type: ignore[no-untyped-def]
    """SQL condition for 'this available key may be handed to a buyer now'. The one definition of it.
    A key reported leaked is never sold, whatever its status says."""
    return _sellable_if_valid_after(now + SALE_MARGIN)


def _sellable_if_valid_after(cutoff):  # type: ignore[no-untyped-def]
    """`_sellable`, given `now + SALE_MARGIN` (a value or a bind parameter)."""
    return (CardKey.status == CardKeyStatus.AVAILABLE) & CardKey.leaked_at.is_(None) & or_(
        CardKey.expires_at.is_(None), CardKey.expires_at > cutoff
    )


# ---------------------------------------------------------------- counting

async def available_counts(
    *, session: AsyncSession, sku_ids: Sequence[int], now: dt.datetime | None = None
) -> dict[int, int]:
    """Live sellable stock per SKU: available card keys, plus what 循环卡密 codes may still sell."""
    if not sku_ids:
        return {}
    now = now or utcnow()
    stmt = (
        select(CardKey.sku_id, func.count())
        .where(CardKey.sku_id.in_(sku_ids), _sellable(now))
        .group_by(CardKey.sku_id)
    )
    counts = {sku_id: count for sku_id, count in (await session.execute(stmt)).all()}
    for sku_id, left in (await shared_codes.capacity(session=session, sku_ids=sku_ids, now=now)).items():
        counts[sku_id] = counts.get(sku_id, 0) + left
    return counts


async def stock_summary(*, session: AsyncSession, sku_id: int, now: dt.datetime | None = None) -> StockSummary:
    """Counts by status for the operator; 'expired' are available keys too close to expiry to sell. A 循环卡密
    code's units (one key row sold many times) are counted by `shared_codes.unit_counts`, not by its row."""
    now = now or utcnow()
    rows = await session.execute(
        select(CardKey.status, func.count()).where(CardKey.sku_id == sku_id).group_by(CardKey.status)
    )
    by_status = dict(rows.all())
    sellable = await session.scalar(select(func.count()).where(CardKey.sku_id == sku_id, _sellable(now))) or 0
    shared = await shared_codes.unit_counts(session=session, sku_id=sku_id, now=now)
    return StockSummary(
        sku_id=sku_id,
        available=sellable + shared.available,
        reserved=by_status.get(CardKeyStatus.RESERVED, 0) + shared.reserved,
        sold=by_status.get(CardKeyStatus.SOLD, 0) + shared.sold,
        voided=by_status.get(CardKeyStatus.VOIDED, 0) + shared.voided,
        expired=by_status.get(CardKeyStatus.AVAILABLE, 0) - sellable + shared.expired,
    )


# ---------------------------------------------------------------- reservation and delivery

def _buyer_revealed():  # type: ignore[no-untyped-def]
    """SQL condition 'the buyer has seen this key'. Staff reveals (support, leak checks) do not count."""
    return (
        select(KeyReveal.id)
        .where(KeyReveal.card_key_id == CardKey.id, KeyReveal.channel != STAFF_REVEAL_CHANNEL)
        .exists()
    )


def sellable_keys_query(*, sku_id: int, quantity: int, now: dt.datetime) -> Select[tuple[int]]:
    """SELECT the ids of up to `quantity` keys to sell now, locking them: the one definition of which keys a sale
    takes (also run inside orders.one_statement's checkout statement)."""
    # SKIP LOCKED: concurrent buyers each take different free rows instead of queueing on the same ones;
    # a row another transaction holds is not free for us anyway. Soonest-expiring keys are sold first.
    return _sellable_keys(sku_id, quantity, _sellable(now))


def _sellable_keys(sku_id, quantity, sellable) -> Select[tuple[int]]:  # type: ignore[no-untyped-def]
    return (
        select(CardKey.id)
        .where(CardKey.sku_id == sku_id, sellable)
        .order_by(CardKey.expires_at.asc().nulls_last(), CardKey.id)
        .limit(quantity)
        .with_for_update(skip_locked=True)
    )


# Built once (bind names prefixed `b_`: an UPDATE adds a parameter named like a column to its SET): a statement
# built per call costs its construction and cache key on every checkout.
_LOCK_SELLABLE = _sellable_keys(bindparam("b_sku_id", type_=Integer), bindparam("b_quantity", type_=Integer),
                                _sellable_if_valid_after(bindparam("b_cutoff", type_=UTCDateTime)))
_RESERVE = (update(CardKey.__table__).where(CardKey.__table__.c.id.in_(bindparam("b_ids", expanding=True)))
            .values(status=CardKeyStatus.RESERVED.value, order_id=bindparam("b_order_id", type_=Integer),
                    reserved_at=bindparam("b_now", type_=UTCDateTime)))


async def _core_connection(session: AsyncSession) -> AsyncConnection:
    """The session's connection for a statement built once (no ORM execution layer); pending ORM changes are
    flushed first, as `session.execute` would."""
    if session.new or session.dirty or session.deleted:
        await session.flush()
    return await session.connection()


async def _lock_sellable(session: AsyncSession, *, sku_id: int, quantity: int, now: dt.datetime) -> list[int]:
    result = await (await _core_connection(session)).execute(
        _LOCK_SELLABLE, {"b_sku_id": sku_id, "b_quantity": quantity, "b_cutoff": now + SALE_MARGIN})
    return list(result.scalars().all())


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
    await (await _core_connection(session)).execute(
        _RESERVE, {"b_ids": list(key_ids), "b_order_id": order_id, "b_now": now or utcnow()})
    keys_reserved(session=session, key_ids=key_ids)


def reserve_step(*, key_ids: Sequence[int], order_id: Any, now: dt.datetime) -> sqlite_trip.Step:
    """`reserve_card_keys` as a step of a trip to SQLite's thread (quanyi.sqlite_trip; `order_id` may be a
    `sqlite_trip.Returned`); call `keys_reserved` once the trip is back."""
    return sqlite_trip.Step(_RESERVE, {"b_ids": list(key_ids), "b_order_id": order_id, "b_now": now})


def keys_reserved(*, session: AsyncSession, key_ids: Sequence[int]) -> None:
    """The keys were reserved behind the ORM's back: a key object this session holds loads again when used."""
    for key_id in key_ids:
        held = session.identity_map.get(identity_key(CardKey, key_id))
        if held is not None:
            session.expire(held)


async def release_card_keys(*, session: AsyncSession, order_id: int) -> int:
    """Return an order's reserved (never sold) keys to stock. Caller holds the order row lock."""
    result = await session.execute(
        update(CardKey)
        .where(CardKey.order_id == order_id, CardKey.status == CardKeyStatus.RESERVED)
        .values(status=CardKeyStatus.AVAILABLE, order_id=None, reserved_at=None)
    )
    released = int(result.rowcount or 0)  # type: ignore[attr-defined]
    released += await shared_codes.release_uses(session=session, order_id=order_id)  # 循环卡密 units back
    if released:
        stock_returned(session)  # the stock gate sells again once this commits
    return released


async def deliver_card_keys(
    *, session: AsyncSession, sku_id: int, order_id: int, quantity: int, now: dt.datetime | None = None
) -> list[int]:
    """Hand `quantity` keys to a paid order: its reserved keys, topped up from free stock if some were
    released (late payment) or voided. Raises OutOfStock having changed nothing. Caller holds the order lock."""
    now = now or utcnow()
    # The order's reserved keys, locked in id order and sold in one statement (the usual case: all of them).
    reserved = (select(CardKey.id).where(CardKey.order_id == order_id, CardKey.status == CardKeyStatus.RESERVED)
                .order_by(CardKey.id).limit(quantity).with_for_update().scalar_subquery())
    held = sorted((await session.scalars(
        update(CardKey).where(CardKey.id.in_(reserved)).values(status=CardKeyStatus.SOLD, sold_at=now)
        .returning(CardKey.id).execution_options(synchronize_session=False))).all())
    missing = quantity - len(held)
    if not missing:
        return held
    extra = await _lock_sellable(session, sku_id=sku_id, quantity=missing, now=now)
    if len(extra) < missing:
        # Change nothing after all: the held keys go back to reserved, as the caller found them.
        await session.execute(update(CardKey).where(CardKey.id.in_(held))
                              .values(status=CardKeyStatus.RESERVED, sold_at=None)
                              .execution_options(synchronize_session=False))
        raise OutOfStock("not enough stock to deliver", available=len(held) + len(extra), requested=quantity)
    await session.execute(
        update(CardKey)
        .where(CardKey.id.in_(extra))
        .values(status=CardKeyStatus.SOLD, order_id=order_id, sold_at=now)
    )
    return held + extra


async def count_order_keys(*, session: AsyncSession, order_id: int) -> int:
    """Codes a delivered order can reveal (its sold card keys, or its 循环卡密 shared code)."""
    own = int(
        await session.scalar(
            select(func.count()).where(CardKey.order_id == order_id, CardKey.status == CardKeyStatus.SOLD)
        )
        or 0
    )
    return own or len(await shared_codes.order_shared_keys(session=session, order_id=order_id))


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
    # Locked in id order like every other key writer; the order row lock already serializes us. Which of them the
    # buyer has seen is read in a second statement, under the locks: a reveal committed while we waited for one is
    # seen then (PostgreSQL re-checks only the locked row, so a subquery in the locking statement could miss it).
    held = (await session.scalars(select(CardKey.id).where(CardKey.order_id == order_id,
                                                           CardKey.status == CardKeyStatus.SOLD)
                                  .order_by(CardKey.id).with_for_update())).all()
    revealed = _buyer_revealed()
    rows = list((await session.execute(select(CardKey.id, revealed).where(CardKey.id.in_(held)))).all()) if held else []
    if not include_revealed:
        rows = [row for row in rows if not row[1]]
    rows.sort(key=lambda row: (bool(row[1]), -row[0]))
    ids = sorted(row[0] for row in rows[:quantity])
    if len(ids) < quantity:
        raise OutOfStock("not enough card keys can be withdrawn", available=len(ids), requested=quantity)
    await session.execute(
        update(CardKey).where(CardKey.id.in_(ids)).values(status=CardKeyStatus.REFUNDED, voided_at=now)
    )
    return ids


async def return_withdrawn_keys(*, session: AsyncSession, order_id: int, key_ids: Sequence[int]) -> int:
    """A refund that took these keys back was withdrawn (the gateway refused it and the buyer is not refunded):
    they are the buyer's again, sold to the same order. Only keys still REFUNDED for that order move (a REFUNDED key
    is never resold, so none can be anyone else's). Returns how many. Caller holds the order row lock."""
    if not key_ids:
        return 0
    result = await session.execute(
        update(CardKey).where(CardKey.id.in_(sorted(key_ids)), CardKey.order_id == order_id,
                              CardKey.status == CardKeyStatus.REFUNDED)
        .values(status=CardKeyStatus.SOLD, voided_at=None).execution_options(synchronize_session=False))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


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
    if not keys:  # 循环卡密: the shared code this order bought, audited like any other reveal
        keys = await shared_codes.order_shared_keys(session=session, order_id=order_id)
    revealed = decrypt_for_buyer(cipher, keys)
    if keys:
        await session.execute(insert(KeyReveal), reveal_audit_rows([key.id for key in keys], order_id=order_id,
                                                                   now=now, channel=channel, ip=ip,
                                                                   user_agent=user_agent))
    return revealed


class SealedKey(Protocol):
    """What decrypting a card key needs (a `CardKey`, or a row with these columns)."""
    key_id: str
    ciphertext: bytes
    fingerprint: bytes
    expires_at: dt.datetime | None


def decrypt_for_buyer(cipher: CardKeyCipher, keys: Sequence[SealedKey]) -> list[RevealedKey]:
    """The plaintext of keys shown to their buyer (remembered for log redaction); the caller writes the audit rows
    (`reveal_audit_rows`) in the same transaction."""
    revealed = []
    for key in keys:
        secret = cipher.decrypt(EncryptedCode(key.key_id, key.ciphertext), fingerprint=key.fingerprint)
        remember_codes([secret])
        card_no, code = split_secret(secret)
        revealed.append(RevealedKey(card_no=card_no, code=code, expires_at=key.expires_at))
    return revealed


def reveal_audit_rows(card_key_ids: Sequence[int], *, order_id: int, now: dt.datetime, channel: str, ip: str,
                      user_agent: str) -> list[dict[str, object]]:
    """The audit rows (inventory_key_reveal) of one reveal: one per key shown."""
    return [{"card_key_id": key_id, "order_id": order_id, "revealed_at": now, "channel": channel[:16],
             "ip": ip[:64], "user_agent": user_agent[:512]} for key_id in card_key_ids]


async def count_held_keys(*, session: AsyncSession, order_id: int) -> int:
    """Keys reserved for an order and not yet delivered (paid orders waiting for suppliers hold them too)."""
    return int(await session.scalar(
        select(func.count()).where(CardKey.order_id == order_id, CardKey.status == CardKeyStatus.RESERVED)) or 0)


async def list_order_keys(*, session: AsyncSession, order_id: int) -> list[CardKey]:
    """The card keys an order holds or held (any status), oldest first: for staff, never with plaintext."""
    return list((await session.scalars(select(CardKey).where(CardKey.order_id == order_id)
                                       .order_by(CardKey.id))).all())


async def list_order_reveals(*, session: AsyncSession, order_id: int) -> list[KeyReveal]:
    """Every time someone was shown a key of this order (the buyer or staff), oldest first."""
    return list((await session.scalars(select(KeyReveal).where(KeyReveal.order_id == order_id)
                                       .order_by(KeyReveal.id))).all())
