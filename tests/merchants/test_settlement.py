"""Merchant money: commission booked on delivery (merchant rate, category rule), refunds reversing both shares,
the refund-window hold, withdrawals (exact under concurrency) with approval and payout, statements, and a
scripted mixed run (platform store + two merchants, a merchant's supplier, refunds, withdrawals) after which
the books balance and every account holds what the script says."""

from __future__ import annotations

import asyncio
import datetime as dt

from sqlalchemy import select

from merchants.support import admit, buy, refund, shared_category, stock_up
from quanyi.catalog import service as catalog_service
from quanyi.catalog.schemas import CategoryCreate, ProductCreate, SkuCreate
from quanyi.ledger import service as ledger_service
from quanyi.ledger.postings import account_balances
from quanyi.merchants import service as merchants_service
from quanyi.merchants import statements
from quanyi.orders.models import Order
from quanyi.shoptime import shop_day, zone_of
from quanyi.suppliers.models import Supplier


async def _balances(shop) -> dict[str, int]:
    await ledger_service.post_all_deferred(shop.ctx.db)  # payments' postings are written by a background worker
    async with shop.ctx.db.read_session() as session:
        return {code: total for (code, _currency), total in (await account_balances(session)).items()}


async def _order_accounts(shop, headers, order_no: str) -> dict[str, int]:
    response = await shop.client.get(f"/api/admin/ledger/orders/{order_no}/postings", headers=headers)
    assert response.status_code == 200, response.text
    sums: dict[str, int] = {}
    for posting in response.json():
        for entry in posting["entries"]:
            sums[entry["account"]] = sums.get(entry["account"], 0) + entry["amount_cents"]
    return {k: v for k, v in sums.items() if v}


async def test_commission_by_merchant_rate_and_category_rule_and_refunds_reverse_both_shares(shop):
    category = await shared_category(shop)
    a = await admit(shop, "shop-a", commission_bps=1000)
    await stock_up(shop, a, category, price_cents=1000, keys=4)
    async with shop.ctx.db.transaction() as session:  # a second category where A pays 5%
        games = await catalog_service.create_category(session=session, data=CategoryCreate(slug="games", name="G"))
        product = await catalog_service.create_product(session=session, merchant_id=a.merchant_id, data=ProductCreate(
            category_id=games.id, slug="a-game", name="game", skus=[SkuCreate(code="A-GAME", name="x",
                                                                                price_cents=2000)]))
        game_sku = product.skus[0].id
    rule = await shop.client.put(f"/api/admin/merchants/{a.code}/commission-rules", headers=shop.admin,
                                 json={"category_id": games.id, "commission_bps": 500})
    assert rule.status_code == 200, rule.text
    await shop.stock(await _sku(shop, game_sku), 1)

    card = await buy(shop, a, quantity=2, refundable=True)
    assert await _order_accounts(shop, a.headers, card["order_no"]) == {
        "gateway_clearing:sandbox": 2000, "merchant_payable:shop-a": -1800, "platform_revenue": -200}
    game = await shop.create_order(game_sku)
    await shop.pay(game)
    assert await _order_accounts(shop, a.headers, game["order_no"]) == {
        "gateway_clearing:sandbox": 2000, "merchant_payable:shop-a": -1900, "platform_revenue": -100}

    await refund(shop, a, card["order_no"], quantity=1)  # half back: both shares pro rata
    assert await _order_accounts(shop, a.headers, card["order_no"]) == {
        "gateway_clearing:sandbox": 1000, "merchant_payable:shop-a": -900, "platform_revenue": -100}
    await refund(shop, a, card["order_no"], quantity=1)
    assert await _order_accounts(shop, a.headers, card["order_no"]) == {}  # every share back to zero

    # The platform's own store books as before: all its revenue is the platform's.
    own = await shop.make_sku(price_cents=700)
    await shop.stock(own, 1)
    mine = await shop.create_order(own.id)
    await shop.pay(mine)
    assert await _order_accounts(shop, shop.admin, mine["order_no"]) == {
        "gateway_clearing:sandbox": 700, "platform_revenue": -700}


async def _sku(shop, sku_id: int):  # type: ignore[no-untyped-def]
    async with shop.ctx.db.read_session() as session:
        return await catalog_service.get_sku(session=session, sku_id=sku_id)


async def _balance(shop, tenant) -> dict[str, int]:
    response = await shop.client.get(f"/api/admin/merchants/{tenant.code}/balance", headers=tenant.headers)
    assert response.status_code == 200, response.text
    return next((b for b in response.json() if b["currency"] == "CNY"), {})


async def test_earnings_are_held_for_the_refund_window_then_withdrawn_approved_and_paid_once(shop):
    category = await shared_category(shop)
    a = await admit(shop, "shop-a", commission_bps=1000)
    await stock_up(shop, a, category, price_cents=1000, keys=5)
    for _ in range(5):
        await buy(shop, a)
    assert await _balance(shop, a) == {"currency": "CNY", "balance_cents": 4500, "held_cents": 4500,
                                       "reserved_cents": 0, "available_cents": 0}
    url = f"/api/admin/merchants/{a.code}/withdrawals"
    held = await shop.client.post(url, headers=a.headers, json={"amount_cents": 100})
    assert held.status_code == 409 and held.json()["code"] == "withdrawal_exceeds_balance"
    assert held.json()["held_cents"] == 4500

    await shop.client.patch(f"/api/admin/merchants/{a.code}", headers=shop.admin, json={"hold_days": 0})
    assert (await _balance(shop, a))["available_cents"] == 4500
    # Ten requests at once for 1000 each: exactly four fit (the merchant row lock serializes them).
    answers = await asyncio.gather(*[shop.client.post(url, headers=a.headers, json={"amount_cents": 1000})
                                     for _ in range(10)])
    assert sorted(r.status_code for r in answers) == [201] * 4 + [409] * 6
    assert await _balance(shop, a) == {"currency": "CNY", "balance_cents": 4500, "held_cents": 0,
                                       "reserved_cents": 4000, "available_cents": 500}
    again = {"Idempotency-Key": "payout-2026-12-a", **a.headers}
    first = await shop.client.post(url, headers=again, json={"amount_cents": 500, "note": "december"})
    repeat = await shop.client.post(url, headers=again, json={"amount_cents": 500, "note": "december"})
    assert (first.status_code, repeat.status_code) == (201, 200)
    assert first.json()["withdrawal_no"] == repeat.json()["withdrawal_no"]

    made = [r.json()["withdrawal_no"] for r in answers if r.status_code == 201]
    admin = f"/api/admin/merchant-withdrawals/{made[0]}"
    not_yet = await shop.client.post(f"{admin}/pay", headers=shop.admin, json={"payout_reference": "BANK-1"})
    assert not_yet.status_code == 409  # approve first
    assert (await shop.client.post(f"{admin}/approve", headers=shop.admin, json={"reason": "ok"})).status_code == 200
    paid = await shop.client.post(f"{admin}/pay", headers=shop.admin, json={"payout_reference": "BANK-1"})
    assert paid.status_code == 200 and paid.json()["status"] == "paid" and paid.json()["paid_by"] == "admin"
    twice = await shop.client.post(f"{admin}/pay", headers=shop.admin, json={"payout_reference": "BANK-1"})
    assert twice.status_code == 409
    rejected = await shop.client.post(f"/api/admin/merchant-withdrawals/{made[1]}/reject", headers=shop.admin,
                                      json={"reason": "bank details missing"})
    assert rejected.json()["status"] == "rejected" and rejected.json()["review_reason"] == "bank details missing"
    assert await _balance(shop, a) == {"currency": "CNY", "balance_cents": 3500, "held_cents": 0,
                                       "reserved_cents": 2500, "available_cents": 1000}
    books = await _balances(shop)
    assert books["merchant_payable:shop-a"] == -3500 and books["platform_cash"] == -1000
    listed = (await shop.client.get("/api/admin/merchant-withdrawals", headers=a.headers)).json()
    assert {w["status"] for w in listed} == {"requested", "paid", "rejected"}


async def test_statements_of_a_closed_period_add_up_and_are_issued_once(shop):
    category = await shared_category(shop)
    a = await admit(shop, "shop-a", commission_bps=1000, hold_days=0)
    await stock_up(shop, a, category, price_cents=1000, keys=3)
    first = await buy(shop, a, refundable=True)
    await buy(shop, a)
    await refund(shop, a, first["order_no"])
    withdrawal = await shop.client.post(f"/api/admin/merchants/{a.code}/withdrawals", headers=a.headers,
                                        json={"amount_cents": 400})
    no = withdrawal.json()["withdrawal_no"]
    for step, body in (("approve", {"reason": "ok"}), ("pay", {"payout_reference": "BANK-7"})):
        assert (await shop.client.post(f"/api/admin/merchant-withdrawals/{no}/{step}", headers=shop.admin,
                                       json=body)).status_code == 200
    async with shop.ctx.db.transaction() as session:  # the period is the shop's month, not UTC's
        today = shop_day(dt.datetime.now(dt.UTC), zone_of(session))
    open_period = await shop.client.post(f"/api/admin/merchants/{a.code}/statements", headers=a.headers,
                                         json={"period": today.isoformat(), "cycle": "monthly"})
    assert open_period.status_code == 422 and open_period.json()["code"] == "invalid_statement_period"
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=40)  # the month is over by then
    await ledger_service.post_all_deferred(shop.ctx.db)
    async with shop.ctx.db.transaction() as session:
        merchant = await merchants_service.get_merchant(session=session, code=a.code)
        issued = await statements.issue_statements(session=session, merchant=merchant, day=today, cycle="monthly",
                                                   actor="test", now=later)
        again = await statements.issue_statements(session=session, merchant=merchant, day=today, cycle="monthly",
                                                  actor="test", now=later)
    assert [s.statement_no for s in issued] == [s.statement_no for s in again]
    (statement,) = issued
    assert (statement.gross_cents, statement.fees_cents, statement.net_sales_cents, statement.refunds_cents,
            statement.withdrawals_cents, statement.orders) == (2000, 200, 1800, 900, 400, 2)
    assert statement.closing_cents == statement.opening_cents + 1800 - 900 - 400 == 500
    read = await shop.client.get(f"/api/admin/merchant-statements/{statement.statement_no}", headers=a.headers)
    assert read.status_code == 200
    assert [line["kind"] for line in read.json()["lines"]].count("order_delivered") == 2
    csv = await shop.client.get(f"/api/admin/merchant-statements/{statement.statement_no}/csv", headers=a.headers)
    assert csv.status_code == 200 and csv.text.splitlines()[-1].endswith(",closing,,,,500")


async def test_a_scripted_mixed_run_keeps_the_books_balanced_and_every_account_true(shop):
    category = await shared_category(shop)
    a = await admit(shop, "shop-a", commission_bps=800, hold_days=0)
    b = await admit(shop, "shop-b", commission_bps=1500, hold_days=0)
    await stock_up(shop, a, category, price_cents=1000, keys=4)
    await stock_up(shop, b, category, price_cents=2000, keys=3)
    own = await shop.make_sku(price_cents=500)
    await shop.stock(own, 2)
    # B buys goods from its own supplier account, funded with B's money.
    supplier = await shop.client.post("/api/admin/suppliers", headers=b.headers, json={
        "code": "B-SUP", "name": "B supplier", "dialect": "quanyi", "base_url": "http://127.0.0.1:9/",
        "credentials": {"app_id": "QY1", "secret": "s3cret-s3cret"}})
    assert supplier.status_code == 201, supplier.text
    top_up = await shop.client.post("/api/admin/ledger/suppliers/B-SUP/top-ups", headers=b.headers,
                                    json={"amount_cents": 5000, "note": "B's own money"})
    assert top_up.status_code == 201, top_up.text

    a1 = await buy(shop, a, quantity=2, refundable=True)  # 2000: A 1840, platform 160
    await buy(shop, a)  # 1000: A 920, platform 80
    b_order = await shop.create_order(b.sku_id)  # 2000: B 1700, platform 300; cost 600 from B's funds
    async with shop.ctx.db.transaction() as session:
        order_id = await session.scalar(select(Order.id).where(Order.order_no == b_order["order_no"]))
        supplier_id = await session.scalar(select(Supplier.id).where(Supplier.code == "B-SUP"))
        await ledger_service.charge_supplier(session=session, supplier_id=supplier_id, amount_cents=600,
                                             reference="B-SUP-attempt-1", order_id=order_id)
    await shop.pay(b_order)
    b2 = await buy(shop, b, refundable=True)  # 2000 then fully refunded
    p1 = await shop.create_order(own.id, 2)  # the platform's store: 1000, all platform revenue
    await shop.pay(p1)

    await refund(shop, a, a1["order_no"], quantity=1)  # A 920 and platform 80 back
    await refund(shop, b, b2["order_no"])  # all of it back
    for tenant, amount in ((a, 1500), (b, 1000)):
        made = await shop.client.post(f"/api/admin/merchants/{tenant.code}/withdrawals", headers=tenant.headers,
                                      json={"amount_cents": amount})
        no = made.json()["withdrawal_no"]
        for step, body in (("approve", {"reason": "ok"}), ("pay", {"payout_reference": f"BANK-{tenant.code}"})):
            answer = await shop.client.post(f"/api/admin/merchant-withdrawals/{no}/{step}", headers=shop.admin,
                                            json=body)
            assert answer.status_code == 200, answer.text

    trial = (await shop.client.get("/api/admin/ledger/trial-balance", headers=shop.admin)).json()
    assert trial["balanced"] and trial["prepaid_drift"] == {}
    books = await _balances(shop)
    assert books["merchant_payable:shop-a"] == -(1840 + 920 - 920 - 1500)
    assert books["merchant_payable:shop-b"] == -(1700 - 1000)
    assert books["platform_revenue"] == -(160 + 80 - 80 + 300 + 1000)
    assert books["platform_cash"] == -2500  # payouts; B's supplier top-up was B's money, not the platform's
    assert books["merchant_supplier_funds:shop-b"] == -5000 + 600
    assert books[f"supplier_prepaid:{supplier_id}"] == 5000 - 600
    assert "cost_of_goods" not in books  # a merchant's supply chain never reaches the platform's costs
    assert books["gateway_clearing:sandbox"] == 2000 + 1000 + 2000 + 2000 + 1000 - 1000 - 2000
