"""Reconciliation with the gateway (sandbox over HTTP): a lost notification is recovered by the active
query loop (also after the order was cancelled), and the daily report lists every kind of mismatch,
repairing the payments the gateway has and we missed."""

from __future__ import annotations

import datetime as dt
from urllib.parse import parse_qs, urlparse
from zoneinfo import ZoneInfo

import httpx
from sqlalchemy import select

from quanyi.db import utcnow
from quanyi.payments import reconciliation
from quanyi.payments.gateway import CheckoutRequest, RefundRequest
from quanyi.payments.models import Payment
from quanyi.payments.sandbox.gateway import SandboxGateway
from quanyi.refunds.models import Refund
from quanyi.tasks import query_payments_once
from refund_helpers import (
    Unreachable,
    ask_refund,
    cashier_pay,
    delivered_order,
    lose_notifications,
    open_cashier,
    press_pay,
    void_stock,
)

WINDOW = dt.timedelta(hours=24)


async def _query(shop, now):  # type: ignore[no-untyped-def]
    return await reconciliation.query_open_payments(db=shop.ctx.db, gateways=shop.ctx.gateways, window=WINDOW,
                                                    now=now)


def _today() -> dt.date:
    return utcnow().astimezone(ZoneInfo("Asia/Shanghai")).date()


async def test_a_lost_notification_is_recovered_by_the_active_query(shop, app, order):
    lose_notifications(shop)
    await cashier_pay(shop, order)
    assert (await shop.get_order(order))["status"] == "pending_payment"  # the gateway has the money, we don't

    now = utcnow()
    assert await _query(shop, now) == reconciliation.QueryRound(0, 0, 0)  # the buyer may still be paying
    assert await query_payments_once(shop.ctx) == reconciliation.QueryRound(0, 0, 0)
    later = now + reconciliation.FIRST_QUERY_AFTER + dt.timedelta(seconds=1)
    assert await _query(shop, later) == reconciliation.QueryRound(queried=1, confirmed=1, unreachable=0)
    view = await shop.get_order(order)
    assert view["status"] == "delivered" and view["delivered_keys"] == 1
    payment = await shop.scalar(select(Payment))
    assert (payment.status, payment.query_count) == ("succeeded", 1)
    assert await _query(shop, later + dt.timedelta(hours=1)) == reconciliation.QueryRound(0, 0, 0)


async def test_unpaid_payments_are_queried_with_backoff_then_given_up(shop, app, order):
    await shop.start_payment(order)
    start = utcnow() + reconciliation.FIRST_QUERY_AFTER
    assert (await _query(shop, start)).queried == 1
    assert (await _query(shop, start + dt.timedelta(seconds=10))).queried == 0  # backing off
    assert (await _query(shop, start + dt.timedelta(seconds=31))).queried == 1
    assert (await _query(shop, start + WINDOW + dt.timedelta(minutes=1))).queried == 0  # too old to chase
    assert (await shop.scalar(select(Payment))).query_count == 2


async def test_an_unreachable_gateway_leaves_the_payment_for_the_next_round(shop, app, order):
    await shop.start_payment(order)
    down = httpx.AsyncClient(transport=Unreachable())
    shop.ctx.gateways.register(SandboxGateway(secret=shop.sandbox_secret, http=down))
    later = utcnow() + dt.timedelta(minutes=2)
    assert await _query(shop, later) == reconciliation.QueryRound(queried=1, confirmed=0, unreachable=1)
    await down.aclose()


async def test_a_payment_found_after_cancellation_still_delivers(shop, app, stocked_sku):
    order = await shop.create_order(stocked_sku.id)
    lose_notifications(shop)
    await cashier_pay(shop, order)
    cancel = await shop.client.post(f"/api/orders/{order['order_no']}/cancel", headers=shop.auth(order))
    assert cancel.json()["status"] == "cancelled"
    found = await _query(shop, utcnow() + dt.timedelta(minutes=2))
    assert found.confirmed == 1
    view = await shop.get_order(order)
    assert view["status"] == "delivered" and "cancelled" in view["status_reason"]


async def test_a_late_payment_without_stock_waits_for_and_gets_a_full_refund(shop, app, stocked_sku):
    order = await shop.create_order(stocked_sku.id)
    lose_notifications(shop)
    await cashier_pay(shop, order)
    await shop.client.post(f"/api/orders/{order['order_no']}/cancel", headers=shop.auth(order))
    await void_stock(shop, stocked_sku.id)
    assert (await _query(shop, utcnow() + dt.timedelta(minutes=2))).confirmed == 1
    assert (await shop.get_order(order))["status"] == "refund_pending"
    refund = await ask_refund(shop, order, reason="paid after cancel, sold out")
    assert refund.status_code == 201 and refund.json()["status"] == "succeeded"
    assert (await shop.get_order(order))["status"] == "refunded"


async def test_the_daily_report_lists_each_kind_of_mismatch(shop, app, stocked_sku, tmp_path):
    gateway = shop.ctx.gateways.get("sandbox")
    # 1. Consistent: paid and notified normally, nothing to report.
    await delivered_order(shop, stocked_sku)
    # 2. Paid at the gateway, notification lost: reported and repaired.
    lost = await shop.create_order(stocked_sku.id)
    real_http = shop.ctx.http
    lose_notifications(shop)
    lost_payment = await cashier_pay(shop, lost)
    # 3. The gateway took another amount than we asked (a forged or broken cashier): reported, not applied.
    odd = await shop.create_order(stocked_sku.id)
    odd_payment, _ = await open_cashier(shop, odd)
    checkout = await gateway.create_checkout(CheckoutRequest(
        payment_no=odd_payment["payment_no"], amount_cents=1, currency="CNY", subject="x",
        notify_url="http://127.0.0.1:8000/payments/sandbox/notify", return_url="http://127.0.0.1:8000/"))
    await press_pay(shop, parse_qs(urlparse(checkout.cashier_url).query)["t"][0])
    # 4. We recorded a payment the gateway never had (shop.pay signs a notification without a trade).
    ghost = await shop.create_order(stocked_sku.id)
    ghost_payment = await shop.pay(ghost)
    # 5. A gateway transaction other than the one we recorded.
    other = await shop.create_order(stocked_sku.id)
    other_payment = await cashier_pay(shop, other)
    notified = await shop.notify(shop.notification(other_payment, trade_no="SBWRONG0001"))
    assert notified.text == "success"
    # 6. A refund the gateway made while we still think it is on its way (the answer was lost).
    shop.ctx.http = real_http
    refunded = await delivered_order(shop, stocked_sku)
    down = httpx.AsyncClient(transport=Unreachable())
    shop.ctx.gateways.register(SandboxGateway(secret=shop.sandbox_secret, http=down))
    pending = (await ask_refund(shop, refunded, quantity=1)).json()
    assert pending["status"] == "requested"
    shop.ctx.gateways.register(gateway)
    stored = await shop.scalar(select(Refund))
    paid = await shop.scalar(select(Payment).where(Payment.id == stored.payment_id))
    await gateway.refund(RefundRequest(refund_no=stored.refund_no, payment_no=paid.payment_no,
                                       gateway_trade_no=paid.gateway_trade_no, amount_cents=1980,
                                       payment_amount_cents=1980, currency="CNY", reason="lost answer"))

    response = await shop.client.get(f"/api/admin/reconciliation?date={_today().isoformat()}&gateway=sandbox",
                                     headers=shop.admin)
    assert response.status_code == 200, response.text
    report = response.json()
    assert report["payments_checked"] == 6 and report["refunds_checked"] == 1
    by_kind = {m["kind"]: m for m in report["mismatches"]}
    assert sorted(by_kind) == ["amount_mismatch", "not_paid_at_gateway", "paid_not_recorded", "refund_mismatch",
                               "trade_mismatch"]
    assert len(report["mismatches"]) == 5
    assert by_kind["paid_not_recorded"]["payment_no"] == lost_payment["payment_no"]
    assert by_kind["paid_not_recorded"]["repaired"] and "repaired" in by_kind["paid_not_recorded"]["detail"]
    assert by_kind["amount_mismatch"]["payment_no"] == odd_payment["payment_no"]
    assert not by_kind["amount_mismatch"]["repaired"]
    assert by_kind["not_paid_at_gateway"]["payment_no"] == ghost_payment["payment_no"]
    assert by_kind["trade_mismatch"]["payment_no"] == other_payment["payment_no"]
    assert by_kind["refund_mismatch"]["refund_no"] == stored.refund_no
    assert (await shop.get_order(lost))["status"] == "delivered"  # repaired by the report
    assert (await shop.get_order(odd))["status"] == "pending_payment"

    # Run again: the repaired payment no longer differs; the rest still do.
    again = await reconciliation.reconcile_day(db=shop.ctx.db, gateways=shop.ctx.gateways, day=_today(),
                                               timezone="Asia/Shanghai")
    assert sorted(m.kind for m in again.mismatches) == ["amount_mismatch", "not_paid_at_gateway",
                                                        "refund_mismatch", "trade_mismatch"]
    await down.aclose()


async def test_report_of_an_unreachable_gateway_says_unchecked_and_bad_days_are_refused(shop, app, order):
    await shop.start_payment(order)
    down = httpx.AsyncClient(transport=Unreachable())
    shop.ctx.gateways.register(SandboxGateway(secret=shop.sandbox_secret, http=down))
    report = await reconciliation.reconcile_day(db=shop.ctx.db, gateways=shop.ctx.gateways, day=_today(),
                                                timezone="Asia/Shanghai")
    assert [m.kind for m in report.mismatches] == ["unchecked"]
    empty = await reconciliation.reconcile_day(db=shop.ctx.db, gateways=shop.ctx.gateways,
                                               day=_today() - dt.timedelta(days=1), timezone="Asia/Shanghai")
    assert empty.payments_checked == 0
    for query, code in [("date=2026-13-01", "validation_failed"), ("date=tomorrow", "validation_failed"),
                        ("date=2999-01-01", "invalid_reconciliation_day"),
                        (f"date={_today()}&gateway=nope", "unknown_gateway"),
                        (f"date={_today()}&gateway=Bad!", "validation_failed")]:
        response = await shop.client.get(f"/api/admin/reconciliation?{query}", headers=shop.admin)
        assert response.json()["code"] == code, (query, response.text)
    assert (await shop.client.get(f"/api/admin/reconciliation?date={_today()}")).status_code == 401
    await down.aclose()
