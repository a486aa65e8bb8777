"""Ledger pages (trial balance, account statements, supplier statements) and the reconciliation report in the
console: the same ledger and reconciliation services as the admin API, figures that agree with each other."""

from __future__ import annotations

import datetime as dt
import html
import re

import httpx
import pytest
from sqlalchemy import select

from console.support import logged_in, post_form
from quanyi.console.said import say
from quanyi.payments.gateway import RefundRequest
from quanyi.payments.models import Payment
from quanyi.payments.sandbox.gateway import SandboxGateway
from quanyi.refunds.models import Refund
from quanyi.shoptime import shop_day, shop_zone
from quanyi.staff.models import StaffAuditEntry
from quanyi.testpeers.suppliers import start_supplier_simulator
from refund_helpers import Unreachable, ask_refund, delivered_order
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
    assert "渠道清算（渠道待结算） · Sandbox 模拟支付" in trial_zh.text  # the gateway's own title
    supplier_name = re.search(r">供应商预付款 · ([^<]+)</span> <code[^>]*>supplier_prepaid:\d+</code>", trial_zh.text)
    assert supplier_name and not supplier_name.group(1).isdigit()  # the supplier's name, not its id
    assert "gateway_clearing:sandbox" in trial_zh.text and "Gateway clearing" not in trial_zh.text
    statement_zh = await client.get("/console/ledger/accounts/gateway_clearing:sandbox?lang=zh-CN")
    assert 'data-testid="account-code">gateway_clearing:sandbox<' in statement_zh.text
    assert statement_zh.text.count(">收款</span>") == 2
    payment_no = re.search(r"Sandbox 模拟支付 支付单 (\S+)，订单 " + orders[0]["order_no"], statement_zh.text)
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


def _cells(page: str, testid: str) -> list[str]:
    """The text of each mismatch row's `testid` cell (its tooltip, the raw record, left out)."""
    return [html.unescape(re.sub(r"<[^>]+>", "", cell)).strip()
            for cell in re.findall(rf'data-testid="{testid}"[^>]*>(.*?)</td>', page, re.S)]


async def test_reconciliation_differences_are_shown_in_chinese(shop):
    sku = await shop.make_sku(code="RECON-ZH", price_cents=2500)
    await shop.stock(sku, 2)
    ghost = await shop.create_order(sku.id)
    await shop.pay(ghost)  # recorded as paid by a signed notification: the sandbox never had the trade
    # A refund the gateway made while the shop still waits for its answer (the request's answer was lost).
    refunded = await delivered_order(shop, sku)
    gateway = shop.ctx.gateways.get("sandbox")
    down = httpx.AsyncClient(transport=Unreachable())
    shop.ctx.gateways.register(SandboxGateway(secret=shop.sandbox_secret, http=down))
    assert (await ask_refund(shop, refunded, quantity=1)).json()["status"] == "requested"
    shop.ctx.gateways.register(gateway)
    stored = await shop.scalar(select(Refund))
    paid = await shop.scalar(select(Payment).where(Payment.id == stored.payment_id))
    await gateway.refund(RefundRequest(refund_no=stored.refund_no, payment_no=paid.payment_no,
                                       gateway_trade_no=paid.gateway_trade_no, amount_cents=2500,
                                       payment_amount_cents=2500, currency="CNY", reason="lost answer"))
    client = await logged_in(shop, "olivia", roles=("owner",))
    form = {"date": _today(shop).isoformat(), "gateway": "sandbox"}

    page = await post_form(client, "/console/reconciliation?lang=zh-CN", form, page_url="/console/reconciliation")
    assert page.status_code == 200, page.text
    assert _cells(page.text, "ours") == ["已支付 ¥25.00", "退款申请中 ¥25.00"]
    assert _cells(page.text, "theirs") == ["渠道无此交易", "已退款 ¥25.00"]
    assert _cells(page.text, "detail") == ["店铺记为已支付，但渠道没有这笔已付款的交易",
                                           "渠道已退款；退款任务会在下次尝试时记录"]
    assert 'title="succeeded 2500 CNY"' in page.text  # the report's own line, as the API and the CSV give it

    shop.ctx.gateways.register(SandboxGateway(secret=shop.sandbox_secret, http=down))
    unreachable = await post_form(client, "/console/reconciliation?lang=zh-CN", form,
                                  page_url="/console/reconciliation")
    details = _cells(unreachable.text, "detail")
    assert _cells(unreachable.text, "theirs") == ["未能查询"] * 3
    assert [d.split("：")[0] for d in details] == ["无法向 sandbox 查询", "无法向 sandbox 查询", "无法查询退款"]
    assert "could not ask" not in unreachable.text and "refund query failed" not in unreachable.text
    english = await post_form(client, "/console/reconciliation?lang=en", form, page_url="/console/reconciliation")
    assert _cells(english.text, "theirs") == ["not asked"] * 3 and "could not ask sandbox: " in english.text
    shop.ctx.gateways.register(gateway)
    await down.aclose()


def test_reconciliation_details_are_said_in_chinese():
    import quanyi.console.texts.orders  # noqa: F401 - what a payment did to its order (effect.*)

    details = {
        "could not ask alipay: alipay trade query: busy": "无法向 alipay 查询：alipay trade query: busy",
        "payment gateway 'stripe' is not configured": "支付渠道 stripe 未配置",
        "the gateway took a different amount than we asked for; not applied":
            "渠道收款金额或币种与店铺要求的不同，未入账",
        "repaired: payment confirmed now, order delivered": "已补记：支付已确认，订单已发货",
        "repaired: payment confirmed now, order refund_pending": "已补记：支付已确认，订单缺货，待退款",
        "could not be confirmed: trade P1 is paid, not a complete paid trade":
            "无法确认入账：trade P1 is paid, not a complete paid trade",
        "we recorded another gateway transaction for this payment": "店铺为这笔支付记录的是另一笔渠道交易",
        "refund query failed: sandbox answered about another refund":
            "无法查询退款：sandbox answered about another refund",
        "we recorded the refund as paid out but the gateway did not refund it": "店铺记为已退款，但渠道并未退款",
        "the gateway refunded a refund we recorded as failed": "渠道已退款，但店铺记为退款失败",
        "refunded amounts differ": "双方的退款金额不一致",
        "the gateway reports the refund failed; the refund loop records it on its next attempt":
            "渠道报告退款失败；退款任务会在下次尝试时记录",
        "enterprise ACME online top-up: we credited this top-up but the gateway has no paid trade":
            "企业 ACME 的在线充值：店铺已入账，但渠道没有这笔已付款的交易",
        "enterprise ACME online top-up: the gateway took a different amount than we asked for; not credited":
            "企业 ACME 的在线充值：渠道收款金额或币种与申请的不同，未入账",
        "enterprise ACME online top-up: repaired: credited now": "企业 ACME 的在线充值：已补记：现已入账",
        "enterprise ACME online top-up: could not be credited: x": "企业 ACME 的在线充值：无法入账：x",
        "enterprise ACME online top-up: we credited this top-up under another gateway transaction":
            "企业 ACME 的在线充值：店铺按另一笔渠道交易为这笔充值入了账",
        "enterprise ACME online top-up: could not ask sandbox: sandbox /query: HTTP 502":
            "企业 ACME 的在线充值：无法向 sandbox 查询：sandbox /query: HTTP 502",
        "enterprise ACME online top-up paid a second time (credited by trade SB1): owed back; refund it at the "
        "gateway, then mark it refunded":
            "企业 ACME 的在线充值被重复付款（已按交易 SB1 入账）：应退还；请在支付渠道退款，再标记为已退款",
    }
    for english, chinese in details.items():
        assert say(english, "zh-CN") == chinese, english
        assert say(english, "en") == english
