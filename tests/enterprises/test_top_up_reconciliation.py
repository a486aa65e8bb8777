"""Enterprises' online top-ups in the books and the daily reconciliation, through the real app and the sandbox
gateway on SQLite and PostgreSQL: a top-up paid online is booked to the gateway's clearing account (like an order's
payment) and reconciled as matched by its trade number; a bank transfer an operator confirms stays on the shop's
cash; a second payment of a credited request is booked as owed back and reported until it is marked refunded; a
paid top-up whose notification was lost is credited by the report; a credit the gateway does not know is reported."""

from __future__ import annotations

import datetime as dt
import re
from urllib.parse import parse_qs, urlsplit

from sqlalchemy import select

from enterprises.portal_support import csrf_token, logged_in, post_form
from enterprises.support import balance_of, books_balanced
from helpers import signed_notification
from quanyi.enterprises import top_up_alerts, top_ups
from quanyi.enterprises.models import TopUpExtraPayment, TopUpRequest
from quanyi.ledger.models import LedgerPosting
from quanyi.ledger.postings import account_balances
from quanyi.payments import reconciliation
from quanyi.payments.sandbox import server as sandbox_server
from quanyi.shoptime import shop_day, shop_zone

PAGE = "/portal/top-ups"
NOTIFY = "/enterprise-top-ups/sandbox/notify"


async def _start_online(client, amount: str):  # type: ignore[no-untyped-def]
    page = await client.get(PAGE)
    key = re.search(r'name="request_key" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
    sent = await client.post(PAGE, headers={"Origin": "http://test"}, data={
        "amount": amount, "payment_method": "online:sandbox", "payer_reference": "", "request_key": key,
        "csrf_token": csrf_token(page.text)})
    assert sent.status_code == 303, sent.text
    return sent


async def _pay_at_sandbox(shop, sent, *, notify: bool = True) -> str:  # type: ignore[no-untyped-def]
    """The admin pays at the sandbox's cashier (a real trade the gateway's query knows); its notification is sent
    to the shop, or lost. Returns the gateway's trade number."""
    token = parse_qs(urlsplit(sent.headers["location"]).query)["t"][0]
    async with shop.ctx.db.transaction() as session:
        trade = await sandbox_server.pay(session=session, ticket=sandbox_server.read_ticket(
            token, secret=shop.sandbox_secret))
        notice = sandbox_server.signed_notification(trade, secret=shop.sandbox_secret)
        trade_no = trade.trade_no
    if notify:
        answer = await shop.client.post(NOTIFY, data=notice)
        assert answer.text == "success", answer.text
    return trade_no


async def _request(shop) -> TopUpRequest:  # type: ignore[no-untyped-def]
    async with shop.ctx.db.read_session() as session:
        return (await session.scalars(select(TopUpRequest).order_by(TopUpRequest.id.desc()))).first()  # type: ignore[return-value]


async def _books(shop) -> dict[str, int]:  # type: ignore[no-untyped-def]
    async with shop.ctx.db.read_session() as session:
        return {code: total for (code, _), total in (await account_balances(session)).items()}


async def _reconcile(shop):  # type: ignore[no-untyped-def]
    day = shop_day(dt.datetime.now(dt.UTC), shop_zone(shop.ctx.settings.shop_timezone))
    return await reconciliation.reconcile_day(db=shop.ctx.db, gateways=shop.ctx.gateways, day=day,
                                              timezone=shop.ctx.settings.shop_timezone, gateway_name="sandbox")


async def test_an_online_top_up_is_booked_to_the_gateways_clearing_and_reconciled_as_matched(shop):
    client = await logged_in(shop, "ACME", "amy", "admin")
    trade_no = await _pay_at_sandbox(shop, await _start_online(client, "2,000.00"))
    request = await _request(shop)
    assert (request.status, request.gateway_trade_no) == ("credited", trade_no)
    books = await _books(shop)
    assert books["gateway_clearing:sandbox"] == 200_000 and "platform_cash" not in books
    assert await balance_of(shop, "ACME") == 200_000

    report = await _reconcile(shop)
    assert report.mismatches == [] and report.top_ups_checked == 1 and report.payments_checked == 0
    assert [(t.payment_no, t.gateway_trade_no, t.enterprise_code, t.amount_cents, t.status)
            for t in report.top_ups] == [(request.request_no, trade_no, "ACME", 200_000, "matched")]
    day = report.date.isoformat()
    api = (await shop.client.get(f"/api/admin/reconciliation?date={day}", headers=shop.admin)).json()
    assert api["top_ups_checked"] == 1 and api["top_ups"][0]["status"] == "matched" and api["mismatches"] == []
    await books_balanced(shop)


async def test_a_confirmed_bank_transfer_stays_on_the_shops_cash_and_out_of_the_gateway_report(shop):
    client = await logged_in(shop, "ACME", "amy", "admin")
    asked = await post_form(client, PAGE, {"amount": "500", "payer_reference": "BANK-77", "request_key": "bank-k-1"},
                            page_url=PAGE)
    assert asked.status_code == 303
    request = await _request(shop)
    async with shop.ctx.db.transaction() as session:
        await top_ups.confirm_top_up(session=session, code="ACME", request_no=request.request_no, actor="ella")
    books = await _books(shop)
    assert books["platform_cash"] == 50_000 and "gateway_clearing:sandbox" not in books
    report = await _reconcile(shop)
    assert (report.top_ups_checked, report.top_ups, report.mismatches) == (0, [], [])
    await books_balanced(shop)


async def test_a_second_payment_is_owed_back_and_reported_until_it_is_marked_refunded(shop):
    client = await logged_in(shop, "ACME", "amy", "admin")
    first = await _pay_at_sandbox(shop, await _start_online(client, "300"))
    request = await _request(shop)
    second = signed_notification(shop.sandbox_secret, payment_no=request.request_no, amount_cents=30_000,
                                 trade_no="SB-PAID-AGAIN")
    for _ in range(2):  # re-sent by the gateway: one row, one booking
        assert (await shop.client.post(NOTIFY, data=second)).text == "success"
    assert await balance_of(shop, "ACME") == 30_000  # never credited
    books = await _books(shop)
    assert books["gateway_clearing:sandbox"] == 60_000 and books["refunds_payable"] == -30_000
    assert await shop.count(LedgerPosting, LedgerPosting.kind == "top_up_duplicate") == 1
    await books_balanced(shop)

    report = await _reconcile(shop)
    assert [(m.kind, m.payment_no, m.enterprise_code, m.order_no) for m in report.mismatches] == [
        ("paid_twice", request.request_no, "ACME", "")]
    assert "SB-PAID-AGAIN" in report.mismatches[0].theirs
    assert sorted((t.gateway_trade_no, t.status) for t in report.top_ups) == [
        ("SB-PAID-AGAIN", "paid_twice"), (first, "matched")]

    for _ in range(2):  # marked refunded twice: booked back once
        async with shop.ctx.db.transaction() as session:
            await top_up_alerts.mark_refunded(session=session, code="ACME", trade_no="SB-PAID-AGAIN", actor="ella")
    books = await _books(shop)
    assert books["gateway_clearing:sandbox"] == 30_000 and books["refunds_payable"] == 0
    assert await shop.count(LedgerPosting, LedgerPosting.kind == "top_up_duplicate_refund") == 1
    report = await _reconcile(shop)
    assert report.mismatches == []
    assert sorted((t.gateway_trade_no, t.status) for t in report.top_ups) == [
        ("SB-PAID-AGAIN", "paid_twice_refunded"), (first, "matched")]
    await books_balanced(shop)


async def test_a_second_payment_seen_before_it_was_booked_books_nothing_when_refunded(shop):
    """Existing data: a second payment stored before receipts were booked has no posting to reverse."""
    client = await logged_in(shop, "ACME", "amy", "admin")
    await _pay_at_sandbox(shop, await _start_online(client, "300"))
    request = await _request(shop)
    async with shop.ctx.db.transaction() as session:
        session.add(TopUpExtraPayment(request_id=request.id, gateway="sandbox", gateway_trade_no="SB-OLD-EXTRA",
                                      amount_cents=30_000, currency="CNY"))
    assert [m.kind for m in (await _reconcile(shop)).mismatches] == ["paid_twice"]  # reported all the same
    async with shop.ctx.db.transaction() as session:
        _, changed = await top_up_alerts.mark_refunded(session=session, code="ACME", trade_no="SB-OLD-EXTRA",
                                                       actor="ella")
    assert changed
    assert await shop.count(LedgerPosting, LedgerPosting.kind.in_(["top_up_duplicate",
                                                                   "top_up_duplicate_refund"])) == 0
    assert (await _books(shop))["gateway_clearing:sandbox"] == 30_000
    await books_balanced(shop)


async def test_the_report_credits_a_paid_top_up_whose_notification_was_lost(shop):
    client = await logged_in(shop, "ACME", "amy", "admin")
    trade_no = await _pay_at_sandbox(shop, await _start_online(client, "450"), notify=False)
    await _start_online(client, "20")  # never paid: asked about, nothing to report
    request = (await shop.scalar(select(TopUpRequest).order_by(TopUpRequest.id)))
    assert request.status == "pending" and await balance_of(shop, "ACME") == 0

    report = await _reconcile(shop)
    assert report.top_ups_checked == 2
    assert [(m.kind, m.payment_no, m.repaired) for m in report.mismatches] == [
        ("paid_not_recorded", request.request_no, True)]
    assert [(t.gateway_trade_no, t.status) for t in report.top_ups] == [(trade_no, "matched")]
    assert await balance_of(shop, "ACME") == 45_000
    assert (await _books(shop))["gateway_clearing:sandbox"] == 45_000
    again = await _reconcile(shop)
    assert again.mismatches == [] and [t.status for t in again.top_ups] == ["matched"]
    assert await balance_of(shop, "ACME") == 45_000
    await books_balanced(shop)


async def test_a_top_up_credited_without_a_paid_trade_at_the_gateway_is_reported(shop):
    client = await logged_in(shop, "ACME", "amy", "admin")
    await _start_online(client, "100")
    request = await _request(shop)
    forged = signed_notification(shop.sandbox_secret, payment_no=request.request_no, amount_cents=10_000,
                                 trade_no="SB-NOT-AT-GATEWAY")  # signed, but the sandbox never took this money
    assert (await shop.client.post(NOTIFY, data=forged)).text == "success"
    report = await _reconcile(shop)
    assert [(m.kind, m.payment_no) for m in report.mismatches] == [("not_paid_at_gateway", request.request_no)]
    assert report.top_ups == []
    await books_balanced(shop)


async def test_the_consoles_report_lists_the_days_online_top_ups(shop):
    from console.support import logged_in as console_logged_in
    from console.support import post_form as console_post

    client = await logged_in(shop, "ACME", "amy", "admin")
    first = await _pay_at_sandbox(shop, await _start_online(client, "300"))
    request = await _request(shop)
    again = signed_notification(shop.sandbox_secret, payment_no=request.request_no, amount_cents=30_000,
                                trade_no="SB-PAID-AGAIN")
    assert (await shop.client.post(NOTIFY, data=again)).text == "success"
    operator = await console_logged_in(shop, "olivia", roles=("owner",))
    day = shop_day(dt.datetime.now(dt.UTC), shop_zone(shop.ctx.settings.shop_timezone)).isoformat()
    page = await console_post(operator, "/console/reconciliation?lang=en", {"date": day, "gateway": "sandbox"},
                              page_url="/console/reconciliation")
    assert page.status_code == 200, page.text
    assert 'data-testid="top-ups-checked">1<' in page.text
    assert page.text.count('data-testid="top-up-trade"') == 2 and first in page.text
    assert 'data-status="matched"' in page.text and 'data-status="paid_twice"' in page.text
    assert page.text.count('data-testid="mismatch-row"') == 1 and 'href="/console/enterprises/ACME"' in page.text
    chinese = await console_post(operator, "/console/reconciliation?lang=zh-CN", {"date": day, "gateway": "sandbox"},
                                 page_url="/console/reconciliation")
    assert 'data-testid="mismatch-kind" title="paid_twice">重复付款，待退款<' in chinese.text  # not the raw kind
