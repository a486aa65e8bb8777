"""The audit log in the zh console says its entries in Chinese: each action in words (its code in the tooltip and
the filter link), each object's type, and the English summaries the actions wrote ("staff olga", "batch 1 of 2
codes"); the stored rows and the export stay exactly as recorded (they are evidence)."""

from __future__ import annotations

import html
import re
from pathlib import Path

from sqlalchemy import select

from console.support import PASSWORD, logged_in, post_form
from coupons.support import make_coupon
from quanyi.staff.models import StaffAuditEntry

# Three English words in a row, as tests/console/test_partner_pages_said.py looks for them.
_ENGLISH = re.compile(r"\b[A-Za-z]{3,} [a-z]{2,} [a-z]{2,}\b")
_SRC = Path(__file__).resolve().parents[2] / "src" / "quanyi"


def _cells(page: str, testid: str) -> list[str]:
    return [html.unescape(re.sub(r"<[^>]+>", "", m.group(1))).strip()
            for m in re.finditer(rf'data-testid="{testid}"[^>]*>(.*?)</(?:td|a)>', page, re.S)]


async def test_the_audit_log_says_its_entries_in_chinese_and_keeps_them_as_recorded(shop, app, stocked_sku):
    client = await logged_in(shop, "kim", roles=("owner",))
    made = await post_form(client, "/console/staff", {"username": "olga", "password": PASSWORD, "roles": "support"},
                           page_url="/console/staff")
    assert made.status_code == 303, made.text
    coupon = await make_coupon(shop, name="合作方券", distribution="codes", code=None, total_quantity=10)
    batch = await post_form(client, f"/console/coupons/{coupon['id']}/code-batches", {"count": "2"},
                            page_url=f"/console/coupons/{coupon['id']}")
    assert batch.status_code == 303, batch.text
    codes = await shop.stock(stocked_sku, 2)
    voided = await post_form(client, "/console/keys/batches/1/void", {"reason": "供应商召回"},
                             page_url=f"/console/keys/skus/{stocked_sku.id}")
    assert voided.status_code == 303, voided.text
    traced = await post_form(client, "/console/keys/leaks", {"codes": codes[0], "mark": "on", "void_batches": "on"},
                             page_url="/console/keys/leaks")
    assert traced.status_code == 200

    page = await client.get("/console/audit")
    assert page.status_code == 200
    actions = _cells(page.text, "audit-action")
    assert actions == ["泄露追查", "作废批次", "生成券码", "新建员工", "登录"], actions  # old code: codes
    summaries = _cells(page.text, "audit-summary")
    assert summaries[0] == "提交 1 个，找到 1 个，下架 1 个，并作废相关批次"
    assert summaries[1].startswith("下架 10 个卡密：供应商召回")
    assert summaries[2] == "合作方券：批次 1，2 个券码"  # old code: "合作方券: batch 1 of 2 codes"
    assert summaries[3] == "商户：平台；角色：客服"
    assert "员工 olga" in page.text and "staff olga" not in page.text
    assert 'title="batch_voided"' in page.text and 'href="/console/audit?action=batch_voided"' in page.text
    rows = re.findall(r'<tr data-testid="audit-row">(.*?)</tr>', page.text, re.S)
    english = [text for row in rows for text in re.findall(r">([^<>]+)<", row) if _ENGLISH.search(text)]
    assert english == []

    # As recorded: the rows, the English page's summaries and the export.
    async with shop.ctx.db.read_session() as session:
        stored = (await session.scalars(select(StaffAuditEntry).order_by(StaffAuditEntry.id))).all()
    by_action = {e.action: e for e in stored}
    assert by_action["coupon_codes_made"].summary == "合作方券: batch 1 of 2 codes"
    assert by_action["staff_created"].object_type == "staff" and by_action["staff_created"].object_id == "olga"
    assert by_action["staff_created"].summary == "merchant=platform roles=support"
    english_page = await client.get("/console/audit?lang=en")
    assert "合作方券: batch 1 of 2 codes" in english_page.text and ">Batch voided<" in english_page.text
    export = await client.get("/console/audit/export", params={"format": "csv"})
    assert "合作方券: batch 1 of 2 codes" in export.text and ",batch_voided," in export.text


def test_every_action_the_shop_records_has_its_words_and_each_summary_pattern_says_it_in_chinese():
    """Each action code written as a literal has a text; each summary pattern, given what its action writes, says it
    without English (a pattern that no longer matches its action's wording shows up here)."""
    from quanyi.console.audit_said import action_text, summary_text
    from quanyi.console.i18n import MESSAGES
    from quanyi.console.texts.audit import SUMMARIES

    recorded = set()
    for path in _SRC.rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        if "record_action" in text or "audit(" in text:
            recorded.update(re.findall(r'action="([a-z0-9_]+)"', text))
            recorded.update(re.findall(r'(?:_audit|audit)\([^"\n]*"([a-z0-9_]+)"', text))
    missing = sorted(a for a in recorded if f"audit.a.{a}" not in MESSAGES["zh-CN"])
    assert missing == []
    assert action_text("no_such_action", "zh-CN") == "no_such_action"
    samples = {
        "sku_created": "VIP-1M Monthly at 1980", "sku_updated": "VIP-1M: price 1980, off sale",
        "coupon_issued": "新人券: 2 issued to members 3,4; refused {5: 'limit'}",
        "enterprise_created": "星辰科技: credit 500000 cents, invoice title 星辰科技, tax number -",
        "enterprise_top_up_refused": "TU1: 10000 cents CNY, transfer BANK-1; 未到账",
        "enterprise_top_up_extra_refunded": "alipay trade T1: 10000 cents CNY refunded at the gateway",
        "portal_top_up_requested": "TU2: 10000 cents CNY by online at alipay",
        "enterprise_purchase_made": "EP1: 3 x VIP-1M at 1980", "member_disabled": "2 sessions ended; reason: 刷单",
        "merchant_created": "茶馆: commission 500 bps, hold default days",
        "merchant_terms_set": "commission 250 bps, hold 7 days", "merchant_withdrawal_pay": "paid 10000 CNY: ICBC-1",
        "notification_discarded": "order_delivered via email: 地址无效",
        "refund_withdrawn": "1 keys back, delivery resumed: 误操作", "delivery_notice_resent": "channel not configured",
        "reconciliation_run": "gateways=alipay payments=3 refunds=1 top_ups=0 mismatches=0 repaired=0",
        "reseller_created": "分销A <a@example.com>, app id APP1, 60/min, credit 0 cents, callback none",
        "review_approved": "delivered: 老客户", "risk_policy_set": "challenge_at=40 review_at=60 deny_at=90",
        "gateway_configured": "enabled=True; fields: app_id", "staff_roles_set": "support,operator",
        "supplier_mapping_updated": "SUP1 sku 3: priority=1 enabled=False",
        "gateway_payout_recorded": "2026-12-01..2026-12-02 net=9900 fee=100 refunds=0 CNY",
        "portal_campaign_created": "CP1: 年会 (WeCom on, DingTalk off)",
    }
    for action, summary in samples.items():
        said = summary_text(action, summary, "zh-CN")
        assert said != summary and not _ENGLISH.search(said), (action, said)
    assert summary_text("merchant_terms_set", "commission 250 bps, hold 7 days", "zh-CN") == "佣金 2.5%，结算等待 7 天"
    assert summary_text("card_key_revealed", "ticket 4711: buyer says", "zh-CN") == "ticket 4711: buyer says"
    assert set(samples) <= set(SUMMARIES)
