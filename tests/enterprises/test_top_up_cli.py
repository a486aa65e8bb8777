"""`quanyi enterprises top-ups list/confirm/refuse/refunded` over the same services as the console, on SQLite and
PostgreSQL: confirming credits once (a repeat says so and credits nothing), refusing needs a reason and credits
nothing, a second payment of a credited online top-up is listed until marked refunded; decisions are audited."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from enterprises.portal_support import csrf_token, logged_in
from enterprises.support import balance_of, books_balanced, run_cli
from helpers import Shop, signed_notification
from quanyi.enterprises.models import TopUpRequest
from quanyi.staff.models import StaffAuditEntry

PAGE = "/portal/top-ups"


async def _ask(client, amount: str, method: str = "bank_transfer", reference: str = "") -> None:  # type: ignore[no-untyped-def]
    page = await client.get(PAGE)
    key = re.search(r'name="request_key" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
    sent = await client.post(PAGE, headers={"Origin": "http://test"}, data={
        "amount": amount, "payment_method": method, "payer_reference": reference, "request_key": key,
        "csrf_token": csrf_token(page.text)})
    assert sent.status_code == 303, sent.text


async def _numbers(shop: Shop) -> list[str]:
    async with shop.ctx.db.read_session() as session:
        return list(await session.scalars(select(TopUpRequest.request_no).order_by(TopUpRequest.id)))


async def test_operators_decide_top_up_requests_from_the_cli(shop: Shop, monkeypatch: pytest.MonkeyPatch):
    client = await logged_in(shop, "ACME", "amy", "admin")
    await _ask(client, "3000", reference="ICBC-1")
    await _ask(client, "100", reference="ICBC-2")
    await _ask(client, "50", "online:sandbox")
    first, second, online = await _numbers(shop)

    listed = await run_cli(shop, monkeypatch, "enterprises", "top-ups", "list", "ACME")
    assert listed.exit_code == 0, listed.output
    assert all(no in listed.output for no in (first, second, online)) and "ICBC-1" in listed.output
    assert "unpaid" in listed.output

    for said in ("credited.", "was credited before"):  # a repeat credits nothing
        confirmed = await run_cli(shop, monkeypatch, "enterprises", "top-ups", "confirm", "ACME", first)
        assert confirmed.exit_code == 0 and said in confirmed.output, confirmed.output
    assert await balance_of(shop, "ACME") == 300_000
    no_reason = await run_cli(shop, monkeypatch, "enterprises", "top-ups", "refuse", "ACME", second, "--reason", " ")
    assert no_reason.exit_code != 0 and "拒绝原因" in no_reason.output, no_reason.output
    refused = await run_cli(shop, monkeypatch, "enterprises", "top-ups", "refuse", "ACME", second, "--reason",
                            "未收到这笔转账")
    assert refused.exit_code == 0 and "refused" in refused.output, refused.output
    not_online = await run_cli(shop, monkeypatch, "enterprises", "top-ups", "confirm", "ACME", online)
    assert not_online.exit_code != 0 and "在线支付" in not_online.output, not_online.output
    unknown = await run_cli(shop, monkeypatch, "enterprises", "top-ups", "confirm", "OTHER", first)
    assert unknown.exit_code != 0
    assert await balance_of(shop, "ACME") == 300_000

    for trade in ("SB-1", "SB-2"):  # paid twice: the second is not credited, and listed to refund
        answer = await shop.client.post("/enterprise-top-ups/sandbox/notify", data=signed_notification(
            shop.sandbox_secret, payment_no=online, amount_cents=5_000, trade_no=trade))
        assert answer.text == "success"
    listed = await run_cli(shop, monkeypatch, "enterprises", "top-ups", "list", "ACME")
    assert "SB-2" in listed.output and "未收到这笔转账" in listed.output, listed.output
    marked = await run_cli(shop, monkeypatch, "enterprises", "top-ups", "refunded", "ACME", "SB-2")
    assert marked.exit_code == 0 and "marked refunded" in marked.output, marked.output
    listed = await run_cli(shop, monkeypatch, "enterprises", "top-ups", "list", "ACME")
    assert "SB-2" not in listed.output
    assert await balance_of(shop, "ACME") == 305_000
    async with shop.ctx.db.read_session() as session:
        actions = list(await session.scalars(select(StaffAuditEntry.action).where(StaffAuditEntry.actor == "cli")))
    assert sorted(actions) == ["enterprise_top_up_credited", "enterprise_top_up_extra_refunded",
                               "enterprise_top_up_refused"]
    await books_balanced(shop)
