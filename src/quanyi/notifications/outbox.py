"""The outbox worker's bookkeeping: claim due messages under a lease, record what each attempt did.

`notifications.service` writes outbox rows inside other features' transactions; this module is how a worker
(`notifications/worker.py`) takes them: disjoint claims across workers, a lease that expires if its worker dies,
and reports that count only while the reporter still holds the lease.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import random

from sqlalchemy import and_, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from quanyi.db import utcnow
from quanyi.notifications.models import MessageStatus, OutboxMessage

__all__ = ["idempotency_key", "backoff_delay", "claim_due", "record_sent", "record_failure"]

_MAX_BACKOFF_SECONDS = 6 * 3600


def idempotency_key(message: OutboxMessage) -> str:
    """Stable for one outbox row across retries and workers; unique across shops thanks to the dedupe hash."""
    digest = hashlib.sha256(message.dedupe_key.encode()).hexdigest()[:12]
    return f"qy-{message.id}-{digest}"


def backoff_delay(attempts: int, base_seconds: float) -> dt.timedelta:
    """Exponential backoff with +-20% jitter (so failed messages do not retry in lockstep), capped at 6 h."""
    delay = min(base_seconds * 2 ** max(attempts - 1, 0), _MAX_BACKOFF_SECONDS)
    return dt.timedelta(seconds=delay * random.uniform(0.8, 1.2))


async def claim_due(
    *, session: AsyncSession, owner: str, limit: int, lease: dt.timedelta, max_attempts: int,
    now: dt.datetime | None = None,
) -> list[OutboxMessage]:
    """Take up to `limit` due messages for this worker: status sending, lease until now + lease.

    Due: pending and past next_attempt_at, or sending with an expired lease (its worker died or hung).
    PostgreSQL: FOR UPDATE SKIP LOCKED makes concurrent workers take disjoint rows without waiting, and the
    row stays locked until this short transaction commits the lease, after which it is no longer due.
    SQLite: the clause is not rendered; the transaction began with BEGIN IMMEDIATE, so it holds the single
    writer lock from select to commit and no other worker (thread or process) can claim in between.
    """
    now = now or utcnow()
    stmt = (
        select(OutboxMessage)
        .where(or_(
            and_(OutboxMessage.status == MessageStatus.PENDING.value, OutboxMessage.next_attempt_at <= now),
            and_(OutboxMessage.status == MessageStatus.SENDING.value, OutboxMessage.locked_until <= now),
        ))
        .order_by(OutboxMessage.next_attempt_at, OutboxMessage.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
        .execution_options(populate_existing=True)
    )
    claimed = []
    for message in (await session.scalars(stmt)).all():
        message.updated_at = now
        if message.attempts >= max_attempts:
            # Its worker vanished during the last attempt; whether that one went out is unknown.
            message.status = MessageStatus.DEAD.value
            message.last_error = (f"lease of {message.lease_owner} expired during the last attempt; "
                                  "it may or may not have been sent")[:1000]
            message.lease_owner = message.locked_until = None
            continue
        message.status = MessageStatus.SENDING.value
        message.attempts += 1
        message.lease_owner = owner
        message.locked_until = now + lease
        claimed.append(message)
    await session.flush()
    return claimed


def _leased_by(message_id: int, owner: str):  # type: ignore[no-untyped-def]
    # Only the current lease holder may report: if our lease expired and another worker took the message,
    # our late report changes nothing (theirs counts).
    return and_(OutboxMessage.id == message_id, OutboxMessage.status == MessageStatus.SENDING.value,
                OutboxMessage.lease_owner == owner)


async def record_sent(
    *, session: AsyncSession, message_id: int, owner: str, provider_message_id: str | None,
    now: dt.datetime | None = None,
) -> bool:
    """Mark a message sent; False if this worker no longer held its lease."""
    now = now or utcnow()
    result = await session.execute(
        update(OutboxMessage).where(_leased_by(message_id, owner)).values(
            status=MessageStatus.SENT.value, sent_at=now, updated_at=now, locked_until=None, lease_owner=None,
            last_error=None, provider_message_id=(provider_message_id or None) and provider_message_id[:128],
        )
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def record_failure(
    *, session: AsyncSession, message_id: int, owner: str, error: str, permanent: bool, max_attempts: int,
    backoff_seconds: float, now: dt.datetime | None = None,
) -> MessageStatus | None:
    """After a failed attempt: back to pending with backoff, or dead. None if the lease was lost."""
    now = now or utcnow()
    message = await session.scalar(
        select(OutboxMessage).where(_leased_by(message_id, owner)).with_for_update()
        .execution_options(populate_existing=True)
    )
    if message is None:
        return None
    dead = permanent or message.attempts >= max_attempts
    message.status = (MessageStatus.DEAD if dead else MessageStatus.PENDING).value
    message.last_error = error[:1000]
    message.locked_until = None
    message.lease_owner = None
    message.updated_at = now
    if not dead:
        message.next_attempt_at = now + backoff_delay(message.attempts, backoff_seconds)
    return MessageStatus(message.status)
