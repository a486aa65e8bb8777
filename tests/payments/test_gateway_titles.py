"""A payment gateway is named in one place, its class (`title` in Chinese, `title_en` in English): the console's
memos, payment rows, ledger accounts and audit log, the storefront's and the portal's payment choices all read it
through quanyi.payments.titles; the console has no gateway names of its own (said.gateway.* is gone)."""

from __future__ import annotations

import pytest

from quanyi.console.audit_said import summary_text
from quanyi.console.i18n import MESSAGES
from quanyi.console.said import say
from quanyi.payments.alipay.gateway import AlipayGateway
from quanyi.payments.balance import BalanceGateway
from quanyi.payments.sandbox.gateway import SandboxGateway
from quanyi.payments.stripe.gateway import StripeGateway
from quanyi.payments.titles import gateway_title
from quanyi.payments.wechat.gateway import WechatGateway

GATEWAYS = (AlipayGateway, BalanceGateway, SandboxGateway, StripeGateway, WechatGateway)


def test_the_console_names_every_gateway_by_its_class():
    assert [key for key in MESSAGES["zh-CN"] if key.startswith("said.gateway.") or key == "gw.sandbox"] == []
    for gateway in GATEWAYS:
        assert gateway.title and gateway.title_en
        assert gateway_title(gateway.name, "zh-CN") == gateway.title
        assert gateway_title(gateway.name, "en") == gateway.title_en
        # old code: 'stripe' / 'sandbox' as codes, and 预存款 where the class says "Prepaid balance 预存款"
        assert say(f"{gateway.name} payment P1 for order O1", "zh-CN") == f"{gateway.title} 支付单 P1，订单 O1"
    assert gateway_title("paypalish", "zh-CN") is None
    assert say("paypalish payment P1 for order O1", "zh-CN") == "paypalish 支付单 P1，订单 O1"


def test_a_gateways_new_name_shows_everywhere_it_is_named(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(AlipayGateway, "title", "支付宝（新）")
    assert say("refund R1 paid out by alipay", "zh-CN") == "退款 R1 已由 支付宝（新） 退给买家"
    assert summary_text("portal_top_up_requested", "TU1: 10000 cents CNY by online at alipay", "zh-CN") \
        == "TU1：100.00 CNY，在线支付（支付宝（新））"


async def test_the_console_order_page_names_the_gateway_in_its_language(shop, app, paid_order):
    from console.support import logged_in

    client = await logged_in(shop, "olga", roles=("owner",))
    for lang, title in (("zh-CN", SandboxGateway.title), ("en", SandboxGateway.title_en)):
        page = await client.get(f"/console/orders/{paid_order['order_no']}?lang={lang}")
        assert page.status_code == 200
        assert f'data-testid="payment-gateway">{title} <code class="small muted">sandbox</code>' in page.text
