"""The portal's statement says each movement in the enterprise's language: the ledger's own English memos
("budget of benefit campaign C…", "refund R… credited to customer account 7") are not shown raw, and are said
as the console's ledger pages say them (console/said.py, one text per memo)."""

from __future__ import annotations

from types import SimpleNamespace

from enterprises.campaign_support import funded_campaign
from enterprises.portal_support import logged_in
from quanyi.console.said import say
from quanyi.enterprises.portal.memos import statement_memo


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


def test_a_charge_says_nothing_more_a_refund_names_its_number_and_a_top_up_keeps_its_note():
    def line(kind: str, memo: str) -> SimpleNamespace:
        return SimpleNamespace(kind=kind, memo=memo)

    assert statement_memo(line("customer_charge", "paid from customer account 7"), "zh-CN") == ""
    refund = line("customer_refund", "refund RF123 credited to customer account 7")
    assert statement_memo(refund, "zh-CN") == say(refund.memo, "zh-CN") == "退款 RF123 退回客户账户 7"
    assert statement_memo(refund, "en") == refund.memo
    for memo in ("budget of benefit campaign C1", "unclaimed budget of benefit campaign C1"):
        assert statement_memo(line("customer_transfer", memo), "zh-CN") == say(memo, "zh-CN") != memo
    assert statement_memo(line("customer_top_up", "银行转账 3 月"), "zh-CN") == "银行转账 3 月"
    assert statement_memo(line("customer_top_up", "order 7 delivered"), "zh-CN") == "order 7 delivered"  # a note
