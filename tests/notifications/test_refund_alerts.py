"""Staff e-mailed when a refund starts to wait for them (退款待处理), through the outbox and a real SMTP server: a
refusal by the gateway and a stall after the automatic attempts, each once per refund and state change (never again
by the worker's later passes, again when a retried refund is refused again), written with the state change (a new
worker process sends it), to the order's merchant: the platform's own store at QUANYI_OPERATOR_ALERT_EMAIL, another
merchant at its contact address (its message in its scope only)."""

from __future__ import annotations

import datetime as dt

import httpx
import pytest
from sqlalchemy import select, update

from helpers import Shop, make_settings
from merchants.support import admit, shared_category, stock_up
from notifications.conftest import notification_settings
from quanyi.config import Settings
from quanyi.merchants.models import Merchant
from quanyi.money import format_money
from quanyi.notifications.models import OutboxMessage
from quanyi.notifications.worker import OutboxWorker
from quanyi.payments.gateway import RefundRequest, RefundResult
from quanyi.payments.sandbox.gateway import SandboxGateway
from quanyi.refunds import service as refunds_service
from quanyi.refunds.models import Refund
from refund_helpers import Unreachable, ask_refund, cashier_pay, delivered_order

OPS = "ops@quanyi.example"
KIND = "refund_awaiting_staff"


@pytest.fixture
def settings(database_url: str, smtp, robots_server, sms_server) -> Settings:  # type: ignore[no-untyped-def]
    return make_settings(database_url, operator_alert_email=OPS,
                         **notification_settings(smtp, robots_server, sms_server))


class Refusing(SandboxGateway):
    async def refund(self, request: RefundRequest) -> RefundResult:
        return RefundResult(refund_no=request.refund_no, state="failed", amount_cents=request.amount_cents,
                            detail="ACQ.SELLER_BALANCE_NOT_ENOUGH: 卖家余额不足")


def _use(shop: Shop, kind: type[SandboxGateway] = SandboxGateway, http: httpx.AsyncClient | None = None) -> None:
    shop.ctx.gateways.register(kind(secret=shop.sandbox_secret, http=http or shop.ctx.http,
                                    api_base_url="http://127.0.0.1:8000"))


async def _alerts(shop: Shop) -> list[tuple[str, str, int, int | None]]:
    async with shop.ctx.db.read_session() as session:
        rows = await session.scalars(select(OutboxMessage).where(OutboxMessage.kind == KIND)
                                     .order_by(OutboxMessage.id))
        return [(m.channel, m.recipient, m.merchant_id, m.order_id) for m in rows.all()]


async def _sent_before(shop: Shop, smtp) -> None:  # type: ignore[no-untyped-def]
    """The order's own messages (the buyer's delivery e-mail, the robots' new-order alerts) out of the way."""
    await OutboxWorker(shop.ctx, owner="before").drain()
    smtp.reset()


async def _passes(shop: Shop, days: int = 30) -> int:
    """The worker's passes long after: a refund waiting for staff is not sent, nor told again."""
    return await refunds_service.execute_due_refunds(db=shop.ctx.db, gateways=shop.ctx.gateways,
                                                     now=dt.datetime.now(dt.UTC) + dt.timedelta(days=days))


async def test_a_refused_refund_is_mailed_to_staff_once_per_refusal(shop: Shop, smtp, worker, stocked_sku):
    order = await delivered_order(shop, stocked_sku, quantity=2)
    await _sent_before(shop, smtp)
    _use(shop, Refusing)
    refused = (await ask_refund(shop, order, quantity=1)).json()
    assert refused["status"] == "failed"
    order_id = await shop.scalar(select(Refund.order_id))
    assert await _alerts(shop) == [("email", OPS, 1, order_id)]
    assert await _passes(shop) == 0 and await _passes(shop, 90) == 0
    assert len(await _alerts(shop)) == 1

    assert await worker.drain() == 1
    [mail] = smtp.messages
    amount = format_money(stocked_sku.price_cents, "CNY")
    assert mail["To"] == OPS
    assert f"退款待处理：支付渠道拒绝了退款 {amount}（{refused['refund_no']}）" in mail["Subject"]
    text = mail.get_body(preferencelist=("plain",)).get_content()
    assert "支付渠道拒绝了这笔退款，买家还没有收到退款" in text and order["order_no"] in text
    assert "ACQ.SELLER_BALANCE_NOT_ENOUGH: 卖家余额不足" in text and amount in text
    assert "请在控制台「退款待处理」中重新退款（同一退款单号，不会重复退款），或撤回这笔退款并恢复发货" in text
    assert "/orders/" not in text  # no buyer's order link in a staff message

    again = await shop.client.post(f"/api/admin/refunds/{refused['refund_no']}/retry", headers=shop.admin)
    assert again.status_code == 200 and again.json()["status"] == "failed", again.text  # refused a second time
    assert len(await _alerts(shop)) == 2 and await _passes(shop) == 0 and len(await _alerts(shop)) == 2
    assert await worker.drain() == 1 and len(smtp.messages) == 2


async def test_a_stalled_refund_is_mailed_once_and_survives_the_process(shop: Shop, smtp, stocked_sku):
    order = await delivered_order(shop, stocked_sku)
    await _sent_before(shop, smtp)
    _use(shop, http=httpx.AsyncClient(transport=Unreachable()))
    refund = (await ask_refund(shop, order)).json()
    assert refund["status"] == "requested"
    for _ in range(refunds_service.AUTOMATIC_ATTEMPTS - 1):
        assert await _alerts(shop) == []  # still the worker's: nobody is told yet
        due = await shop.scalar(select(Refund.next_attempt_at).execution_options(populate_existing=True))
        due = due if due.tzinfo else due.replace(tzinfo=dt.UTC)
        assert await refunds_service.execute_due_refunds(db=shop.ctx.db, gateways=shop.ctx.gateways, now=due) == 1
    stored = await shop.scalar(select(Refund).execution_options(populate_existing=True))
    assert (stored.status, stored.next_attempt_at) == ("requested", None)  # stalled
    assert len(await _alerts(shop)) == 1 and await _passes(shop) == 0 and len(await _alerts(shop)) == 1

    # Committed with the stall: a notification worker started afterwards (another process) sends it, once due (on
    # the clock the worker's passes ran on).
    restarted = OutboxWorker(shop.ctx, owner="worker-after-restart")
    assert await restarted.run_once(now=dt.datetime.now(dt.UTC) + dt.timedelta(days=1)) == 1
    [mail] = smtp.messages
    assert mail["To"] == OPS and f"支付渠道多次无应答 {format_money(stocked_sku.price_cents, 'CNY')}" in mail["Subject"]
    text = mail.get_body(preferencelist=("plain",)).get_content()
    assert f"支付渠道 {refunds_service.AUTOMATIC_ATTEMPTS} 次无应答，已停止自动重试" in text
    assert "渠道可能已经退款，因此不能撤回" in text and refund["refund_no"] in text


async def test_a_merchants_refund_is_mailed_to_that_merchant_only(shop: Shop, smtp, worker):
    acme, other = await admit(shop, "acme"), await admit(shop, "beta")
    async with shop.ctx.db.transaction() as session:
        await session.execute(update(Merchant).where(Merchant.id == acme.merchant_id)
                              .values(contact_email="refunds@acme.example"))
    await stock_up(shop, acme, await shared_category(shop))
    order = await shop.create_order(acme.sku_id)
    await cashier_pay(shop, order)
    await _sent_before(shop, smtp)
    _use(shop, Refusing)
    refused = (await ask_refund(shop, order, quantity=1)).json()
    assert refused["status"] == "failed", refused
    [(channel, recipient, merchant_id, _)] = await _alerts(shop)
    assert (channel, recipient, merchant_id) == ("email", "refunds@acme.example", acme.merchant_id)
    mine = (await shop.client.get("/api/admin/notifications", headers=acme.headers)).json()
    assert [m["kind"] for m in mine if m["kind"] == KIND] == [KIND]
    theirs = (await shop.client.get("/api/admin/notifications", headers=other.headers)).json()
    assert [m for m in theirs if m["kind"] == KIND] == []
    assert await worker.drain() == 1
    [mail] = smtp.messages
    assert mail["To"] == "refunds@acme.example" and refused["refund_no"] in mail["Subject"]
