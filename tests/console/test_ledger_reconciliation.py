"""Ledger pages (trial balance, account statements, supplier statements) and the reconciliation report in the
console: the same ledger and reconciliation services as the admin API, figures that agree with each other."""

from __future__ import annotations

import datetime as dt
import html
import re

import pytest
from sqlalchemy import select

from console.support import logged_in, post_form
from quanyi.shoptime import shop_day, shop_zone
from quanyi.staff.models import StaffAuditEntry
from quanyi.testpeers.suppliers import start_supplier_simulator
from suppliers.shop_support import register


@pytest.fixture
def sim():  # type: ignore[no-untyped-def]
    simulator = start_supplier_simulator("quanyi")
    yield simulator
    simulator.stop()


def _today(shop) -> dt.date:  # type: ignore[no-untyped-def]
    return shop_day(dt.datetime.now(dt.UTC), shop_zone(shop.ctx.settings.shop_timezone))


def _money(page: str, testid: str) -> str:
    found = re.search(rf'data-testid="{testid}">([^<]+)<', page)
    assert found, testid
    return html.unescape(found.group(1)).strip()


async def test_trial_balance_and_account_statement_agree_with_the_orders_booked(shop, sim):
    sku = await shop.make_sku(code="LEDGER-GOODS", price_cents=2500)
    await shop.stock(sku, 3)
    orders = [await shop.create_order(sku.id, quantity=q) for q in (1, 2)]
    for order in orders:
        await shop.pay(order)
    await register(shop, sim)
    top_up = await shop.client.post("/api/admin/ledger/suppliers/ACME/top-ups", headers=shop.admin,
                                    json={"amount_cents": 50_000, "note": "wire 4711"})
    assert top_up.status_code == 201, top_up.text
    client = await logged_in(shop, "fiona", roles=("finance",))

    trial = await client.get("/console/ledger?lang=en")
    assert trial.status_code == 200 and _money(trial.text, "ledger-balanced") == "Balanced"
    assert _money(trial.text, "ledger-total") in ("¥0.00", "CNY 0.00", "0.00")
    assert "gateway_clearing:sandbox" in trial.text

    statement = await client.get("/console/ledger/accounts/gateway_clearing:sandbox?lang=en")
    assert statement.status_code == 200
    assert statement.text.count('data-testid="account-line"') == 2  # one payment posting per order
    for order in orders:
        assert order["order_no"] in statement.text
    assert _money(statement.text, "debits") == _money(statement.text, "closing")  # opened at 0 this month
    assert "75.00" in _money(statement.text, "closing")  # 25.00 + 2 × 25.00 received

    # In Chinese: accounts, posting kinds and memos in the console's words, the account code still beside them.
    trial_zh = await client.get("/console/ledger?lang=zh-CN")
    assert "渠道清算（渠道待结算） · sandbox" in trial_zh.text
    supplier_name = re.search(r">供应商预付款 · ([^<]+)</span> <code[^>]*>supplier_prepaid:\d+</code>", trial_zh.text)
    assert supplier_name and not supplier_name.group(1).isdigit()  # the supplier's name, not its id
    assert "gateway_clearing:sandbox" in trial_zh.text and "Gateway clearing" not in trial_zh.text
    statement_zh = await client.get("/console/ledger/accounts/gateway_clearing:sandbox?lang=zh-CN")
    assert 'data-testid="account-code">gateway_clearing:sandbox<' in statement_zh.text
    assert statement_zh.text.count(">收款</span>") == 2
    payment_no = re.search(r"sandbox 支付单 (\S+)，订单 " + orders[0]["order_no"], statement_zh.text)
    assert payment_no and " for order " not in statement_zh.text

    before = (_today(shop) - dt.timedelta(days=40)).isoformat()
    quiet = await client.get(f"/console/ledger/accounts/gateway_clearing:sandbox?from={before}&to={before}")
    assert 'data-testid="no-lines"' in quiet.text
    assert (await client.get("/console/ledger/accounts/no_such:account")).status_code == 404

    supplier = await client.get(f"/console/ledger/suppliers/ACME?period={_today(shop).isoformat()}&lang=en")
    assert supplier.status_code == 200 and "500.00" in _money(supplier.text, "supplier-closing")
    assert "wire 4711" in supplier.text
    supplier_zh = await client.get(f"/console/ledger/suppliers/ACME?period={_today(shop).isoformat()}&lang=zh-CN")
    assert ">预付充值</span>" in supplier_zh.text and "wire 4711" in supplier_zh.text  # the note as typed
    assert (await client.get("/console/ledger/suppliers/NOPE")).status_code == 404


async def test_reconciliation_runs_for_a_day_and_is_audited(shop):
    sku = await shop.make_sku(code="RECON-GOODS")
    await shop.stock(sku, 1)
    order = await shop.create_order(sku.id)
    assert (await shop.pay_via_cashier(order)).status_code == 303  # paid at the (sandbox) gateway itself
    client = await logged_in(shop, "olivia", roles=("owner",))
    page = await client.get("/console/reconciliation")
    assert page.status_code == 200 and 'data-testid="reconcile-form"' in page.text

    today = _today(shop).isoformat()
    report = await post_form(client, "/console/reconciliation", {"date": today, "gateway": "sandbox"},
                             page_url="/console/reconciliation")
    assert report.status_code == 200, report.text
    assert _money(report.text, "payments-checked") == "1" and 'data-testid="no-mismatches"' in report.text
    bad_day = await post_form(client, "/console/reconciliation", {"date": "31/12/2026"},
                              page_url="/console/reconciliation")
    assert bad_day.status_code == 422 and "date" in bad_day.text
    unknown = await post_form(client, "/console/reconciliation", {"date": today, "gateway": "nopay"},
                              page_url="/console/reconciliation")
    assert unknown.status_code == 422
    async with shop.ctx.db.read_session() as session:
        runs = (await session.scalars(select(StaffAuditEntry.object_id).where(
            StaffAuditEntry.action == "reconciliation_run"))).all()
    assert runs == [today]
