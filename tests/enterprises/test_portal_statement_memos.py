"""The portal's statement says each movement in the enterprise's language: the ledger's own English memos
("budget of benefit campaign C…") are not shown raw, and are said as the console's ledger pages say them
(console/said.py, one text per memo); a refund's ("refund R… credited to customer account 7") in the portal's own
words, without the shop's internal account number."""

from __future__ import annotations

from types import SimpleNamespace

from sqlalchemy import select

from enterprises.campaign_support import funded_campaign
from enterprises.portal_support import logged_in
from enterprises.support import add_enterprise
from quanyi.console.said import say
from quanyi.enterprises import purchases
from quanyi.enterprises.models import BulkPurchaseOrder
from quanyi.enterprises.portal.memos import statement_memo
from quanyi.ledger.models import CustomerAccount
from quanyi.orders.models import Order


async def test_a_campaigns_budget_and_its_return_are_said_in_chinese_on_the_statement(shop):
    funded = await funded_campaign(shop)
    ended = await shop.client.post(f"/api/admin/enterprises/ACME/campaigns/{funded.no}/end", headers=shop.admin)
    assert ended.status_code == 200, ended.text
    client = await logged_in(shop, "ACME", "erin", register=False)
    for path in ("/portal/statement", "/portal"):
        page = await client.get(path)
        assert page.status_code == 200
        assert f"福利活动 {funded.no} 的预算" in page.text, path
        assert f"福利活动 {funded.no} 未领取的预算退回" in page.text, path
        assert "benefit campaign" not in page.text, path
    english = await client.get("/portal/statement?lang=en")
    assert f"unclaimed budget of benefit campaign {funded.no}<" in english.text  # the memo as the books keep it


async def test_a_refund_on_the_statement_names_its_number_but_no_internal_account_number(shop):
    sku = await shop.make_sku(code="GIFT-100", price_cents=10_000)
    await shop.stock(sku, 2)
    await add_enterprise(shop, top_up_cents=100_000)
    contact = await shop.client.post("/api/admin/enterprises/ACME/contacts", headers=shop.admin,
                                     json={"name": "采购 李", "role": "purchasing", "email": "buy@acme.example"})
    assert contact.status_code == 201, contact.text
    bought = await shop.client.post("/api/admin/enterprises/ACME/purchases", headers=shop.admin,
                                    json={"sku_code": "GIFT-100", "quantity": 2})
    assert bought.status_code == 202, bought.text
    assert await purchases.run_due_purchases(db=shop.ctx.db, owner="w1") == 1
    order_no = await shop.scalar(select(Order.order_no).join(BulkPurchaseOrder, BulkPurchaseOrder.order_id == Order.id))
    refund = await shop.client.post(f"/api/admin/orders/{order_no}/refunds", headers=shop.admin,
                                    json={"quantity": 1, "reason": "卡密无法使用"})
    assert refund.status_code == 201, refund.text
    refund_no = refund.json()["refund_no"]
    account_id = await shop.scalar(select(CustomerAccount.id))

    client = await logged_in(shop, "ACME", "erin", register=False)
    page = await client.get("/portal/statement")
    assert page.status_code == 200
    assert f"退款单 {refund_no}，已退回预存款余额" in page.text  # old code: 退款 R… 退回客户账户 <id>
    assert "客户账户" not in page.text and f"account {account_id}" not in page.text
    english = await client.get("/portal/statement?lang=en")
    assert f"refund {refund_no}, back to your balance" in english.text and "customer account" not in english.text


def test_a_charge_says_nothing_more_a_refund_names_its_number_and_a_top_up_keeps_its_note():
    def line(kind: str, memo: str) -> SimpleNamespace:
        return SimpleNamespace(kind=kind, memo=memo)

    assert statement_memo(line("customer_charge", "paid from customer account 7"), "zh-CN") == ""
    refund = line("customer_refund", "refund RF123 credited to customer account 7")
    assert statement_memo(refund, "zh-CN") == "退款单 RF123，已退回预存款余额"  # the console says 退回客户账户 7
    assert statement_memo(refund, "en") == "refund RF123, back to your balance"
    assert statement_memo(line("customer_refund", "something else about account 7"), "zh-CN") == ""
    for memo in ("budget of benefit campaign C1", "unclaimed budget of benefit campaign C1"):
        assert statement_memo(line("customer_transfer", memo), "zh-CN") == say(memo, "zh-CN") != memo
    assert statement_memo(line("customer_top_up", "银行转账 3 月"), "zh-CN") == "银行转账 3 月"
    assert statement_memo(line("customer_top_up", "order 7 delivered"), "zh-CN") == "order 7 delivered"  # a note
