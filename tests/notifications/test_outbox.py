"""The outbox itself: retries with backoff, the dead-letter list (API and CLI) and retrying from it,
dedupe of repeated events, lease expiry after a worker dies, channels that are not configured."""

from __future__ import annotations

import datetime as dt

import pytest

from helpers import Shop, make_settings
from notifications.support import outbox, run_quanyi
from quanyi.context import build_context
from quanyi.db import utcnow
from quanyi.notifications import outbox as outbox_service
from quanyi.notifications import service as notifications_service
from quanyi.notifications.models import Channel, Kind, OutboxMessage
from quanyi.notifications.worker import OutboxWorker
from quanyi.orders import service as orders_service
from quanyi.payments import service as payments_service
from quanyi.payments.gateway import PaymentNotification


async def _risk_alert(shop: Shop, reason: str = "manual review") -> None:
    """One alert per robot, without an order flow around it."""
    async with shop.ctx.db.transaction() as session:
        await notifications_service.enqueue(
            session=session, channel=Channel.WECOM, recipient="group", kind=Kind.RISK_HOLD, locale="zh-CN",
            payload={"order_no": "T1", "product_name": "P", "sku_name": "S", "quantity": 1, "total_cents": 100,
                     "currency": "CNY", "reason": reason}, dedupe_key=f"test:{reason}")


@pytest.mark.parametrize("receiver", ["wecom", "smtp"])
async def test_receiver_failing_twice_gets_the_message_on_the_third_attempt(
        shop, robots, smtp, worker, stocked_sku, receiver):
    if receiver == "wecom":
        robots.fail_next["wecom"] = 2
    else:
        smtp.fail_next = 2  # 451 on DATA, twice
    order = await shop.create_order(stocked_sku.id)
    await shop.pay(order)
    await worker.drain()
    channel = "wecom" if receiver == "wecom" else "email"
    [row] = await outbox(shop, OutboxMessage.channel == channel)
    assert row.status == "sent" and row.attempts == 3 and row.last_error is None
    received = robots.of("wecom") if receiver == "wecom" else smtp.messages
    assert len(received) == 1


async def test_failed_attempts_back_off_exponentially(shop, robots, worker):
    shop.ctx.settings.notification_backoff_seconds = 60
    robots.fail_next["wecom"] = 3
    await _risk_alert(shop)
    start = utcnow()
    delays = []
    for attempt in range(1, 4):
        assert await worker.run_once(now=start + dt.timedelta(days=attempt)) == 1
        [row] = await outbox(shop)
        assert row.status == "pending" and row.attempts == attempt and "errcode=-1" in row.last_error
        delays.append((row.next_attempt_at - row.updated_at).total_seconds())
    # 60 s, 120 s, 240 s, each within +-20% jitter.
    for delay, base in zip(delays, (60, 120, 240), strict=True):
        assert base * 0.8 <= delay <= base * 1.2
    assert await worker.run_once(now=start + dt.timedelta(days=9)) == 1
    [row] = await outbox(shop)
    assert row.status == "sent" and row.attempts == 4 and len(robots.of("wecom")) == 1


async def test_not_yet_due_messages_wait(shop, robots, worker):
    shop.ctx.settings.notification_backoff_seconds = 3600
    robots.fail_next["wecom"] = 1
    await _risk_alert(shop)
    assert await worker.drain() == 1  # failed once, next attempt in about an hour
    assert await worker.drain() == 0 and robots.of("wecom") == []


async def test_permanent_failure_lands_in_the_dead_letter_list_and_can_be_retried(shop, robots, worker):
    shop.ctx.settings.notification_max_attempts = 3
    robots.fail_next["wecom"] = 100
    await _risk_alert(shop, "dead one")
    await worker.drain()
    [row] = await outbox(shop)
    assert row.status == "dead" and row.attempts == 3 and robots.of("wecom") == []

    assert (await shop.client.get("/api/admin/notifications?status=dead")).status_code == 401
    listed = await shop.client.get("/api/admin/notifications?status=dead", headers=shop.admin)
    assert listed.status_code == 200
    [dead] = listed.json()
    assert dead["id"] == row.id and dead["status"] == "dead" and "errcode=-1" in dead["last_error"]
    assert dead["payload"]["reason"] == "dead one"
    assert (await shop.client.get("/api/admin/notifications?status=sent", headers=shop.admin)).json() == []
    bad = await shop.client.get("/api/admin/notifications?status=lost", headers=shop.admin)
    assert bad.status_code == 422

    robots.fail_next["wecom"] = 0
    retried = await shop.client.post(f"/api/admin/notifications/{row.id}/retry", headers=shop.admin)
    assert retried.status_code == 200 and retried.json()["status"] == "pending" and retried.json()["attempts"] == 0
    again = await shop.client.post(f"/api/admin/notifications/{row.id}/retry", headers=shop.admin)
    assert again.status_code == 409 and again.json()["code"] == "notification_not_retryable"
    missing = await shop.client.post("/api/admin/notifications/999999/retry", headers=shop.admin)
    assert missing.status_code == 404 and missing.json()["code"] == "notification_not_found"
    assert (await shop.client.post("/api/admin/notifications/0/retry", headers=shop.admin)).status_code == 422

    assert await worker.drain() == 1
    [row] = await outbox(shop)
    assert row.status == "sent" and row.attempts == 1 and len(robots.of("wecom")) == 1


async def test_a_refused_recipient_is_dead_at_once(shop, smtp, worker, stocked_sku):
    smtp.reject_next = 1  # 550: no retry can help
    order = await shop.create_order(stocked_sku.id)
    await shop.pay(order)
    await worker.drain()
    [row] = await outbox(shop, OutboxMessage.channel == "email")
    assert row.status == "dead" and row.attempts == 1 and row.last_error.startswith("SMTP 550")


async def test_dead_letters_from_the_command_line(shop, robots, worker, settings, tmp_path):
    shop.ctx.settings.notification_max_attempts = 1
    robots.fail_next["wecom"] = 1
    await _risk_alert(shop, "cli case")
    await worker.drain()
    [row] = await outbox(shop)
    assert row.status == "dead"
    await shop.ctx.db.dispose()

    listing = run_quanyi(tmp_path, settings, "notifications", "list", "--status", "dead")
    assert listing.returncode == 0, listing.stderr
    line = next(r for r in listing.stdout.splitlines() if "risk_hold" in r)
    assert str(row.id) in line and "wecom" in line and "errcode=-1" in line
    assert "risk_hold" not in run_quanyi(tmp_path, settings, "notifications", "list", "--status", "sent").stdout
    wrong = run_quanyi(tmp_path, settings, "notifications", "list", "--status", "lost")
    assert wrong.returncode == 2 and "Unknown status" in wrong.stderr

    retry = run_quanyi(tmp_path, settings, "notifications", "retry", str(row.id))
    assert retry.returncode == 0 and "queued again" in retry.stdout, retry.stderr
    twice = run_quanyi(tmp_path, settings, "notifications", "retry", str(row.id))
    assert twice.returncode == 1 and "notification_not_retryable" in twice.stderr
    sent = run_quanyi(tmp_path, settings, "worker", "--once")
    assert sent.returncode == 0 and "Processed 1 notification attempts" in sent.stdout, sent.stderr
    [row] = await outbox(shop)
    assert row.status == "sent" and len(robots.of("wecom")) == 1


async def test_the_same_event_enqueued_twice_is_one_message(shop, smtp, worker, paid_order):
    before = await shop.count(OutboxMessage)
    async with shop.ctx.db.transaction() as session:
        order = await orders_service.get_order(session=session, order_no=paid_order["order_no"])
        await notifications_service.on_order_delivered(session=session, order=order)
        await notifications_service.on_order_delivered(session=session, order=order)
    assert await shop.count(OutboxMessage) == before == 3  # buyer e-mail + one alert per robot
    async with shop.ctx.db.transaction() as session:
        again = await notifications_service.enqueue(
            session=session, channel=Channel.EMAIL, recipient="x@example.com", kind=Kind.ORDER_DELIVERED,
            locale="en", payload={}, dedupe_key=f"order_delivered:{paid_order['order_no']}:email")
    assert again is False
    await worker.drain()
    assert len(smtp.messages) == 1


async def test_a_dead_workers_lease_expires_and_the_message_is_sent_again(shop, robots, worker):
    await _risk_alert(shop, "lease")
    crashed = OutboxWorker(shop.ctx, owner="crashed-worker")
    claimed = await crashed.claim()  # claims, then "dies": never sends, never reports
    assert [m.id for m in claimed] == [(await outbox(shop))[0].id]

    assert await worker.run_once() == 0  # the lease still holds
    lease = dt.timedelta(seconds=shop.ctx.settings.notification_lease_seconds)
    assert await worker.run_once(now=utcnow() + lease + dt.timedelta(seconds=1)) == 1
    [row] = await outbox(shop)
    assert row.status == "sent" and row.attempts == 2 and len(robots.of("wecom")) == 1
    # The crashed worker coming back late cannot overwrite the outcome.
    async with shop.ctx.db.transaction() as session:
        assert not await outbox_service.record_sent(
            session=session, message_id=row.id, owner="crashed-worker", provider_message_id="late")
        assert await outbox_service.record_failure(
            session=session, message_id=row.id, owner="crashed-worker", error="late", permanent=False,
            max_attempts=8, backoff_seconds=1) is None
    [row] = await outbox(shop)
    assert row.status == "sent" and row.provider_message_id is None


async def test_a_lease_expiring_on_the_last_attempt_is_dead_not_resent(shop, robots, worker):
    shop.ctx.settings.notification_max_attempts = 1
    await _risk_alert(shop, "last")
    await OutboxWorker(shop.ctx, owner="crashed-worker").claim()
    later = utcnow() + dt.timedelta(seconds=shop.ctx.settings.notification_lease_seconds + 1)
    assert await worker.run_once(now=later) == 0
    [row] = await outbox(shop)
    assert row.status == "dead" and "may or may not have been sent" in row.last_error
    assert robots.of("wecom") == []


async def test_unconfigured_channels_are_not_enqueued(database_url, loopback, stocked_sku, shop):
    bare = build_context(make_settings(database_url), transport=loopback)  # no SMTP, SMS or robots
    try:
        order = await shop.create_order(stocked_sku.id)
        payment = await shop.start_payment(order)
        async with bare.db.transaction() as session:
            await payments_service.confirm_payment(
                session=session, gateway_name="sandbox", notification=PaymentNotification(
                    payment_no=payment["payment_no"], gateway_trade_no="T-1", amount_cents=payment["amount_cents"],
                    currency=payment["currency"], succeeded=True, paid_at=None))
        assert (await shop.get_order(order))["status"] == "delivered"
        assert await shop.count(OutboxMessage) == 0
        assert await OutboxWorker(bare).drain() == 0
    finally:
        await bare.close()
