"""A payment's postings and delivery messages are deferred to the ledger worker (ledger.deferred): `quanyi serve`
SIGKILLed after the payment committed and before its worker expanded it loses nothing. The row written in the
payment's transaction survives, and the next process's worker posts it exactly once and enqueues the buyer's
message and the merchant's alert exactly once; the books balance."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import func, select

from faults.support import QuanyiProcess, await_until, traceback_lines
from quanyi.ledger import service as ledger_service
from quanyi.ledger.models import DeferredPosting, LedgerPosting
from quanyi.notifications.models import OutboxMessage

PAID = 3


@pytest.mark.slow
async def test_server_killed_before_posting_a_paid_order_posts_it_after_restart(shop, settings, tmp_path):
    sku = await shop.make_sku()
    await shop.stock(sku, PAID)
    orders = [await shop.create_order(sku.id) for _ in range(PAID)]
    notifications = [shop.notification(await shop.start_payment(order)) for order in orders]

    # The first server's worker would post only after 10 minutes: it is killed with the rows waiting. The shop
    # e-mails its buyers and alerts a group (nothing can be sent from here: the messages stay in the outbox).
    slow = settings.model_copy(update={"run_background_tasks": True, "ledger_batch_seconds": 600,
                                       "smtp_host": "smtp.invalid", "smtp_from": "shop@example.com",
                                       "wecom_webhook_url": "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=t"})
    server = QuanyiProcess.server(slow, tmp_path)
    try:
        with httpx.Client(base_url=server.url, timeout=60) as http:
            for params in notifications:
                answer = http.post("/payments/sandbox/notify", data=params)
                assert answer.status_code == 200 and answer.text == "success", answer.text
    finally:
        server.kill9()
    for order in orders:
        assert (await shop.get_order(order))["status"] == "delivered"
    assert await shop.count(DeferredPosting) == PAID  # committed with the payments, not yet posted
    assert await shop.count(LedgerPosting) == 0
    assert await shop.count(OutboxMessage) == 0  # the messages follow from the same rows

    restarted = QuanyiProcess.server(slow.model_copy(update={"ledger_batch_seconds": 0.02}), tmp_path,
                                     port=server.port, name="restarted")
    try:
        async def posted() -> bool:
            return await shop.count(DeferredPosting) == 0

        await await_until(posted, what="the deferred postings")  # its worker looks once a second
    finally:
        restarted.stop()
    assert not traceback_lines(restarted.log()), restarted.log()[-3000:]
    async with shop.ctx.db.read_session() as session:
        kinds = dict((await session.execute(
            select(LedgerPosting.kind, func.count()).group_by(LedgerPosting.kind))).all())
        assert kinds == {"payment_received": PAID, "order_delivered": PAID}
        assert set((await ledger_service.trial_balance(session=session)).totals.values()) <= {0}
        messages = dict((await session.execute(
            select(OutboxMessage.kind, func.count()).group_by(OutboxMessage.kind))).all())
        assert messages == {"order_delivered": PAID, "order_paid": PAID}  # the buyer's and the group's, once each
