"""Supplier pages (balance, circuit, sync state, mappings, pull now) and payment gateway pages (configure, enable,
secrets write-only) in the console, through the same services as the admin API, every action audited."""

from __future__ import annotations

import html
import re

import pytest
from sqlalchemy import select

from console.support import logged_in, post_form
from quanyi.payments.models import GatewayConfig
from quanyi.staff.models import StaffAuditEntry
from quanyi.suppliers.models import SkuSupplierMapping, Supplier, SupplierStatus
from quanyi.testpeers.suppliers import CARD_PRODUCT, start_supplier_simulator
from suppliers.shop_support import map_sku, register

STRIPE_KEY = "sk_test_" + "4eC39HqLyjWDarjtT1zdp7dc" * 2
WEBHOOK_SECRET = "whsec_" + "9f8e7d6c5b4a" * 3


@pytest.fixture
def sim():  # type: ignore[no-untyped-def]
    simulator = start_supplier_simulator("quanyi")
    yield simulator
    simulator.stop()


async def _audit(shop, actor: str) -> list[tuple[str, str]]:  # type: ignore[no-untyped-def]
    async with shop.ctx.db.read_session() as session:
        rows = (await session.execute(
            select(StaffAuditEntry.action, StaffAuditEntry.object_id)
            .where(StaffAuditEntry.actor == actor, StaffAuditEntry.action != "login")
            .order_by(StaffAuditEntry.id))).all()
    return [tuple(r) for r in rows]


async def test_supplier_pages_show_balance_circuit_sync_and_change_mappings_through_the_service(shop, sim):
    await register(shop, sim)
    sku = await shop.make_sku(code="SUP-GIFT")
    client = await logged_in(shop, "suzy", permissions=("suppliers.manage",))

    listing = await client.get("/console/suppliers?lang=en")
    assert listing.status_code == 200 and "ACME" in listing.text and "Closed (healthy)" in listing.text
    assert "never" in listing.text  # not synced yet
    page = await client.get("/console/suppliers/ACME")
    assert 'data-testid="sync-now"' in page.text and "no-mappings" not in page.text
    for secret in sim.credentials.values():
        assert secret not in page.text and secret not in listing.text  # credentials are never shown

    synced = await post_form(client, "/console/suppliers/ACME/sync", {"mode": "catalog"},
                             page_url="/console/suppliers/ACME")
    assert synced.status_code == 303 and "m=synced" in synced.headers["location"]
    page = await client.get(synced.headers["location"] + "&lang=en")
    assert "Synced:" in page.text and CARD_PRODUCT in page.text
    assert page.text.count('data-testid="mapping-row"') == 0

    mapping = await map_sku(shop, sku.id, CARD_PRODUCT)
    page = await client.get("/console/suppliers/ACME")
    assert page.text.count('data-testid="mapping-row"') == 1 and "SUP-GIFT" in page.text
    saved = await post_form(client, f"/console/suppliers/ACME/mappings/{mapping['id']}", {"priority": "7"},
                            page_url="/console/suppliers/ACME")
    assert saved.status_code == 303
    async with shop.ctx.db.read_session() as session:
        row = await session.get(SkuSupplierMapping, mapping["id"])
        assert (row.priority, row.enabled) == (7, False)  # the box left unticked: disabled
    bad = await post_form(client, f"/console/suppliers/ACME/mappings/{mapping['id']}",
                          {"priority": "-3", "enabled": "on"}, page_url="/console/suppliers/ACME")
    assert bad.status_code == 422 and 'data-testid="flash"' in bad.text
    other = await post_form(client, f"/console/suppliers/NOPE/mappings/{mapping['id']}",
                            {"priority": "1", "enabled": "on"}, page_url="/console/suppliers/ACME")
    assert other.status_code == 404  # the mapping is not that supplier's
    async with shop.ctx.db.read_session() as session:
        row = await session.get(SkuSupplierMapping, mapping["id"])
        assert (row.priority, row.enabled) == (7, False)  # neither refused form changed anything

    paused = await post_form(client, "/console/suppliers/ACME/status", {"status": "disabled"},
                             page_url="/console/suppliers/ACME")
    assert paused.status_code == 303
    refused_sync = await post_form(client, "/console/suppliers/ACME/sync", {"mode": "quotes"},
                                   page_url="/console/suppliers/ACME")
    assert refused_sync.status_code == 409 and "disabled" in refused_sync.text
    await client.get("/console/suppliers/ACME?lang=zh-CN")  # and in Chinese: no English from the service
    refused_sync = await post_form(client, "/console/suppliers/ACME/sync", {"mode": "quotes"},
                                   page_url="/console/suppliers/ACME")
    assert refused_sync.status_code == 409 and "供应商 ACME 已停用：请先启用再同步" in refused_sync.text
    assert "enable it before syncing" not in refused_sync.text
    wrong = await post_form(client, "/console/suppliers/ACME/status", {"status": "gone"},
                            page_url="/console/suppliers/ACME")
    assert wrong.status_code == 422
    async with shop.ctx.db.read_session() as session:
        assert await session.scalar(select(Supplier.status).where(Supplier.code == "ACME")) \
            is SupplierStatus.DISABLED
    assert await _audit(shop, "suzy") == [("supplier_synced", "ACME"), ("supplier_mapping_updated", str(mapping["id"])),
                                          ("supplier_status_set", "ACME")]


async def test_a_gateway_is_configured_with_write_only_secrets_and_enabled(shop):
    client = await logged_in(shop, "olga", roles=("owner",))
    listing = await client.get("/console/gateways?lang=en")
    assert listing.status_code == 200 and 'data-gateway="stripe"' in listing.text
    form = await client.get("/console/gateways/stripe")
    assert 'name="secret_key"' in form.text and 'type="password"' in form.text

    missing = await post_form(client, "/console/gateways/stripe", {"secret_key": STRIPE_KEY, "enabled": "on"},
                              page_url="/console/gateways/stripe")
    assert missing.status_code == 422 and "webhook_secret" in missing.text  # required secret not given
    assert STRIPE_KEY not in missing.text  # a refused form never echoes a secret
    async with shop.ctx.db.read_session() as session:
        assert await session.scalar(select(GatewayConfig).where(GatewayConfig.gateway == "stripe")) is None

    saved = await post_form(client, "/console/gateways/stripe", {
        "secret_key": STRIPE_KEY, "webhook_secret": WEBHOOK_SECRET, "timeout_seconds": "20", "enabled": "on"},
        page_url="/console/gateways/stripe")
    assert saved.status_code == 303, saved.text
    listing = await client.get("/console/gateways?lang=en")
    stripe_row = re.search(r'data-gateway="stripe".*?</tr>', listing.text, re.S).group(0)  # type: ignore[union-attr]
    assert "Taking payments" in stripe_row
    assert "stripe" in shop.ctx.gateways.names()
    form = await client.get("/console/gateways/stripe?lang=en")
    assert STRIPE_KEY not in form.text and WEBHOOK_SECRET not in form.text
    assert form.text.count("set (never shown)") == 2 and 'value="20.0"' in form.text

    # Saving again with the secrets left blank keeps them; switching off takes the gateway out of service.
    again = await post_form(client, "/console/gateways/stripe", {"timeout_seconds": "12"},
                            page_url="/console/gateways/stripe")
    assert again.status_code == 303
    assert "stripe" not in shop.ctx.gateways.names()
    response = await shop.client.get("/api/admin/payment-gateways", headers=shop.admin)
    stripe = next(g for g in response.json() if g["name"] == "stripe")
    assert stripe["config"]["secret_key"] == "********" and stripe["config"]["timeout_seconds"] == 12.0
    assert not stripe["enabled"] and stripe["updated_by"] == "olga"
    assert await _audit(shop, "olga") == [("gateway_configured", "stripe"), ("gateway_configured", "stripe")]

    unknown = await client.get("/console/gateways/nopay")
    assert unknown.status_code == 404


async def test_a_supplier_top_up_sent_twice_is_credited_once_and_booked(shop, sim):
    await register(shop, sim)
    client = await logged_in(shop, "tina", roles=("owner",))
    page = await client.get("/console/suppliers/ACME")
    key = re.search(r'name="request_key" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
    form = {"amount": "1200.00", "note": "transfer 0042", "request_key": key,
            "csrf_token": re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)}  # type: ignore[union-attr]
    first = await client.post("/console/suppliers/ACME/top-up", data=form, headers={"Origin": "http://test"})
    again = await client.post("/console/suppliers/ACME/top-up", data=form, headers={"Origin": "http://test"})
    assert "m=topped_up" in first.headers["location"] and "m=top_up_repeated" in again.headers["location"]
    for bad in ("0", "-1", "12.345", "lots"):
        refused = await post_form(client, "/console/suppliers/ACME/top-up", {"amount": bad, "request_key": bad},
                                  page_url="/console/suppliers/ACME")
        assert refused.status_code == 422, bad
    async with shop.ctx.db.read_session() as session:
        assert await session.scalar(select(Supplier.balance_cents).where(Supplier.code == "ACME")) == 120_000
    ledger = (await shop.client.get("/api/admin/ledger/trial-balance", headers=shop.admin)).json()
    assert ledger["balanced"] and ledger["prepaid_drift"] == {}
    assert await _audit(shop, "tina") == [("supplier_topped_up", "ACME")]


async def test_the_wechat_pay_form_gives_its_hints_in_the_pages_language(shop):
    client = await logged_in(shop, "gwen", roles=("owner",))
    page = html.unescape((await client.get("/console/gateways/wechat")).text)
    for hint in ("与商户号绑定的 AppID", "APIv3 密钥：32 个 ASCII 字符", "证书序列号和公钥从中读取"):
        assert hint in page, hint
    assert "the AppID bound" not in page and "serial and key are read" not in page
    english = html.unescape((await client.get("/console/gateways/wechat?lang=en")).text)
    assert "the AppID bound to the merchant" in english


async def test_every_gateway_form_labels_its_fields_in_chinese_beside_their_config_keys(shop):
    from quanyi.payments.configuration import config_fields

    client = await logged_in(shop, "gina", roles=("owner",))
    for gateway in ("wechat", "alipay", "stripe"):
        page = html.unescape((await client.get(f"/console/gateways/{gateway}?lang=zh-CN")).text)
        for field in config_fields(gateway):
            label = re.search(rf'data-testid="label-{field.name}">([^<]*)</span> <code[^>]*>{field.name}</code>', page)
            assert label and re.search(r"[\u4e00-\u9fff]", label.group(1)), (gateway, field.name)
    wechat = html.unescape((await client.get("/console/gateways/wechat")).text)
    assert re.search(r">商户号</span> <code[^>]*>mchid</code>", wechat)
