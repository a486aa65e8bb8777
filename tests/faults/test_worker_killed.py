"""The process sending notifications (`quanyi worker`, or `quanyi serve` running the outbox worker itself)
killed with SIGKILL in the middle of sending one (the mail server has the message but its reply has not come
back), then a fresh one: the e-mail arrives at least once, a second copy carries the same Message-ID (the
idempotency key mail systems dedupe on, derived from the outbox row), nothing is sent beyond that, and the
outbox row ends `sent`.

A worker killed in the middle of a supplier purchase: tests/suppliers/routing/test_worker_killed.py.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
from sqlalchemy import update

from faults.support import QuanyiProcess, await_until, traceback_lines, wait_until
from helpers import make_settings
from notifications.support import outbox
from quanyi.db import utcnow
from quanyi.notifications import outbox as outbox_service
from quanyi.notifications.models import OutboxMessage
from quanyi.notifications.senders import email_message_id
from quanyi.testpeers.smtp import SmtpSink

SHOP_FROM = "权益商城 <shop@quanyi.example>"
WORKER_ENV = {"QUANYI_NOTIFICATION_POLL_SECONDS": "0.1"}


@pytest.fixture
def smtp() -> Iterator[SmtpSink]:
    with SmtpSink().running() as sink:
        yield sink
        sink.hold_replies = False


@pytest.fixture
def settings(database_url: str, smtp: SmtpSink):  # type: ignore[no-untyped-def]
    return make_settings(database_url, smtp_host=smtp.host, smtp_port=smtp.port, smtp_security="none",
                         smtp_from=SHOP_FROM, notification_backoff_seconds=0.0,
                         # only the `quanyi worker` processes send (should a server be started too)
                         notification_worker_in_serve=False, fulfilment_worker_in_serve=False)


def _sender(kind: str, settings, tmp_path, name: str) -> QuanyiProcess:  # type: ignore[no-untyped-def]
    if kind == "worker":
        return QuanyiProcess(settings, tmp_path, "worker", name=name, env=WORKER_ENV)
    in_serve = settings.model_copy(update={"run_background_tasks": True, "notification_worker_in_serve": True})
    return QuanyiProcess.server(in_serve, tmp_path, name=name, env=WORKER_ENV)


async def _email_row(shop) -> OutboxMessage:  # type: ignore[no-untyped-def]
    [row] = await outbox(shop, OutboxMessage.channel == "email")
    return row


@pytest.mark.parametrize("kind", ["worker", "serve"])
async def test_sender_killed_mid_send_resends_with_the_same_message_id_and_ends_sent(
        shop, stocked_sku, smtp, settings, tmp_path, kind):
    order = await shop.create_order(stocked_sku.id, contact="buyer@example.com")
    await shop.pay(order)
    row = await _email_row(shop)
    assert row.status == "pending"
    key = email_message_id(outbox_service.idempotency_key(row), SHOP_FROM)

    smtp.hold_replies = True  # the message goes in, the 250 never comes back
    doomed = _sender(kind, settings, tmp_path, f"doomed-{kind}")
    try:
        wait_until(lambda: len(smtp.messages) == 1, what="the mail server receiving the message")
        row = await _email_row(shop)
        assert row.status == "sending" and row.attempts == 1  # claimed, the outcome not recorded
    finally:
        doomed.kill9()
    smtp.hold_replies = False
    row = await _email_row(shop)
    assert row.status == "sending" and row.sent_at is None

    # The dead worker's lease runs out (notification_lease_seconds, at least a minute: skipped here).
    async with shop.ctx.db.transaction() as session:
        await session.execute(update(OutboxMessage).where(OutboxMessage.id == row.id)
                              .values(locked_until=utcnow() - dt.timedelta(seconds=1)))
    fresh = _sender(kind, settings, tmp_path, f"fresh-{kind}")
    try:
        rows: list[OutboxMessage] = []

        async def sent() -> bool:
            rows[:] = [await _email_row(shop)]
            return rows[0].status == "sent"

        await await_until(sent, what="the outbox row being sent")
    finally:
        fresh.stop()
    assert not traceback_lines(fresh.log()), fresh.log()[-3000:]

    [row] = rows
    assert row.attempts == 2 and row.provider_message_id == key
    # At least once: the copy the mail server kept from the killed worker's send, and the resend; the
    # receiving side drops the second by its Message-ID.
    assert len(smtp.messages) == 2
    assert {m["Message-ID"] for m in smtp.messages} == {key}
    assert {tuple(rcpts) for _, rcpts in smtp.envelopes} == {("buyer@example.com",)}
    assert all(order["order_no"] in m["Subject"] for m in smtp.messages)

    # Nothing more goes out: another worker finds nothing due.
    again = QuanyiProcess(settings, tmp_path, "worker", "--once", name="once-worker")
    try:
        assert again.process.wait(timeout=60) == 0, again.log()[-3000:]
    finally:
        again.stop()
    assert "Processed 0 notification attempts" in again.log(), again.log()[-3000:]
    assert len(smtp.messages) == 2


async def test_a_database_drop_while_recording_a_sent_message_is_retried_and_sends_once(
        backend, shop, stocked_sku, smtp, settings, freezer, tmp_path):
    """The provider took the message, then the worker's connection dies while it records that: the worker
    retries the record instead of letting the lease run out (which would send the message a second time)."""
    if backend == "sqlite":
        pytest.skip("SQLite has no server connection to drop")
    order = await shop.create_order(stocked_sku.id, contact="buyer@example.com")
    await shop.pay(order)
    row = await _email_row(shop)

    smtp.hold_replies = True
    worker = _sender("worker", settings, tmp_path, "worker")
    try:
        wait_until(lambda: len(smtp.messages) == 1, what="the mail server receiving the message")
        await freezer.lock_rows("notifications_outbox", "id = $1", row.id)  # the claim is made: only the record
        smtp.hold_replies = False  # the 250 arrives; the worker records the send and waits on our lock
        pid = await freezer.wait_for_lock_waiter()
        await freezer.terminate_backend(pid)
        await freezer.release()

        async def sent() -> bool:
            return (await _email_row(shop)).status == "sent"

        await await_until(sent, what="the outbox row being sent")
    finally:
        worker.stop()
    log = worker.log()
    assert "recording it failed" in log and "could not record the outcome" not in log, log[-3000:]
    row = await _email_row(shop)
    assert row.attempts == 1 and len(smtp.messages) == 1
