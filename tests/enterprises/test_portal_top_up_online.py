"""Top-ups paid online from the portal, through the real app and the sandbox gateway on SQLite and PostgreSQL: the
admin is sent to the gateway's cashier; the signed notification credits the balance once (repeated and concurrent
copies credit nothing more); a wrong amount, a bad signature, a bank-transfer request's number and an unknown
number credit nothing; an active query credits a paid request whose notification was lost; an operator can neither
confirm nor refuse an online request."""

from __future__ import annotations

import asyncio
import re
import time
from urllib.parse import parse_qs, urlsplit

from sqlalchemy import select

from console.support import logged_in as console_logged_in
from console.support import post_form as console_post
from enterprises.portal_support import csrf_token, logged_in, post_form
from enterprises.support import balance_of, books_balanced
from helpers import signed_notification
from quanyi.enterprises.models import TopUpRequest
from quanyi.ledger.models import LedgerPosting
from quanyi.payments.sandbox import server as sandbox_server
from quanyi.staff.models import StaffAuditEntry

PAGE = "/portal/top-ups"
NOTIFY = "/enterprise-top-ups/sandbox/notify"


async def _pay_online(client, amount: str = "2,000.00"):  # type: ignore[no-untyped-def]
    page = await client.get(PAGE)
    assert '<option value="online:sandbox"' in page.text and "online:stripe" not in page.text
    key = re.search(r'name="request_key" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
    return await client.post(PAGE, headers={"Origin": "http://test"}, data={
        "amount": amount, "payment_method": "online:sandbox", "payer_reference": "", "request_key": key,
        "csrf_token": csrf_token(page.text)})


async def _request(shop) -> TopUpRequest:  # type: ignore[no-untyped-def]
    async with shop.ctx.db.read_session() as session:
        return (await session.scalars(select(TopUpRequest).order_by(TopUpRequest.id.desc()))).first()  # type: ignore[return-value]


def _token(sent) -> str:  # type: ignore[no-untyped-def]
    return parse_qs(urlsplit(sent.headers["location"]).query)["t"][0]


def _notice(shop, request: TopUpRequest, **overrides):  # type: ignore[no-untyped-def]
    return signed_notification(shop.sandbox_secret, payment_no=request.request_no,
                               amount_cents=overrides.pop("amount_cents", request.amount_cents), **overrides)


async def test_an_online_top_up_is_credited_once_by_the_gateways_notification(shop):
    client = await logged_in(shop, "ACME", "amy", "admin")
    sent = await _pay_online(client)
    assert sent.status_code == 303 and "/sandbox/cashier?t=" in sent.headers["location"], sent.text
    request = await _request(shop)
    assert (request.method, request.gateway, request.status, request.amount_cents) == ("online", "sandbox",
                                                                                       "pending", 200_000)
    ticket = sandbox_server.read_ticket(_token(sent), secret=shop.sandbox_secret)
    assert ticket.notify_url.endswith(NOTIFY) and ticket.payment_no == request.request_no
    assert 'data-testid="top-up-pay"' in (await client.get(PAGE)).text and await balance_of(shop, "ACME") == 0

    notice = _notice(shop, request, trade_no="SB-TOPUP-1")
    for _ in range(2):  # the gateway re-sends until acknowledged: the copy credits nothing more
        answer = await shop.client.post(NOTIFY, data=notice)
        assert answer.status_code == 200 and answer.text == "success", answer.text
    assert await balance_of(shop, "ACME") == 200_000
    credited = await _request(shop)
    assert (credited.status, credited.gateway_trade_no, credited.decided_by) == ("credited", "SB-TOPUP-1",
                                                                                "gateway:sandbox")
    other = await shop.client.post(NOTIFY, data=_notice(shop, request, trade_no="SB-TOPUP-2"))
    assert other.text == "success" and await balance_of(shop, "ACME") == 200_000  # a second payment: logged
    statement = await client.get("/portal/statement")
    assert "SB-TOPUP-1" in statement.text and request.request_no in statement.text
    assert await shop.count(StaffAuditEntry, StaffAuditEntry.action == "enterprise_top_up_paid_online") == 1
    await books_balanced(shop)


async def test_false_notifications_credit_nothing(shop):
    client = await logged_in(shop, "ACME", "amy", "admin")
    await _pay_online(client)
    request = await _request(shop)
    for bad in (_notice(shop, request, amount_cents=request.amount_cents + 1),
                _notice(shop, request, currency="USD"),
                {**_notice(shop, request), "sign": "0" * 64},
                signed_notification(shop.sandbox_secret, payment_no="TUNOSUCHREQUEST", amount_cents=200_000)):
        answer = await shop.client.post(NOTIFY, data=bad)
        assert answer.status_code != 200 or answer.text != "success", bad
    bank = await post_form(client, PAGE, {"amount": "100", "payer_reference": "R-1", "request_key": "bank-key-1"},
                           page_url=PAGE)
    assert bank.status_code == 303
    transfer = await _request(shop)
    forged = await shop.client.post(NOTIFY, data=_notice(shop, transfer))  # a bank transfer is never paid online
    assert forged.text != "success"
    for_orders = await shop.client.post("/payments/sandbox/notify", data=_notice(shop, request))
    assert for_orders.text != "success"  # the orders' endpoint knows no top-up
    assert await balance_of(shop, "ACME") == 0 and await shop.count(LedgerPosting) == 0


async def test_concurrent_copies_of_a_notification_credit_once(shop):
    client = await logged_in(shop, "ACME", "amy", "admin")
    await _pay_online(client, amount="1234.56")
    request = await _request(shop)
    notice = _notice(shop, request, trade_no="SB-RACE")
    answers = await asyncio.gather(*(shop.client.post(NOTIFY, data=notice) for _ in range(8)))
    assert all(a.status_code in (200, 400, 409, 500) for a in answers)
    assert any(a.text == "success" for a in answers)
    retry = await shop.client.post(NOTIFY, data=notice)  # whoever was asked to retry: a no-op now
    assert retry.text == "success"
    assert await balance_of(shop, "ACME") == 123_456
    assert await shop.count(LedgerPosting, LedgerPosting.kind == "customer_top_up") == 1
    await books_balanced(shop)


async def test_a_lost_notification_is_made_good_by_asking_the_gateway(shop, monkeypatch):
    from quanyi.enterprises import top_up_payments

    client = await logged_in(shop, "ACME", "amy", "admin")
    sent = await _pay_online(client, amount="300")
    request = await _request(shop)
    unpaid = await post_form(client, f"{PAGE}/{request.request_no}/check", page_url=PAGE)
    assert unpaid.status_code == 303 and "m=top_up_unpaid" in unpaid.headers["location"]
    ticket = sandbox_server.read_ticket(_token(sent), secret=shop.sandbox_secret)
    async with shop.ctx.db.transaction() as session:  # paid at the sandbox; its notification never arrives
        await sandbox_server.pay(session=session, ticket=ticket)
    # pressed again at once: answered from the stored state, the gateway is not asked (else it would credit now)
    throttled = await post_form(client, f"{PAGE}/{request.request_no}/check", page_url=PAGE)
    assert "m=top_up_unpaid" in throttled.headers["location"] and await balance_of(shop, "ACME") == 0
    monkeypatch.setattr(top_up_payments, "CHECK_EVERY_SECONDS", 0.05)  # the window has passed
    await asyncio.sleep(0.1)
    paid = await post_form(client, f"{PAGE}/{request.request_no}/check", page_url=PAGE)
    assert "m=top_up_paid" in paid.headers["location"], paid.headers["location"]
    assert await balance_of(shop, "ACME") == 30_000
    again = await post_form(client, f"{PAGE}/{request.request_no}/check", page_url=PAGE)
    assert "m=top_up_credited_before" in again.headers["location"] and await balance_of(shop, "ACME") == 30_000
    shown = await client.get(again.headers["location"])
    assert f"充值申请 {request.request_no} 已入账" in shown.text and "尚未收到" not in shown.text
    await books_balanced(shop)


async def test_repeated_check_presses_ask_the_gateway_once_per_window(shop):
    """Many presses of 查询支付结果 at once, from many requests: one gateway query per request per window."""
    from quanyi.enterprises import top_up_payments

    client = await logged_in(shop, "ACME", "amy", "admin")
    await _pay_online(client, amount="300")
    request = await _request(shop)
    gateway = shop.ctx.gateways.get("sandbox")
    asked: list[str] = []
    real_query = type(gateway).query_trade

    async def counted(self, payment_no):  # type: ignore[no-untyped-def]
        asked.append(payment_no)
        return await real_query(self, payment_no)

    type(gateway).query_trade = counted  # the real sandbox query, counted
    at = time.time()  # presses in the same instant (a loaded test machine must not stretch them past the window)
    try:
        answers = await asyncio.gather(*(top_up_payments.check_payment(
            db=shop.ctx.db, gateway=gateway, counters=shop.ctx.risk.counters, code="ACME",
            request_no=request.request_no, at=at) for _ in range(6)))
    finally:
        type(gateway).query_trade = real_query
    assert answers == ["pending"] * 6 and asked == [request.request_no]


async def test_an_operator_cannot_confirm_or_refuse_an_online_request(shop):
    client = await logged_in(shop, "ACME", "amy", "admin")
    await _pay_online(client)
    request = await _request(shop)
    operator = await console_logged_in(shop, "ella", roles=("owner",))
    page = "/console/enterprises/ACME"
    assert 'data-testid="top-up-confirm"' not in (await operator.get(page)).text
    for action, data in (("confirm", {}), ("refuse", {"reason": "不要了"})):
        answer = await console_post(operator, f"{page}/top-up-requests/{request.request_no}/{action}", data,
                                    page_url=page)
        assert answer.status_code == 409, action
    assert (await _request(shop)).status == "pending" and await balance_of(shop, "ACME") == 0


async def test_unpaid_online_checkouts_stop_counting_against_the_limit_after_a_day(shop):
    import datetime as dt

    from sqlalchemy import update

    from quanyi.enterprises import top_ups

    client = await logged_in(shop, "ACME", "amy", "admin")
    for _ in range(top_ups.MAX_PENDING):
        assert (await _pay_online(client, amount="10")).status_code == 303
    refused = await _pay_online(client, amount="10")
    assert refused.status_code == 409
    async with shop.ctx.db.transaction() as session:  # a day later, none of them paid
        await session.execute(update(TopUpRequest).values(
            requested_at=dt.datetime.now(dt.UTC) - top_ups.UNPAID_COUNTS_FOR - dt.timedelta(minutes=1)))
    assert (await _pay_online(client, amount="10")).status_code == 303


async def test_the_background_loop_credits_a_paid_top_up_whose_notification_was_lost(shop):
    import datetime as dt

    from sqlalchemy import update

    from quanyi.enterprises import top_up_payments

    client = await logged_in(shop, "ACME", "amy", "admin")
    sent = await _pay_online(client, amount="450")
    await _pay_online(client, amount="20")  # never paid: asked about, left pending
    assert await top_up_payments.query_unpaid_once(db=shop.ctx.db, registry=shop.ctx.gateways) == 0  # too new
    async with shop.ctx.db.transaction() as session:
        await sandbox_server.pay(session=session, ticket=sandbox_server.read_ticket(
            _token(sent), secret=shop.sandbox_secret))
        await session.execute(update(TopUpRequest).values(
            requested_at=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)))
    assert await top_up_payments.query_unpaid_once(db=shop.ctx.db, registry=shop.ctx.gateways) == 1
    assert await top_up_payments.query_unpaid_once(db=shop.ctx.db, registry=shop.ctx.gateways) == 0
    assert await balance_of(shop, "ACME") == 45_000
    assert await shop.count(TopUpRequest, TopUpRequest.status == "pending") == 1
    await books_balanced(shop)


async def test_a_top_up_credited_by_asking_the_gateway_is_audited_like_a_notified_one(shop):
    """The 查询支付结果 button and the background loop credit through the gateway's answer: the audit log says so
    (gateway as actor), as it does for a notification; a check that credits nothing writes nothing."""
    import datetime as dt

    from sqlalchemy import update

    from quanyi.enterprises import top_up_payments

    client = await logged_in(shop, "ACME", "amy", "admin")
    by_button = await _pay_online(client, amount="300")
    request = await _request(shop)
    by_loop = await _pay_online(client, amount="450")
    async with shop.ctx.db.transaction() as session:
        for sent in (by_button, by_loop):
            await sandbox_server.pay(session=session, ticket=sandbox_server.read_ticket(
                _token(sent), secret=shop.sandbox_secret))
    paid = await post_form(client, f"{PAGE}/{request.request_no}/check", page_url=PAGE)
    assert "m=top_up_paid" in paid.headers["location"]
    await post_form(client, f"{PAGE}/{request.request_no}/check", page_url=PAGE)  # credits nothing more
    async with shop.ctx.db.transaction() as session:
        await session.execute(update(TopUpRequest).values(
            requested_at=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)))
    assert await top_up_payments.query_unpaid_once(db=shop.ctx.db, registry=shop.ctx.gateways) == 1
    assert await balance_of(shop, "ACME") == 75_000
    async with shop.ctx.db.read_session() as session:
        audited = (await session.scalars(select(StaffAuditEntry).where(
            StaffAuditEntry.action == "enterprise_top_up_paid_online").order_by(StaffAuditEntry.id))).all()
    assert [(row.actor, row.object_id) for row in audited] == [("gateway:sandbox", "ACME")] * 2
    assert request.request_no in audited[0].summary and "30000 cents CNY" in audited[0].summary


async def test_the_background_loop_asks_about_every_unpaid_top_up_not_only_the_first_page(shop):
    """More unpaid checkouts in the window than one page (`limit`): the paid one behind them is still asked
    about and credited in the same turn, not left behind the same first page every minute."""
    import datetime as dt

    from sqlalchemy import update

    from quanyi.enterprises import top_up_payments

    client = await logged_in(shop, "ACME", "amy", "admin")
    for _ in range(2):
        await _pay_online(client, amount="20")  # abandoned at the cashier
    paid = await _pay_online(client, amount="450")
    async with shop.ctx.db.transaction() as session:
        await sandbox_server.pay(session=session, ticket=sandbox_server.read_ticket(
            _token(paid), secret=shop.sandbox_secret))
        await session.execute(update(TopUpRequest).values(
            requested_at=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)))
    assert await top_up_payments.query_unpaid_once(db=shop.ctx.db, registry=shop.ctx.gateways, limit=2) == 1
    assert await balance_of(shop, "ACME") == 45_000
