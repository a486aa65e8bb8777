"""After a race (bench/flash_sale.py): the exact counts straight from the tables, and the delivery e-mails.

A race passes only if every sold key belongs to exactly one delivered order and vice versa, and, with `--email`,
every delivered order's buyer got exactly one e-mail.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter

from sqlalchemy import func, select

from quanyi.db import Database
from quanyi.inventory.models import CardKey, CardKeyStatus
from quanyi.notifications.models import MessageStatus, OutboxMessage
from quanyi.orders.models import Order
from quanyi.orders.state import OrderStatus
from quanyi.testpeers.smtp import SmtpSink

__all__ = ["check_database", "check_emails", "drain_outbox", "outbox_counts"]


async def check_database(database_url: str, keys: int) -> tuple[str, list[str]]:
    """Straight from the tables: every sold key belongs to exactly one delivered order and vice versa."""
    db = Database(database_url, pool_size=1)
    try:
        async with db.read_session() as session:
            by_status = dict((await session.execute(select(Order.status, func.count()).group_by(Order.status))).all())
            sold = await session.scalar(select(func.count()).where(CardKey.status == CardKeyStatus.SOLD))
            per_order = (await session.execute(
                select(CardKey.order_id, func.count()).where(CardKey.status == CardKeyStatus.SOLD)
                .group_by(CardKey.order_id).having(func.count() > 1))).all()
            left = await session.scalar(select(func.count()).where(CardKey.status == CardKeyStatus.AVAILABLE))
    finally:
        await db.dispose()
    delivered = by_status.get(OrderStatus.DELIVERED, 0)
    statuses = ", ".join(f"{count} {status}" for status, count in sorted(by_status.items()))
    summary = f"orders: {statuses}; keys sold {sold}, left {left}; orders holding >1 key: {len(per_order)}"
    problems = []
    if delivered != keys or sold != keys or per_order or left:
        problems.append(f"expected {keys} delivered orders holding one key each and no key left: {summary}")
    return summary, problems


async def outbox_counts(database_url: str) -> dict[str, int]:
    db = Database(database_url, pool_size=1)
    try:
        async with db.read_session() as session:
            rows = (await session.execute(select(OutboxMessage.status, func.count())
                                          .group_by(OutboxMessage.status))).all()
    finally:
        await db.dispose()
    return {str(status): int(count) for status, count in rows}


def drain_outbox(database_url: str, timeout: float = 120.0) -> tuple[dict[str, int], float]:
    """Wait until no message is pending or being sent (or the timeout passes); (counts, seconds waited)."""
    started = time.monotonic()
    while True:
        counts = asyncio.run(outbox_counts(database_url))
        busy = counts.get(MessageStatus.PENDING, 0) + counts.get(MessageStatus.SENDING, 0)
        if not busy or time.monotonic() - started > timeout:
            return counts, time.monotonic() - started
        time.sleep(0.5)


def check_emails(sink: SmtpSink, counts: dict[str, int], keys: int, waited: float) -> tuple[str, list[str], str]:
    """One delivery e-mail per delivered order: the sink got `keys` messages to `keys` different buyers."""
    recipients = Counter(rcpt for _sender, rcpts in sink.envelopes for rcpt in rcpts)
    twice = sum(n - 1 for n in recipients.values() if n > 1)
    outbox = ", ".join(f"{n} {status}" for status, n in sorted(counts.items())) or "empty"
    summary = (f"{len(sink.messages)} received by the SMTP sink for {len(recipients)} buyers ({twice} sent twice); "
               f"outbox {outbox}; drained {waited:.1f} s after the race")
    problems = []
    if len(recipients) != keys or counts.get(MessageStatus.SENT, 0) != keys or len(counts) != 1:
        problems.append(f"expected {keys} delivery e-mails, each sent: {summary}")
    return summary, problems, f"{len(recipients)}/{twice}"
