"""Staff access to card keys: masked listings, and the audited plaintext reveal (员工查看卡密).

A staff reveal needs the `card_keys.reveal` permission (checked by the route) and a reason; each one
writes a KeyReveal row with channel "staff", who, why, IP, user agent and time.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from quanyi.db import utcnow
from quanyi.errors import InvalidInput, NotFound
from quanyi.inventory import service as inventory_service
from quanyi.inventory.crypto import CardKeyCipher, EncryptedCode
from quanyi.inventory.masking import mask_code, remember_codes
from quanyi.inventory.models import CardKey, KeyReveal
from quanyi.inventory.parsing import split_secret
from quanyi.inventory.schemas import MaskedKey, StaffRevealedKey
from quanyi.orders import service as orders_service
from quanyi.scope import PLATFORM, Scope

__all__ = ["CardKeyNotFound", "RevealReasonTooShort", "STAFF_CHANNEL", "staff_reveal_card_key", "list_masked_keys"]

STAFF_CHANNEL = inventory_service.STAFF_REVEAL_CHANNEL


class CardKeyNotFound(NotFound):
    code = "card_key_not_found"


class RevealReasonTooShort(InvalidInput):
    code = "reveal_reason_too_short"


async def staff_reveal_card_key(
    *,
    session: AsyncSession,
    cipher: CardKeyCipher,
    card_key_id: int,
    actor: str,
    reason: str,
    ip: str,
    user_agent: str,
    min_reason_length: int = 10,
    now: dt.datetime | None = None,
    scope: Scope = PLATFORM,
) -> StaffRevealedKey:
    """Decrypt one card key for a staff member, writing the audit row in the same transaction."""
    reason = reason.strip()
    if len(reason) < min_reason_length:
        raise RevealReasonTooShort(f"say why you need this code (at least {min_reason_length} characters)",
                                   min_length=min_reason_length)
    now = now or utcnow()
    # Its order first (a refund taking the key back holds the order, then the key), then the key as now committed.
    await orders_service.share_order_lock(
        session=session, order_id=select(CardKey.order_id).where(CardKey.id == card_key_id).scalar_subquery())
    key = await session.scalar(select(CardKey).where(CardKey.id == card_key_id))
    if key is None or not scope.sees(key.merchant_id):
        raise CardKeyNotFound(f"card key {card_key_id} does not exist")
    secret = cipher.decrypt(EncryptedCode(key.key_id, key.ciphertext), fingerprint=key.fingerprint)
    remember_codes([secret])
    reveal_id = (await session.execute(
        insert(KeyReveal).values(
            card_key_id=key.id, order_id=key.order_id, revealed_at=now, channel=STAFF_CHANNEL, ip=ip[:64],
            user_agent=user_agent[:512], actor=actor[:64], reason=reason[:500],
        ).returning(KeyReveal.id)
    )).scalar_one()
    card_no, code = split_secret(secret)
    return StaffRevealedKey(card_key_id=key.id, sku_id=key.sku_id, status=key.status, order_id=key.order_id,
                            card_no=card_no, code=code, expires_at=key.expires_at, reveal_id=reveal_id)


async def list_masked_keys(
    *, session: AsyncSession, cipher: CardKeyCipher, batch_id: int, after_id: int = 0, limit: int = 100
) -> list[MaskedKey]:
    """One page of a batch's keys with their codes masked (first 2 + last 2): enough to match a complaint."""
    keys = (await session.scalars(
        select(CardKey).where(CardKey.batch_id == batch_id, CardKey.id > after_id).order_by(CardKey.id).limit(limit)
    )).all()
    page = []
    for key in keys:
        secret = cipher.decrypt(EncryptedCode(key.key_id, key.ciphertext), fingerprint=key.fingerprint)
        remember_codes([secret])
        card_no, code = split_secret(secret)
        page.append(MaskedKey(id=key.id, status=key.status, card_no=mask_code(card_no) if card_no else None,
                              code=mask_code(code), order_id=key.order_id, expires_at=key.expires_at,
                              leaked_at=key.leaked_at))
    return page
