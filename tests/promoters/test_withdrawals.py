"""Promoters' commission money: held for the refund window, withdrawals reserve it exactly once, the operator
approves or rejects, the payout posts to the ledger; statement; the programme and reviews through the API and
the `quanyi promoters` CLI; bad input is a 4xx that changes nothing."""

from __future__ import annotations

import asyncio
import datetime as dt

from sqlalchemy import select

from ledger.test_order_postings import _stock_at_cost
from merchants.test_tenancy import _cli
from promoters.support import make_promoter, set_program
from quanyi.ledger.reports import set_share_rule, trial_balance
from quanyi.orders.models import Order
from refund_helpers import ask_refund, cashier_pay


async def _earn(shop, sku, code: str, quantity: int = 3) -> dict:
    """An order of `quantity` x 19.80 brought by `code` at 10%, delivered; returns it."""
    async with shop.ctx.db.transaction() as session:
        await set_share_rule(session=session, sku_id=None, merchant_code="", merchant_bps=0, distributor_bps=1000,
                             actor="test")
    order = await shop.create_order(sku.id, quantity=quantity, distributor_code=code)
    await cashier_pay(shop, order)
    return order


async def _age(shop, order: dict, days: int) -> None:
    """Pretend the order was delivered `days` ago (past the hold)."""
    async with shop.ctx.db.transaction() as session:
        found = await session.scalar(select(Order).where(Order.order_no == order["order_no"]))
        found.delivered_at -= dt.timedelta(days=days)


async def _balance(shop, code: str) -> dict:
    body = (await shop.client.get(f"/api/admin/promoters/{code}", headers=shop.admin)).json()
    return body["balances"][0]


async def test_commission_is_held_then_withdrawn_once_and_paid_through_the_ledger(shop, app, sku):
    await _stock_at_cost(shop, sku, 3, unit_cost=None)
    await make_promoter(shop, "CASH")
    order = await _earn(shop, sku, "CASH")  # 59.40 x 10% = 5.94
    assert await _balance(shop, "CASH") == {"currency": "CNY", "balance_cents": 594, "held_cents": 594,
                                            "reserved_cents": 0, "available_cents": 0, "paid_out_cents": 0}
    url = "/api/admin/promoters/CASH/withdrawals"
    body = {"amount_cents": 500, "payout_account": "alipay: cash@example.com"}
    held = await shop.client.post(url, headers=shop.admin, json=body)
    assert held.status_code == 409 and held.json()["code"] == "commission_withdrawal_exceeds_balance"
    await _age(shop, order, 8)  # the default hold is 7 days
    # Two requests at once for most of the money: exactly one is accepted.
    first, second = await asyncio.gather(
        shop.client.post(url, headers={**shop.admin, "Idempotency-Key": "wd-one-1"}, json=body),
        shop.client.post(url, headers={**shop.admin, "Idempotency-Key": "wd-two-2"}, json=body))
    assert sorted([first.status_code, second.status_code]) == [201, 409]
    withdrawal = (first if first.status_code == 201 else second).json()
    again = await shop.client.post(url, headers={**shop.admin, "Idempotency-Key": "wd-one-1" if first.status_code
                                                 == 201 else "wd-two-2"}, json=body)
    assert again.status_code == 200 and again.json()["withdrawal_no"] == withdrawal["withdrawal_no"]
    assert (await _balance(shop, "CASH"))["available_cents"] == 94
    no = withdrawal["withdrawal_no"]
    unpaid = await shop.client.post(f"/api/admin/promoter-withdrawals/{no}/pay", headers=shop.admin,
                                    json={"payout_reference": "T1"})
    assert unpaid.status_code == 409  # approve first
    assert (await shop.client.post(f"/api/admin/promoter-withdrawals/{no}/approve", headers=shop.admin,
                                   json={"reason": "ok"})).json()["status"] == "approved"
    paid = await shop.client.post(f"/api/admin/promoter-withdrawals/{no}/pay", headers=shop.admin,
                                  json={"payout_reference": "ALI-2026-1"})
    assert paid.status_code == 200 and paid.json()["status"] == "paid"
    assert await _balance(shop, "CASH") == {"currency": "CNY", "balance_cents": 94, "held_cents": 0,
                                            "reserved_cents": 0, "available_cents": 94, "paid_out_cents": 500}
    async with shop.ctx.db.read_session() as session:
        trial = await trial_balance(session=session)
    assert trial.balanced
    balances = {a.code: a.balance_cents for a in trial.accounts}
    assert balances["distributor_commission:CASH"] == -94 and balances["platform_cash"] == -500
    # A late refund takes back commission already paid out: the balance goes below zero, nothing is withdrawable.
    await ask_refund(shop, order)
    assert await _balance(shop, "CASH") == {"currency": "CNY", "balance_cents": -500, "held_cents": 0,
                                            "reserved_cents": 0, "available_cents": 0, "paid_out_cents": 500}
    today = dt.datetime.now(dt.UTC).date()
    statement = (await shop.client.get(f"/api/admin/promoters/cash/statement?start={today - dt.timedelta(days=9)}"
                                       f"&end={today}", headers=shop.admin)).json()
    assert [(line["kind"], line["amount_cents"]) for line in statement["lines"]] == [
        ("order_delivered", 594), ("commission_withdrawal", -500), ("refund_requested", -594)]
    assert statement["opening_cents"] == 0 and statement["closing_cents"] == -500
    assert statement["lines"][0]["order_paid_cents"] == 5940


async def test_rejected_withdrawal_frees_the_money_and_bad_input_changes_nothing(shop, app, sku):
    await _stock_at_cost(shop, sku, 3, unit_cost=None)
    await make_promoter(shop, "REJ")
    await _age(shop, await _earn(shop, sku, "REJ"), 30)
    url = "/api/admin/promoters/REJ/withdrawals"
    for body in ({"amount_cents": 0, "payout_account": "x"}, {"amount_cents": 50, "payout_account": "x"},
                 {"amount_cents": 100, "payout_account": ""}, {"amount_cents": 100}):
        response = await shop.client.post(url, headers=shop.admin, json=body)
        assert response.status_code == 422, (body, response.text)
    assert (await shop.client.post("/api/admin/promoters/NOPE/withdrawals", headers=shop.admin,
                                   json={"amount_cents": 100, "payout_account": "x"})).status_code == 404
    assert (await _balance(shop, "REJ"))["reserved_cents"] == 0
    made = (await shop.client.post(url, headers=shop.admin, json={"amount_cents": 594, "payout_account": "bank 1"}))
    assert made.status_code == 201
    no = made.json()["withdrawal_no"]
    no_reason = await shop.client.post(f"/api/admin/promoter-withdrawals/{no}/reject", headers=shop.admin,
                                       json={"reason": " "})
    assert no_reason.status_code == 422
    rejected = await shop.client.post(f"/api/admin/promoter-withdrawals/{no}/reject", headers=shop.admin,
                                      json={"reason": "wrong account"})
    assert rejected.json()["status"] == "rejected"
    assert (await _balance(shop, "REJ"))["available_cents"] == 594
    listed = (await shop.client.get("/api/admin/promoter-withdrawals?status=rejected", headers=shop.admin)).json()
    assert [(w["withdrawal_no"], w["promoter_code"]) for w in listed] == [(no, "REJ")]


async def test_promoters_api_needs_platform_staff_and_reviews_applications(shop, app):
    assert (await shop.client.get("/api/admin/promoters")).status_code == 401
    program = await shop.client.put("/api/admin/promoter-program", headers=shop.admin,
                                    json={"levels": 2, "attribution_days": 14})
    assert program.status_code == 200 and program.json()["levels"] == 2
    assert (await shop.client.put("/api/admin/promoter-program", headers=shop.admin,
                                  json={"levels": 3})).status_code == 422
    added = await shop.client.post("/api/admin/promoters", headers=shop.admin,
                                   json={"name": "KOL Li", "contact": "li@example.com", "code": "kol-li"})
    assert added.status_code == 201
    assert added.json()["code"] == "KOL-LI" and added.json()["link"].endswith("/r/KOL-LI")
    taken = await shop.client.post("/api/admin/promoters", headers=shop.admin,
                                   json={"name": "Other", "contact": "o@example.com", "code": "KOL-LI"})
    assert taken.status_code == 409
    bad = await shop.client.post("/api/admin/promoters", headers=shop.admin,
                                 json={"name": "X", "contact": "not a contact"})
    assert bad.status_code == 422
    approve_again = await shop.client.post("/api/admin/promoters/KOL-LI/approve", headers=shop.admin,
                                           json={"reason": "ok"})
    assert approve_again.status_code == 409  # only a pending application is approved


async def test_cli_adds_lists_and_shows_the_balance(shop, app, sku, monkeypatch):
    added = await _cli(shop, monkeypatch, "promoters", "add", "Partner Wang", "--contact", "wang@example.com",
                       "--code", "WANG")
    assert added.exit_code == 0, added.output
    assert "/r/WANG" in added.output
    await _stock_at_cost(shop, sku, 3, unit_cost=None)
    await _earn(shop, sku, "WANG")
    listed = await _cli(shop, monkeypatch, "promoters", "list")
    assert "WANG" in listed.output and "approved" in listed.output
    balance = await _cli(shop, monkeypatch, "promoters", "balance", "wang")
    assert balance.exit_code == 0 and "¥5.94" in balance.output
    program = await _cli(shop, monkeypatch, "promoters", "program", "--levels", "2", "--hold-days", "0")
    assert program.exit_code == 0 and "2 level(s)" in program.output and "hold 0 days" in program.output
    withdraw = await _cli(shop, monkeypatch, "promoters", "withdraw", "WANG", "--amount-cents", "500",
                          "--pay-to", "alipay wang")
    assert withdraw.exit_code == 0, withdraw.output
    too_much = await _cli(shop, monkeypatch, "promoters", "withdraw", "WANG", "--amount-cents", "500",
                          "--pay-to", "alipay wang")
    assert too_much.exit_code == 1 and "commission_withdrawal_exceeds_balance" in too_much.output
    unknown = await _cli(shop, monkeypatch, "promoters", "balance", "NOBODY")
    assert unknown.exit_code == 1 and "promoter_not_found" in unknown.output
    await set_program(shop, hold_days=7)
