"""Refusals met while setting the shop up are said in Chinese on console and portal pages too (console/said.py,
console/texts/said_setup.py): enterprise invoice data and contacts, tier prices, download links, payment gateway
settings, supplier credentials, staff and access; a bad amount on the refund form and the key-import form says
the money parser's reason ("1,50"); an expired download link opened in a browser gets a page in Chinese. The API
keeps its English messages and stable codes."""

from __future__ import annotations

import html
import re

import pytest

from console.support import csrf_token, logged_in, post_form
from console.test_console_said import _all_chinese, _refusals
from enterprises.portal_support import logged_in as portal_logged_in
from quanyi.console.said import say
from refund_helpers import cashier_pay

ENTERPRISE = {"code": "BIGCO", "name": "Big Co", "credit_limit": "0"}


async def test_the_enterprise_form_says_invoice_data_refusals_in_chinese(shop):
    client = await logged_in(shop, "enzo", roles=("owner",))
    for change, chinese in (({"tax_number": "123"}, "纳税人识别号：统一社会信用代码为 18 位"),
                            ({"bank_account": "12ab"}, "银行账号：6 至 40 位数字"),
                            ({"invoice_email": "ap@"}, "收票邮箱：邮箱地址不正确"),
                            ({"invoice_email": "13800138000"}, "收票邮箱须为邮箱地址"),
                            ({"code": "-BIGCO"}, "code：格式不正确"),
                            ({"credit_limit": "1,50"}, "credit_limit：逗号只能用作千位分隔符")):
        refused = await post_form(client, "/console/enterprises", {**ENTERPRISE, **change},
                                  page_url="/console/enterprises")
        assert refused.status_code == 422, change
        said = _refusals(refused.text)
        _all_chinese(said)
        assert any(chinese in text for text in said), (change, said)
    made = await post_form(client, "/console/enterprises", ENTERPRISE, page_url="/console/enterprises")
    assert made.status_code == 303
    again = await post_form(client, "/console/enterprises", ENTERPRISE, page_url="/console/enterprises")
    assert again.status_code == 409 and any("企业编码 BIGCO 已被使用" in text for text in _refusals(again.text))

    english = await client.get("/console/enterprises?lang=en")
    assert english.status_code == 200
    kept = await post_form(client, "/console/enterprises", {**ENTERPRISE, "code": "OTHER", "bank_account": "12ab"},
                           page_url="/console/enterprises")
    assert any("bank_account: 6-40 digits" in text for text in _refusals(kept.text))
    api = await shop.client.post("/api/admin/enterprises", headers=shop.admin,
                                 json={"code": "API", "name": "x", "invoice": {"tax_number": "123"}})
    assert api.status_code == 422 and api.json()["code"] == "invalid_input"
    assert api.json()["detail"].startswith("tax_number: a 统一社会信用代码 has 18 characters")


async def test_the_gateway_form_says_what_is_wrong_with_the_settings_in_chinese(shop):
    client = await logged_in(shop, "gina", roles=("owner",))
    missing = await post_form(client, "/console/gateways/stripe", {"enabled": "on"},
                              page_url="/console/gateways/stripe")
    assert missing.status_code == 422
    said = _refusals(missing.text)
    _all_chinese(said)
    assert any("stripe 的配置无效" in text and "webhook_secret：必填" in text for text in said), said
    wrong = await post_form(client, "/console/gateways/stripe", {"secret_key": "pk_live_1", "webhook_secret": "x",
                                                                 "timeout_seconds": "abc"},
                            page_url="/console/gateways/stripe")
    said = _refusals(wrong.text)
    _all_chinese(said)
    assert any("secret_key：Stripe 密钥以 sk_ 开头" in text and "webhook_secret：Stripe Webhook 签名密钥以 whsec_ 开头"
               in text and "timeout_seconds：请填写数字" in text for text in said), said
    assert "pk_live_1" not in wrong.text  # a refused form still never echoes a secret


async def test_a_bad_refund_amount_says_the_parsers_reason(shop, stocked_sku):
    order = await shop.create_order(stocked_sku.id, quantity=2)
    await cashier_pay(shop, order)
    client = await logged_in(shop, "fay", roles=("finance",))
    url = f"/console/orders/{order['order_no']}"
    comma = await post_form(client, f"{url}/refund", {"amount": "1,50", "reason": "asked"}, page_url=url)
    assert comma.status_code == 422
    said = _refusals(comma.text)
    assert any("金额格式不正确" in text and "逗号只能用作千位分隔符" in text for text in said), said
    _all_chinese(said)
    listed = (await shop.client.get(f"/api/admin/orders/{order['order_no']}/refunds", headers=shop.admin)).json()
    assert listed == []


async def test_a_bad_unit_cost_on_the_key_import_says_the_parsers_reason(shop, sku):
    client = await logged_in(shop, "kim", roles=("owner",))
    page = await client.get(f"/console/keys/skus/{sku.id}/import")
    assert page.status_code == 200
    headers = {"Origin": "http://test", "X-CSRF-Token": csrf_token(page.text)}
    upload = {"file": ("keys.txt", b"CODE-1\nCODE-2\n", "text/plain")}
    by_script = await client.post(f"/console/keys/skus/{sku.id}/imports", data={"unit_cost": "1,50"}, files=upload,
                                  headers={**headers, "Accept": "application/json"})
    assert by_script.status_code == 422
    error = by_script.json()["error"]
    assert error.startswith("单个成本不是有效金额：逗号只能用作千位分隔符"), error
    by_form = await client.post(f"/console/keys/skus/{sku.id}/imports", files=upload,
                                data={"unit_cost": "1,50", "csrf_token": csrf_token(page.text)},
                                headers={"Origin": "http://test"})
    assert by_form.status_code == 422
    assert any("逗号只能用作千位分隔符" in text for text in _refusals(by_form.text)), _refusals(by_form.text)


async def test_a_dead_download_link_opened_in_a_browser_gets_a_page_in_chinese(shop):
    dead = "/api/enterprise-downloads?format=csv&t=" + "x" * 40
    page = await shop.client.get(dead, headers={"Accept": "text/html,application/xhtml+xml"})
    assert page.status_code == 410 and page.headers["content-type"].startswith("text/html")
    assert "此下载链接已失效" in html.unescape(page.text)
    api = await shop.client.get(dead)
    assert api.status_code == 410 and api.json()["code"] == "download_link_invalid"
    assert api.json()["detail"].startswith("this download link is not valid")



@pytest.mark.parametrize("token", ["x" * 5, "x" * 30 + "!*", ""])
async def test_a_mangled_download_link_opened_in_a_browser_gets_the_same_page(shop, token):
    mangled = "/api/enterprise-downloads?format=csv&t=" + token
    page = await shop.client.get(mangled, headers={"Accept": "text/html,application/xhtml+xml"})
    assert page.status_code == 410 and page.headers["content-type"].startswith("text/html")
    assert "此下载链接已失效" in html.unescape(page.text)
    api = await shop.client.get(mangled, headers={"Accept": "application/json"})
    assert api.status_code == 422 and api.json()["code"] == "validation_failed"
    assert api.json()["errors"][0]["field"] == "query.t"

async def test_the_portal_says_a_role_refusal_in_chinese(shop):
    client = await portal_logged_in(shop, "ACME", "pete", "purchaser")
    refused = await client.get("/portal/users")
    assert refused.status_code == 403
    text = re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", refused.text)))
    assert "采购员: 您的角色不能执行此操作" in text and "cannot do this" not in text
    await client.aclose()


@pytest.mark.parametrize(("english", "chinese"), [
    ("give at least one tier (min_quantity 1 for a flat negotiated price)",
     "请至少填写一档价格（起购数量为 1 的一档即统一协议价）"),
    ("two tiers start at 10", "有两档价格的起购数量都是 10"),
    ("the tier from 100 costs more per item than the tier from 10; tiers must not rise with quantity",
     "起购 100 件的单价高于起购 10 件的单价：买得越多，单价不能越高"),
    ("at most 20 tiers", "最多 20 档价格"),
    ("unit_price_cents must be a positive whole number of cents", "单价须大于 0"),
    ("purchase B20261204001 has no live link 7", "采购单 B20261204001 没有有效的下载链接 7"),
    ("a contact needs an e-mail address or a phone number", "联系人须至少有邮箱或电话之一"),
    ("phone: not a valid phone number", "电话：手机号不正确"),
    ("email: not a valid e-mail address or mobile number", "邮箱：不是有效的邮箱地址或手机号"),
    ("enterprise ACME has no contact 3", "企业 ACME 没有联系人 3"),
    ("no enterprise 'ACME'", "企业 ACME 不存在"),
    ("credentials do not fit dialect quanyi: probe: quanyi credentials need app_id and secret",
     "接口凭据与接口协议 quanyi 不符：接口协议 quanyi 需要填写 app_id 和 secret"),
    ("credentials do not fit dialect card_platform: missing field 'customer_id'",
     "接口凭据与接口协议 card_platform 不符：缺少字段 customer_id"),
    ("to replace the credentials type all of them (missing: secret); leave all blank to keep the stored ones",
     "更换接口凭据时须全部重新填写（缺少：secret）；全部留空则保留已保存的凭据"),
    ("wechat configuration is not valid: : Value error, the APIv3 key must be exactly 32 ASCII characters",
     "wechat 的配置无效：APIv3 密钥须为 32 个 ASCII 字符"),
    ("alipay configuration is not valid: app_id: String should match pattern '^[0-9]{8,32}$'",
     "alipay 的配置无效：app_id：格式不正确"),
    ("Stripe (stripe) cannot be enabled without QUANYI_PUBLIC_BASE_URL, the shop's public https address",
     "Stripe（stripe）须先设置 QUANYI_PUBLIC_BASE_URL 才能启用：即本店的公网 https 地址（如 https://shop.example.com），"
     "支付渠道把付款通知和买家送回这个地址，本店从不从请求中获取它。请设置后重启服务，再启用"),
    ("you cannot disable your own account", "不能停用自己的账号"),
    ("no staff member named 'sally'", "员工 sally 不存在"),
    ("staff member 'sally' already exists", "员工 sally 已存在"),
    ("sally has no second factor to reset", "sally 没有开启两步验证，无需重置"),
    ("this needs the orders.refund permission", "需要权限 orders.refund"),
    ("only platform staff can open this page", "只有平台员工可以打开此页面"),
    ("no such batch of this coupon", "此优惠券没有这批券码"),
    ("only a delivered order's notice can be sent again", "只有已发货的订单可以重发发货通知"),
    ("give the sale limit as a whole number", "限售数量须为整数"),
    ("no gateway 'alipay' takes payments in this shop", "本店没有启用支付渠道 alipay"),
    ("params is not valid JSON: Expecting value (line 1)", "参数不是有效的 JSON（第 1 行：Expecting value）"),
    ('params must be a JSON object: {"name": value, ...}', '参数须为 JSON 对象，如 {"name": 值, ...}'),
    ("unknown rule kind 'telepathy'", "未知的规则类型 telepathy"),
    ("Alipay did not open a cashier page", "Alipay 没有打开收银台页面，请稍后再试"),
    ("a summary: with nothing the console knows", "a summary: with nothing the console knows"),
    ("name: something unknown", "name: something unknown"),
])
def test_setup_messages_are_said_in_chinese_and_kept_in_english(english: str, chinese: str):
    assert say(english, "zh-CN") == chinese
    assert say(english, "en") == english


def test_ledger_memos_are_said_in_chinese_with_their_numbers():
    import zoneinfo

    memos = {
        "alipay payment P20261205X for order Q20261205Y": "支付宝 支付单 P20261205X，订单 Q20261205Y",
        "order Q1 delivered": "订单 Q1 已发货",
        "order Q1 could not be delivered": "订单 Q1 无法发货",
        "refund R1: rejected by risk review: refund required": "退款 R1：风控审核拒绝：需要退款",
        "refund R1: 买家不要了": "退款 R1：买家不要了",
        "refund R1 refused; request reversed": "退款 R1 被拒绝，退款申请已冲回",
        "refund R1 paid out by wechat": "退款 R1 已由 微信支付 退给买家",
        "refund R1 credited to customer account 7": "退款 R1 退回客户账户 7",
        "paid from customer account 7": "从客户账户 7 付款",
        "purchase attempt S-9": "采购 S-9",
        "purchase attempt S-9 failed: supplier timeout": "采购 S-9 失败：supplier timeout",
        "purchase attempt S-9 cost 950, 50 less than debited": "采购 S-9 实际成本 9.50，比预扣少 0.50",
        "withdrawal W1 of acme paid (bank 42)": "商户 acme 的提现 W1 已打款（bank 42）",
        "commission withdrawal W2 of pro1 paid (bank 43)": "推广员 pro1 的佣金提现 W2 已打款（bank 43）",
        "sandbox settlement 2088A 2026-12-01..2026-12-04: net 4970 fee 30 refunds 0 CNY":
            "sandbox 结算单 2088A（2026-12-01 至 2026-12-04）：到账 49.70，手续费 0.30，退款 0.00 CNY",
        "sandbox settlement 2088A 2026-12-01..2026-12-04: net 4970 fee 30 refunds 0 CNY; 招商银行 0001":
            "sandbox 结算单 2088A（2026-12-01 至 2026-12-04）：到账 49.70，手续费 0.30，退款 0.00 CNY；招商银行 0001",
        "budget of benefit campaign C7": "福利活动 C7 的预算",
        "unclaimed budget of benefit campaign C7": "福利活动 C7 未领取的预算退回",
        "120 points earned by order Q1": "订单 Q1 获得 120 积分",
        "order Q1: 20 points clawed back for refunds": "订单 Q1 因退款追回 20 积分",
        "wire 4711": "wire 4711",  # an operator's note stays as typed
    }
    for english, chinese in memos.items():
        assert say(english, "zh-CN") == chinese, english
        assert say(english, "en") == english
    refused = ("settlement 2088A of sandbox was already recorded by olivia at 2026-12-05T10:40:34+00:00; "
               "nothing was booked again")
    said = say(refused, "zh-CN", zone=zoneinfo.ZoneInfo("Asia/Shanghai"))
    assert said == "sandbox 的结算单 2088A 已由 olivia 于 2026-12-05 18:40 记录过"
