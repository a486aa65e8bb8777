"""Gateway accounts stored per shop: validated, secrets encrypted at rest and masked when shown, merged on
update, applied to the running registry and picked up by other server processes, bound to their gateway."""

from __future__ import annotations

from typing import Annotated

import pytest
from pydantic import BaseModel, ConfigDict, SecretStr, StringConstraints
from sqlalchemy import select, update

from helpers import raw_database_bytes, signed_notification
from quanyi.context import build_context
from quanyi.payments import configuration
from quanyi.payments.configuration import GatewayKind
from quanyi.payments.models import GatewayConfig
from quanyi.payments.sandbox.gateway import SandboxGateway
from quanyi.tasks import refresh_gateways

SECRET = "tp-secret-" + "7f3a9c1e5b" * 3


class TryPayConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    merchant_id: Annotated[str, StringConstraints(pattern=r"^M\d{6}$")]
    secret: Annotated[SecretStr, StringConstraints(min_length=16)]
    label: str = "TestPay"


class TryPay(SandboxGateway):
    """The sandbox protocol under another name: a stand-in kind whose behaviour depends on its stored secret."""

    name = "testpay"
    title = "TestPay"


@pytest.fixture(autouse=True)
def testpay_kind():  # type: ignore[no-untyped-def]
    configuration.register_kind(GatewayKind(
        name="testpay", title="TestPay", config_model=TryPayConfig,
        build=lambda cfg, http: TryPay(secret=cfg.secret.get_secret_value(), http=http)))
    yield
    configuration._KINDS.pop("testpay", None)


def _put(shop, body, token=None):  # type: ignore[no-untyped-def]
    headers = {"Authorization": f"Bearer {token}"} if token else shop.admin
    return shop.client.put("/api/admin/payment-gateways/testpay", json=body, headers=headers)


async def test_a_valid_configuration_is_stored_encrypted_and_takes_payments(shop, client, order):
    response = await _put(shop, {"config": {"merchant_id": "M123456", "secret": SECRET}})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["active"] and body["enabled"] and body["config"] == {
        "merchant_id": "M123456", "secret": "********", "label": "TestPay"}
    listed = (await client.get("/api/admin/payment-gateways", headers=shop.admin)).json()
    assert [g["name"] for g in listed if g["configured"]] == ["testpay"]
    assert SECRET not in str(listed)

    raw = await raw_database_bytes(shop.ctx.db)
    assert b"M123456" not in raw and SECRET.encode() not in raw  # the whole account is one ciphertext

    # The gateway built from the stored secret verifies notifications signed with it.
    payment = (await client.post(f"/api/orders/{order['order_no']}/payments", headers=shop.auth(order),
                                 json={"gateway": "testpay"})).json()
    params = signed_notification(SECRET, payment_no=payment["payment_no"], amount_cents=1980, currency="CNY")
    assert (await client.post("/payments/testpay/notify", data=params)).text == "success"
    assert (await shop.get_order(order))["status"] == "delivered"


async def test_invalid_configuration_is_refused_without_echoing_it(shop, client):
    response = await _put(shop, {"config": {"merchant_id": "nope", "secret": "short-secret-x"}})
    assert response.status_code == 422
    problem = response.json()
    assert problem["code"] == "invalid_gateway_config"
    assert {e["field"] for e in problem["errors"]} == {"merchant_id", "secret"}
    assert "short-secret-x" not in response.text
    assert await shop.count(GatewayConfig) == 0
    assert "testpay" not in shop.ctx.gateways.names()

    extra = await _put(shop, {"config": {"merchant_id": "M123456", "secret": SECRET, "sneaky": 1}})
    assert extra.status_code == 422 and "sneaky" in extra.text
    for bad in ({"enabled": "maybe"}, {"config": "x"}, {"config": {}, "surprise": True}):
        assert (await _put(shop, bad)).status_code == 422
    unknown = await shop.client.put("/api/admin/payment-gateways/paypalish", json={"config": {}}, headers=shop.admin)
    assert unknown.status_code == 404 and unknown.json()["code"] == "unknown_gateway"
    assert (await _put(shop, {"config": {}}, token="wrong-token-123456")).status_code == 401


async def test_updates_keep_secrets_left_out_and_disabling_stops_payments(shop, client, order):
    assert (await _put(shop, {"config": {"merchant_id": "M123456", "secret": SECRET}})).status_code == 200
    off = await _put(shop, {"enabled": False})
    assert off.status_code == 200 and not off.json()["active"] and off.json()["configured"]
    assert "testpay" not in shop.ctx.gateways.names()
    start = await client.post(f"/api/orders/{order['order_no']}/payments", headers=shop.auth(order),
                              json={"gateway": "testpay"})
    assert start.status_code == 404

    # Re-enable, changing only the label; the masked secret sent back as-is keeps the stored one.
    on = await _put(shop, {"config": {"label": "TestPay 2", "secret": "********"}})
    assert on.json()["active"] and on.json()["config"]["label"] == "TestPay 2"
    gateway = shop.ctx.gateways.get("testpay")
    assert gateway._secret == SECRET  # noqa: SLF001 - the rebuilt gateway really has the kept secret


async def test_another_server_process_picks_the_change_up(shop, settings):
    assert (await _put(shop, {"config": {"merchant_id": "M123456", "secret": SECRET}})).status_code == 200
    other = build_context(settings)  # a second process: its own registry, same database
    try:
        assert "testpay" not in other.gateways.names()
        await refresh_gateways(other)
        assert "testpay" in other.gateways.names()
        assert (await _put(shop, {"enabled": False})).status_code == 200
        await refresh_gateways(other)
        assert "testpay" not in other.gateways.names() and "sandbox" in other.gateways.names()
    finally:
        await other.close()


async def test_a_configuration_copied_onto_another_gateway_does_not_decrypt(shop, settings):
    configuration.register_kind(GatewayKind(
        name="otherpay", title="OtherPay", config_model=TryPayConfig,
        build=lambda cfg, http: TryPay(secret=cfg.secret.get_secret_value(), http=http)))
    try:
        assert (await _put(shop, {"config": {"merchant_id": "M123456", "secret": SECRET}})).status_code == 200
        other = await shop.client.put("/api/admin/payment-gateways/otherpay", headers=shop.admin,
                                      json={"config": {"merchant_id": "M654321", "secret": "o" * 20}})
        assert other.status_code == 200
        stolen = await shop.scalar(select(GatewayConfig.ciphertext).where(GatewayConfig.gateway == "testpay"))
        async with shop.ctx.db.transaction() as session:
            await session.execute(update(GatewayConfig).where(GatewayConfig.gateway == "otherpay")
                                  .values(ciphertext=stolen))
        fresh = build_context(settings)
        try:
            await refresh_gateways(fresh)
            assert "otherpay" not in fresh.gateways.names() and "testpay" in fresh.gateways.names()
        finally:
            await fresh.close()
        listed = (await shop.client.get("/api/admin/payment-gateways", headers=shop.admin)).json()
        broken = next(g for g in listed if g["name"] == "otherpay")
        assert broken["config"] is None and "authentication" in broken["problem"]
    finally:
        configuration._KINDS.pop("otherpay", None)


async def test_a_real_gateway_account_is_shown_without_its_keys(shop, client):
    """WeChat Pay: the merchant private key (PEM) and the APIv3 key never leave the shop, not even to admins."""
    from quanyi.testpeers.wechat import WechatPaySimulator

    account = WechatPaySimulator(mode="manual").merchant_config(base_url="http://127.0.0.1:9")
    response = await client.put("/api/admin/payment-gateways/wechat", headers=shop.admin, json={"config": account})
    assert response.status_code == 200, response.text
    shown = response.json()["config"]
    assert shown["merchant_private_key"] == "********" and shown["apiv3_key"] == "********"
    assert shown["mchid"] == account["mchid"] and "PRIVATE KEY" not in response.text
    assert account["apiv3_key"] not in response.text
    assert "wechat" in shop.ctx.gateways.names()
    raw = await raw_database_bytes(shop.ctx.db)
    assert b"PRIVATE KEY" not in raw and account["apiv3_key"].encode() not in raw
