"""自选卡密 (pick-your-key): the buyer chooses one specific card key of a SKU from a list showing only the label the
operator gave each key (never the code), and pays the SKU's surcharge for it.

Two buyers racing for the same key: exactly one gets it. Checkout locks the chosen row (FOR UPDATE, waiting for a
transaction that holds it; on SQLite the writer lock serializes checkouts) and re-reads that it is still sellable,
so the second checkout finds it reserved and is refused having written nothing. Delivery hands over exactly that
key (`deliver_picked_key`), never another one in its place.
"""

from __future__ import annotations

import datetime as dt
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from quanyi.db import utcnow
from quanyi.errors import Conflict, InvalidInput, NotFound
from quanyi.inventory.crypto import CardKeyCipher, EncryptedCode
from quanyi.inventory.masking import mask_code, remember_codes
from quanyi.inventory.models import CardKey, CardKeyStatus
from quanyi.inventory.parsing import split_secret
from quanyi.inventory.service import OutOfStock, _sellable
from quanyi.scope import PLATFORM, Scope

__all__ = ["PickableKey", "LabelledKey", "CardKeyTaken", "CardKeyNotFound", "LabelInvalid", "LABEL_MAX_LENGTH",
           "pickable_keys", "label_of", "lock_picked_key", "deliver_picked_key", "label_card_keys", "labelled_stock",
           "clean_label"]

LABEL_MAX_LENGTH = 100
PICK_LIST_LIMIT = 500


class CardKeyTaken(Conflict):
    """The picked key is gone: another buyer has it, or it was sold, voided or withdrawn."""

    code = "card_key_taken"


class CardKeyNotFound(NotFound):
    code = "card_key_not_found"


class LabelInvalid(InvalidInput):
    code = "label_invalid"


@dataclass(frozen=True, slots=True)
class PickableKey:
    id: int
    label: str


def clean_label(text: str) -> str | None:
    """A label as buyers will see it: NFKC, no control or invisible characters, one line; "" -> None."""
    label = unicodedata.normalize("NFKC", text or "")
    label = "".join(" " if c in "\r\n\t" else c for c in label
                    if unicodedata.category(c) not in ("Cc", "Cf", "Co", "Cn") or c in "\r\n\t").strip()
    if len(label) > LABEL_MAX_LENGTH:
        raise LabelInvalid(f"a label is at most {LABEL_MAX_LENGTH} characters", length=len(label))
    return label or None


def _pickable(sku_id: int, now: dt.datetime):  # type: ignore[no-untyped-def]
    return (CardKey.sku_id == sku_id) & _sellable(now) & CardKey.public_label.is_not(None)


async def pickable_keys(*, session: AsyncSession, sku_id: int, now: dt.datetime | None = None,
                        limit: int = PICK_LIST_LIMIT) -> list[PickableKey]:
    """The keys a buyer may pick now (sellable and labelled), by label: id and label only, never the code."""
    rows = await session.execute(
        select(CardKey.id, CardKey.public_label).where(_pickable(sku_id, now or utcnow()))
        .order_by(CardKey.public_label, CardKey.id).limit(limit))
    return [PickableKey(id=key_id, label=label) for key_id, label in rows.all()]


async def label_of(*, session: AsyncSession, card_key_id: int) -> str | None:
    """The label a picked key was chosen by (for the order's pages)."""
    return await session.scalar(select(CardKey.public_label).where(CardKey.id == card_key_id))


async def lock_picked_key(*, session: AsyncSession, sku_id: int, card_key_id: int,
                          now: dt.datetime | None = None) -> int:
    """Lock the picked key for this checkout (until the transaction ends) or raise CardKeyTaken.
    FOR UPDATE without SKIP LOCKED: a racing checkout waits for the first to finish and then sees the key
    reserved (PostgreSQL re-checks the row's condition after the wait), so exactly one of them gets it."""
    found = await session.scalar(
        select(CardKey.id).where(CardKey.id == card_key_id, _pickable(sku_id, now or utcnow()))
        .with_for_update())
    if found is None:
        raise CardKeyTaken("this card key is no longer available; pick another one", card_key_id=card_key_id)
    return int(found)


async def deliver_picked_key(*, session: AsyncSession, order_id: int, sku_id: int, card_key_id: int,
                             now: dt.datetime | None = None) -> None:
    """Hand a paid 自选 order exactly the key it picked: the one it holds, or (paid after its reservation was
    released) the same key if it is still sellable. Otherwise OutOfStock: the order waits for a refund, it never
    gets a different key than the one it paid the surcharge for. Caller holds the order lock."""
    now = now or utcnow()
    sold = await session.execute(
        update(CardKey).where(CardKey.id == card_key_id, CardKey.order_id == order_id,
                              CardKey.status == CardKeyStatus.RESERVED)
        .values(status=CardKeyStatus.SOLD, sold_at=now).execution_options(synchronize_session=False))
    if sold.rowcount == 1:  # type: ignore[attr-defined]
        return
    free = await session.scalar(select(CardKey.id).where(CardKey.id == card_key_id, CardKey.sku_id == sku_id,
                                                         _sellable(now)).with_for_update())
    if free is None:
        raise OutOfStock("the picked card key is no longer available", available=0, requested=1)
    await session.execute(update(CardKey).where(CardKey.id == card_key_id)
                          .values(status=CardKeyStatus.SOLD, order_id=order_id, reserved_at=now, sold_at=now)
                          .execution_options(synchronize_session=False))


async def label_card_keys(*, session: AsyncSession, sku_id: int, labels: Mapping[int, str],
                          scope: Scope = PLATFORM) -> int:
    """Give keys of one SKU the labels buyers pick them by ("" removes a label). Keys of another SKU or merchant
    refuse the whole request (as not found). Returns how many keys changed."""
    cleaned = {int(key_id): clean_label(text) for key_id, text in labels.items()}
    if not cleaned:
        return 0
    rows = (await session.execute(
        select(CardKey.id, CardKey.public_label, CardKey.merchant_id)
        .where(CardKey.id.in_(cleaned), CardKey.sku_id == sku_id))).all()
    if len(rows) != len(cleaned) or not all(scope.sees(merchant_id) for _, _, merchant_id in rows):
        raise CardKeyNotFound("some of these card keys do not exist", sku_id=sku_id)
    changed = 0
    for key_id, label, _ in rows:
        if label != cleaned[key_id]:
            await session.execute(update(CardKey).where(CardKey.id == key_id).values(public_label=cleaned[key_id])
                                  .execution_options(synchronize_session=False))
            changed += 1
    return changed


@dataclass(frozen=True, slots=True)
class LabelledKey:
    id: int
    card_no: str | None  # masked
    code: str  # masked: first and last 2 characters
    label: str | None
    status: str


async def labelled_stock(*, session: AsyncSession, cipher: CardKeyCipher, sku_id: int, after_id: int = 0,
                         limit: int = 100, now: dt.datetime | None = None) -> list[LabelledKey]:
    """A page of a SKU's sellable keys with masked codes and their labels, for the operator to label them."""
    keys = (await session.scalars(
        select(CardKey).where(CardKey.sku_id == sku_id, _sellable(now or utcnow()), CardKey.id > after_id)
        .order_by(CardKey.id).limit(limit))).all()
    page = []
    for key in keys:
        secret = cipher.decrypt(EncryptedCode(key.key_id, key.ciphertext), fingerprint=key.fingerprint)
        remember_codes([secret])  # masked in every log line from now on
        card_no, code = split_secret(secret)
        page.append(LabelledKey(id=key.id, card_no=mask_code(card_no) if card_no else None, code=mask_code(code),
                                label=key.public_label, status=key.status))
    return page
