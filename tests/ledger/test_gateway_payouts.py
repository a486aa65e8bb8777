"""Gateway settlements (渠道结算): a payout empties the gateway's clearing account into the bank and the fee account,
balanced, once per settlement number (also when the same statement is sent twice at the same moment); bad input
is a 4xx that books nothing."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import pytest
from sqlalchemy import func, select

from quanyi.ledger import accounts
from quanyi.ledger.models import GatewayPayout
from quanyi.ledger.postings import Line, account_balances, post
from quanyi.shoptime import shop_day, shop_zone

from .support import posting_count, unbalanced_postings

URL = "/api/admin/ledger/gateway-payouts"


def _today(shop: Any) -> dt.date:
    return shop_day(dt.datetime.now(dt.UTC), shop_zone(shop.ctx.settings.shop_timezone))


def _payout(shop: Any, settlement_no: str = "2088SETTLE0001", **fields: Any) -> dict[str, Any]:
    today = _today(shop).isoformat()
    return {"gateway": "sandbox", "settlement_no": settlement_no, "period_from": today, "period_to": today,
            "net_cents": 3900, "fee_cents": 60, **fields}


async def _paid_orders(shop: Any, count: int, price_cents: int = 1980) -> int:
    """`count` orders paid at the sandbox; returns what its clearing account holds."""
    sku = await shop.make_sku(price_cents=price_cents)
    await shop.stock(sku, count)
    for _ in range(count):
        await shop.pay(await shop.create_order(sku.id))
    return count * price_cents


async def _balances(shop: Any) -> dict[str, int]:
    async with shop.ctx.db.read_session() as session:
        return {code: cents for (code, _), cents in (await account_balances(session)).items()}


async def _payouts(shop: Any) -> int:
    async with shop.ctx.db.read_session() as session:
        return int(await session.scalar(select(func.count()).select_from(GatewayPayout)) or 0)


async def test_a_payout_moves_net_to_the_bank_and_the_fee_to_expenses_balanced(shop, app):
    assert await _paid_orders(shop, 2) == 3960
    response = await shop.client.post(URL, headers=shop.admin, json=_payout(shop, note="到账 ICBC 6222"))
    assert response.status_code == 201, response.text
    body = response.json()
    assert (body["net_cents"], body["fee_cents"], body["cleared_cents"], body["gross_cents"]) == (3900, 60, 3960, 3960)
    assert (body["book_receipts_cents"], body["book_refunds_cents"], body["difference_cents"]) == (3960, 0, 0)
    assert body["posting_reference"] == "gateway_payout:sandbox:2088SETTLE0001"
    balances = await _balances(shop)
    assert balances["gateway_clearing:sandbox"] == 0
    assert balances["platform_cash"] == 3900 and balances["gateway_fees:sandbox"] == 60
    assert await unbalanced_postings(shop.ctx) == []
    postings = (await shop.client.get("/api/admin/ledger/trial-balance", headers=shop.admin)).json()
    assert postings["balanced"]

    owed = (await shop.client.get("/api/admin/ledger/gateway-clearing", headers=shop.admin)).json()
    assert [(g["gateway"], g["balance_cents"], g["paid_out_cents"], g["fees_cents"], g["payouts"]) for g in owed
            if g["gateway"] == "sandbox"] == [("sandbox", 0, 3900, 60, 1)]
    listed = (await shop.client.get(URL, headers=shop.admin)).json()
    assert [(p["settlement_no"], p["note"], p["recorded_by"]) for p in listed] == [
        ("2088SETTLE0001", "到账 ICBC 6222", "admin")]


async def test_refunds_the_gateway_netted_are_not_taken_out_of_clearing_twice(shop, app):
    await _paid_orders(shop, 2)
    async with shop.ctx.db.transaction() as session:  # one of them refunded at the gateway meanwhile
        await post(session, reference="refund_paid:test", kind="refund_paid",
                   lines=[Line(accounts.REFUNDS_PAYABLE, 1980, "CNY"), Line("gateway_clearing:sandbox", -1980, "CNY")])
    # Gross 3960 - refunds 1980 - fee 12 = 1968 into the bank: exactly what clearing holds (1980) leaves it.
    response = await shop.client.post(URL, headers=shop.admin,
                                      json=_payout(shop, net_cents=1968, fee_cents=12, refunds_cents=1980))
    assert response.status_code == 201, response.text
    body = response.json()
    assert (body["gross_cents"], body["book_receipts_cents"], body["book_refunds_cents"]) == (3960, 3960, 1980)
    assert body["difference_cents"] == 0
    assert (await _balances(shop))["gateway_clearing:sandbox"] == 0


async def test_the_same_settlement_twice_is_refused_409_and_booked_once(shop, app):
    await _paid_orders(shop, 4)
    first = await shop.client.post(URL, headers=shop.admin, json=_payout(shop))
    assert first.status_code == 201, first.text
    again = await shop.client.post(URL, headers=shop.admin, json=_payout(shop, net_cents=100, fee_cents=0))
    assert again.status_code == 409 and again.json()["code"] == "gateway_payout_exists"
    assert "already recorded" in again.json()["detail"]
    assert await posting_count(shop.ctx, kind="gateway_payout") == 1 and await _payouts(shop) == 1
    assert (await _balances(shop))["gateway_clearing:sandbox"] == 4 * 1980 - 3960


async def test_concurrent_copies_of_one_settlement_book_exactly_one(shop, app):
    await _paid_orders(shop, 2)
    answers = await asyncio.gather(*(shop.client.post(URL, headers=shop.admin, json=_payout(shop))
                                     for _ in range(6)))
    statuses = sorted(a.status_code for a in answers)
    assert statuses == [201, 409, 409, 409, 409, 409], [a.text for a in answers]
    assert {a.json()["code"] for a in answers if a.status_code == 409} == {"gateway_payout_exists"}
    assert await posting_count(shop.ctx, kind="gateway_payout") == 1 and await _payouts(shop) == 1
    balances = await _balances(shop)
    assert (balances["gateway_clearing:sandbox"], balances["platform_cash"]) == (0, 3900)


async def test_concurrent_payouts_never_take_more_than_clearing_holds(shop, app):
    await _paid_orders(shop, 2)  # 3960: room for two payouts of 1980, not four
    answers = await asyncio.gather(*(
        shop.client.post(URL, headers=shop.admin, json=_payout(shop, f"S-{n}", net_cents=1970, fee_cents=10))
        for n in range(4)))
    assert sorted(a.status_code for a in answers) == [201, 201, 409, 409], [a.text for a in answers]
    assert {a.json()["code"] for a in answers if a.status_code == 409} == {"payout_exceeds_clearing"}
    assert (await _balances(shop))["gateway_clearing:sandbox"] == 0
    assert await unbalanced_postings(shop.ctx) == []


def _bad(shop: Any, today: dt.date, case: str) -> dict[str, Any]:
    tomorrow = (today + dt.timedelta(days=1)).isoformat()
    yesterday = (today - dt.timedelta(days=1)).isoformat()
    return {
        "net_zero": _payout(shop, net_cents=0), "net_negative": _payout(shop, net_cents=-5),
        "net_float": _payout(shop, net_cents=39.5), "net_text": _payout(shop, net_cents="3900"),
        "fee_negative": _payout(shop, fee_cents=-1), "refunds_negative": _payout(shop, refunds_cents=-1),
        "net_overflow": _payout(shop, net_cents=10**12), "sum_overflow": _payout(shop, net_cents=10**10, fee_cents=1),
        "period_backwards": _payout(shop, period_from=today.isoformat(), period_to=yesterday),
        "period_future": _payout(shop, period_to=tomorrow),
        "period_too_long": _payout(shop, period_from="2024-01-01"),
        "period_ancient": _payout(shop, period_from="0001-01-01", period_to="0001-01-02"),
        "period_not_a_day": _payout(shop, period_to="2026-13-01"),
        "unknown_gateway": _payout(shop, gateway="nopay"), "balance_method": _payout(shop, gateway="balance"),
        "gateway_upper": _payout(shop, gateway="Sandbox"),
        "settlement_empty": _payout(shop, ""), "settlement_space": _payout(shop, "2088 0001"),
        "settlement_long": _payout(shop, "9" * 65), "currency": _payout(shop, currency="XXX"),
        "extra": _payout(shop, paid=True), "note_long": _payout(shop, note="x" * 501),
        "note_nul": _payout(shop, note="bank\x00ref"),
        "missing": {"gateway": "sandbox", "settlement_no": "X1", "net_cents": 1},
        "more_than_owed": _payout(shop, net_cents=1980 * 2),
    }[case]


@pytest.mark.parametrize(("case", "status", "code"), [
    ("net_zero", 422, "validation_failed"), ("net_negative", 422, "validation_failed"),
    ("net_float", 422, "validation_failed"), ("net_text", 422, "validation_failed"),
    ("fee_negative", 422, "validation_failed"), ("refunds_negative", 422, "validation_failed"),
    ("net_overflow", 422, "validation_failed"), ("sum_overflow", 422, "invalid_gateway_payout"),
    ("period_backwards", 422, "invalid_gateway_payout"), ("period_future", 422, "invalid_gateway_payout"),
    ("period_too_long", 422, "invalid_gateway_payout"), ("period_ancient", 422, "invalid_gateway_payout"),
    ("period_not_a_day", 422, "validation_failed"),
    ("unknown_gateway", 422, "payout_gateway_unknown"), ("balance_method", 422, "payout_gateway_unknown"),
    ("gateway_upper", 422, "validation_failed"), ("settlement_empty", 422, "validation_failed"),
    ("settlement_space", 422, "validation_failed"), ("settlement_long", 422, "validation_failed"),
    ("currency", 422, "invalid_gateway_payout"), ("extra", 422, "validation_failed"),
    ("note_long", 422, "validation_failed"), ("note_nul", 422, "invalid_gateway_payout"),
    ("missing", 422, "validation_failed"),
    ("more_than_owed", 409, "payout_exceeds_clearing"),
])
async def test_bad_payouts_are_refused_and_book_nothing(shop, app, case, status, code):
    await _paid_orders(shop, 2)
    before = await _balances(shop)
    response = await shop.client.post(URL, headers=shop.admin, json=_bad(shop, _today(shop), case))
    assert response.status_code == status, response.text
    assert response.json()["code"] == code, response.text
    assert await _balances(shop) == before
    assert await posting_count(shop.ctx, kind="gateway_payout") == 0 and await _payouts(shop) == 0


async def test_payouts_need_the_admin_token(shop, app):
    await _paid_orders(shop, 2)
    assert (await shop.client.post(URL, json=_payout(shop))).status_code == 401
    assert (await shop.client.get("/api/admin/ledger/gateway-clearing")).status_code == 401
    assert await _payouts(shop) == 0
