"""Top-up requests from the enterprise portal, through the real app on SQLite and PostgreSQL: an admin asks for a
bank-transfer top-up, the operator confirms it in the console and the balance is credited exactly once (a repeated
form, a repeated or concurrent confirmation credit nothing more), booked in the ledger and on the statement; a
refusal carries its reason and never credits; bad input gets a Chinese message and changes nothing; only the
enterprise's admins may ask."""

from __future__ import annotations

import asyncio
import re

import pytest
from sqlalchemy import func, select

from console.support import logged_in as console_logged_in
from console.support import post_form as console_post
from enterprises.portal_support import add_user, browser, csrf_token, logged_in, portal_login, post_form
from enterprises.support import add_enterprise, balance_of, books_balanced
from quanyi.enterprises import top_ups
from quanyi.enterprises.models import TopUpRequest
from quanyi.ledger.models import LedgerPosting
from quanyi.staff.models import StaffAuditEntry

PAGE = "/portal/top-ups"
CONSOLE = "/console/enterprises/ACME"
AMOUNT = "请填写正确的充值金额"


async def _ask(client, amount: str = "5,000.50", reference: str = "ICBC-20261204-001", **extra: str):  # type: ignore[no-untyped-def]
    page = await client.get(PAGE)
    key = re.search(r'name="request_key" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
    form = {"amount": amount, "payment_method": "bank_transfer", "payer_reference": reference, "note": "",
            "request_key": key, "csrf_token": csrf_token(page.text), **extra}
    return await client.post(PAGE, data=form, headers={"Origin": "http://test"}), form


async def _request_no(shop) -> str:  # type: ignore[no-untyped-def]
    return str(await shop.scalar(select(TopUpRequest.request_no).order_by(TopUpRequest.id.desc())))


async def test_an_admin_asks_and_the_confirmed_transfer_is_credited_once(shop):
    client = await logged_in(shop, "ACME", "amy", "admin")
    asked, form = await _ask(client)
    assert asked.status_code == 303 and "m=top_up_requested" in asked.headers["location"], asked.text
    again = await client.post(PAGE, data=form, headers={"Origin": "http://test"})  # the same form sent twice
    assert "m=top_up_repeated" in again.headers["location"]
    assert await shop.count(TopUpRequest) == 1
    no = await _request_no(shop)
    assert await balance_of(shop, "ACME") == 0  # asking credits nothing
    listed = await client.get(PAGE)
    assert no in listed.text and 'data-status="pending"' in listed.text and "待确认" in listed.text

    operator = await console_logged_in(shop, "ella", roles=("owner",))
    listing = await operator.get("/console/enterprises")
    assert 'data-testid="waiting-top-ups">待确认充值 1<' in listing.text
    shown = await operator.get(CONSOLE)
    assert f'data-no="{no}" data-status="pending"' in shown.text and "ICBC-20261204-001" in shown.text
    confirmed = await console_post(operator, f"{CONSOLE}/top-up-requests/{no}/confirm", page_url=CONSOLE)
    assert confirmed.status_code == 303 and "m=top_up_confirmed&" in confirmed.headers["location"]
    repeated = await console_post(operator, f"{CONSOLE}/top-up-requests/{no}/confirm", page_url=CONSOLE)
    assert "m=top_up_confirmed_before" in repeated.headers["location"]
    assert await balance_of(shop, "ACME") == 500_050
    refused = await console_post(operator, f"{CONSOLE}/top-up-requests/{no}/refuse", {"reason": "晚了"},
                                 page_url=CONSOLE)
    assert refused.status_code == 409 and await balance_of(shop, "ACME") == 500_050

    home = await client.get("/portal")
    assert 'data-testid="balance" class="p-big ">¥5,000.50<' in home.text
    statement = await client.get("/portal/statement")
    assert "ICBC-20261204-001" in statement.text and no in statement.text and "¥5,000.50" in statement.text
    assert 'data-status="credited"' in (await client.get(PAGE)).text
    assert 'data-testid="waiting-top-ups"' not in (await operator.get("/console/enterprises")).text
    assert await shop.count(LedgerPosting, LedgerPosting.reference.like(f"%{top_ups.posting_reference(no)}")) == 1
    actions = (await shop.scalar(select(func.count()).select_from(StaffAuditEntry).where(
        StaffAuditEntry.action.in_(("portal_top_up_requested", "enterprise_top_up_credited")))))
    assert actions == 2  # one each: the repeats recorded nothing
    await books_balanced(shop)


@pytest.mark.parametrize(("amount", "reference", "detail"), [
    ("", "REF-1", AMOUNT), ("0", "REF-1", AMOUNT), ("-5", "REF-1", AMOUNT), ("12.345", "REF-1", "最多两位小数"),
    ("abc", "REF-1", AMOUNT), ("1e5", "REF-1", AMOUNT), ("1,50", "REF-1", AMOUNT),
    ("5,00.50", "REF-1", AMOUNT), ("100000000.01", "REF-1", AMOUNT), ("100", "", "流水号"),
    ("100", "R" * 65, "流水号"),
    ("100", "REF\x01", "流水号"), ("100", "REF-1", "付款方式"),
])
async def test_bad_requests_are_refused_in_chinese_and_change_nothing(shop, amount, reference, detail):
    client = await logged_in(shop, "ACME", "amy", "admin")
    extra = {"payment_method": "alipay"} if detail == "付款方式" else {}
    refused, _ = await _ask(client, amount=amount, reference=reference, **extra)
    if "\x01" in reference:  # refused before the handler by the check every portal form gets (web.form_text)
        assert refused.status_code == 422 and "控制字符" in refused.text and "未做任何更改" in refused.text
    else:
        assert refused.status_code == 422 and detail in refused.text
        assert "充值申请填写有误，未做任何更改" in refused.text
    assert await shop.count(TopUpRequest) == 0


async def test_a_stale_form_and_a_flood_of_requests_are_refused(shop):
    client = await logged_in(shop, "ACME", "amy", "admin")
    stale = await post_form(client, PAGE, {"amount": "100", "payer_reference": "R1", "request_key": "x"},
                            page_url=PAGE)
    assert stale.status_code == 422 and "刷新页面" in stale.text
    for i in range(top_ups.MAX_PENDING):
        assert (await _ask(client, amount="100", reference=f"R{i}"))[0].status_code == 303
    flooded, _ = await _ask(client, amount="100", reference="R-last")
    assert flooded.status_code == 409 and "待确认" in flooded.text
    assert await shop.count(TopUpRequest) == top_ups.MAX_PENDING


async def test_only_the_enterprises_admins_may_ask(shop):
    admin = await logged_in(shop, "ACME", "amy", "admin")
    for role in ("purchaser", "viewer"):
        await add_user(shop, "ACME", f"u-{role}", role)
        client = browser(shop)
        assert (await portal_login(client, "ACME", f"u-{role}")).status_code == 303
        page = await client.get(PAGE)
        assert page.status_code == 200 and 'data-testid="top-up-form"' not in page.text
        refused = await post_form(client, PAGE, {"amount": "100", "payer_reference": "R1",
                                                 "request_key": "abcdefgh12"}, page_url=PAGE)
        assert refused.status_code == 403
    assert 'data-testid="top-up-form"' in (await admin.get(PAGE)).text
    assert await shop.count(TopUpRequest) == 0


async def test_a_refusal_has_a_reason_and_a_refused_request_is_never_credited(shop):
    client = await logged_in(shop, "ACME", "amy", "admin")
    await _ask(client)
    no = await _request_no(shop)
    operator = await console_logged_in(shop, "ella", roles=("owner",))
    url = f"{CONSOLE}/top-up-requests/{no}"
    silent = await console_post(operator, f"{url}/refuse", {"reason": "  "}, page_url=CONSOLE)
    assert silent.status_code == 422 and "请填写拒绝原因" in silent.text
    refused = await console_post(operator, f"{url}/refuse", {"reason": "未收到该笔转账"}, page_url=CONSOLE)
    assert refused.status_code == 303 and "m=top_up_refused" in refused.headers["location"]
    late = await console_post(operator, f"{url}/confirm", page_url=CONSOLE)
    assert late.status_code == 409 and "已被拒绝" in late.text
    assert await balance_of(shop, "ACME") == 0
    shown = await client.get(PAGE)
    assert 'data-status="refused"' in shown.text and "未收到该笔转账" in shown.text
    assert await shop.count(LedgerPosting, LedgerPosting.kind == "customer_top_up") == 0


async def test_another_enterprises_request_is_not_found(shop):
    client = await logged_in(shop, "ACME", "amy", "admin")
    await _ask(client)
    no = await _request_no(shop)
    await add_enterprise(shop, "BETA")
    other = await logged_in(shop, "BETA", "bob", "admin", register=False)
    assert no not in (await other.get(PAGE)).text
    operator = await console_logged_in(shop, "ella", roles=("owner",))
    wrong = await console_post(operator, f"/console/enterprises/BETA/top-up-requests/{no}/confirm",
                               page_url="/console/enterprises/BETA")
    assert wrong.status_code == 404
    assert await balance_of(shop, "ACME") == 0 and await balance_of(shop, "BETA") == 0


async def test_concurrent_confirmations_credit_exactly_once(shop):
    await add_enterprise(shop, "ACME")
    async with shop.ctx.db.transaction() as session:
        made, _ = await top_ups.request_top_up(
            session=session, code="ACME", amount_cents=123_456, method="bank_transfer", payer_reference="CCB-77",
            actor="acme/amy", request_key="concurrent-1")
        no = made.request_no

    async def confirm(i: int) -> bool:
        async with shop.ctx.db.transaction() as session:
            _, credited = await top_ups.confirm_top_up(session=session, code="ACME", request_no=no, actor=f"op{i}")
            return credited

    results = await asyncio.gather(*(confirm(i) for i in range(8)), return_exceptions=True)
    assert not [r for r in results if isinstance(r, BaseException)], results
    assert sum(1 for r in results if r) == 1
    assert await balance_of(shop, "ACME") == 123_456
    assert await shop.count(LedgerPosting, LedgerPosting.kind == "customer_top_up") == 1
    await books_balanced(shop)


async def test_the_admin_api_lists_confirms_and_refuses_requests(shop):
    client = await logged_in(shop, "ACME", "amy", "admin")
    await _ask(client, amount="700", reference="ABC-1")
    first = await _request_no(shop)
    await _ask(client, amount="50", reference="ABC-2")
    second = await _request_no(shop)
    api = "/api/admin/enterprises/ACME/top-up-requests"
    listed = (await shop.client.get(api, headers=shop.admin)).json()
    assert [(r["request_no"], r["status"], r["amount_cents"]) for r in listed] == [
        (second, "pending", 5_000), (first, "pending", 70_000)]
    assert (await shop.client.get(api)).status_code == 401
    confirmed = [await shop.client.post(f"{api}/{first}/confirm", headers=shop.admin) for _ in range(2)]
    assert [(c.status_code, c.json()["changed"], c.json()["status"]) for c in confirmed] == [
        (200, True, "credited"), (200, False, "credited")]
    silent = await shop.client.post(f"{api}/{second}/refuse", headers=shop.admin, json={"reason": ""})
    assert silent.status_code == 422
    refused = await shop.client.post(f"{api}/{second}/refuse", headers=shop.admin, json={"reason": "金额不符"})
    assert refused.json()["status"] == "refused" and refused.json()["refusal_reason"] == "金额不符"
    late = await shop.client.post(f"{api}/{second}/confirm", headers=shop.admin)
    assert late.status_code == 409
    assert (await shop.client.post(f"{api}/TUNOSUCH/confirm",
                                   headers=shop.admin)).status_code == 404
    assert await balance_of(shop, "ACME") == 70_000
    await books_balanced(shop)


async def test_concurrent_requests_never_pass_the_open_request_limit(shop):
    """Many top-up requests of one enterprise at once, each in its own transaction on its own connection: exactly
    MAX_PENDING are made, the rest are refused (the enterprise's row is locked before counting)."""
    await logged_in(shop, "ACME", "amy", "admin")

    async def ask(i: int) -> bool:
        try:
            async with shop.ctx.db.transaction() as session:
                await top_ups.request_top_up(session=session, code="ACME", amount_cents=100, method="bank_transfer",
                                             payer_reference=f"RACE-{i}", actor="amy",
                                             request_key=f"race-key-{i:04d}-abcdefgh")
            return True
        except top_ups.TooManyPendingTopUps:
            return False

    made = await asyncio.gather(*(ask(i) for i in range(3 * top_ups.MAX_PENDING)))
    assert sum(made) == top_ups.MAX_PENDING
    assert await shop.count(TopUpRequest) == top_ups.MAX_PENDING
