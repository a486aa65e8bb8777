"""Where the shop sends gateways, buyers and suppliers comes from configuration only (quanyi/urls.py): never
from the Host header a client chose; real gateways are not enabled or started without QUANYI_PUBLIC_BASE_URL."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from pydantic import BaseModel, ValidationError
from sqlalchemy import select

from helpers import make_settings, with_csrf
from quanyi.config import generate_secrets_env
from quanyi.orders.access import COOKIE_NAME, cookie_with_token
from quanyi.payments import configuration
from quanyi.payments.gateway import Checkout, CheckoutRequest
from quanyi.payments.models import GatewayConfig
from quanyi.payments.sandbox.gateway import SandboxGateway
from quanyi.suppliers.routing import callback_base_url
from quanyi.tasks import refresh_gateways

EVIL = {"Host": "127.0.0.1:8399", "X-Forwarded-Host": "evil.example"}


class Recording(SandboxGateway):
    """The sandbox, remembering the checkout requests it was given (a real gateway gets them over the wire)."""

    name = "recording"
    title = "Recording"

    def __init__(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
        super().__init__(*args, **kwargs)
        self.requests: list[CheckoutRequest] = []

    async def create_checkout(self, request: CheckoutRequest) -> Checkout:
        self.requests.append(request)
        return await super().create_checkout(request)


class _RecordingConfig(BaseModel):
    secret: str


@pytest.fixture
def recording(shop) -> Recording:
    gateway = Recording(secret="recording-secret-0123456789", http=shop.ctx.http)
    shop.ctx.gateways.register(gateway)
    return gateway


@pytest.mark.parametrize("configured", ["https://shop.example.com", None], ids=["configured", "unset"])
async def test_a_forged_host_header_chooses_no_callback_url(shop, client, order, recording, configured):
    shop.ctx.settings.public_base_url = configured
    expected = configured or "http://127.0.0.1:8000"  # unset: the local address, still not the Host header
    api = await client.post(f"/api/orders/{order['order_no']}/payments", json={"gateway": "recording"},
                            headers={**shop.auth(order), **EVIL})
    assert api.status_code == 201, api.text
    assert api.json()["cashier_url"].startswith(expected + "/sandbox/cashier?")
    client.cookies.set(COOKIE_NAME, cookie_with_token(None, order["order_no"], order["access_token"]))
    form = await with_csrf(client, {"gateway": "recording"})
    page = await client.post(f"/orders/{order['order_no']}/pay", data=form, headers=EVIL)
    assert page.status_code in (200, 303)
    for request in recording.requests:
        assert request.notify_url == f"{expected}/payments/recording/notify"
        assert request.return_url == f"{expected}/orders/{order['order_no']}?from=cashier"
    assert len(recording.requests) == 2
    assert "8399" not in page.headers.get("location", "") + page.text and "evil" not in page.text


async def test_supplier_callbacks_use_the_configured_address(shop):
    shop.ctx.settings.public_base_url = "https://shop.example.com"
    assert callback_base_url(shop.ctx) == "https://shop.example.com"


async def test_a_real_gateway_is_not_enabled_without_the_public_address(shop, client):
    shop.ctx.settings.public_base_url = None
    response = await client.put("/api/admin/payment-gateways/alipay", headers=shop.admin,
                                json={"enabled": True, "config": {}})
    assert response.status_code == 409
    body = response.json()
    assert body["code"] == "public_base_url_missing" and "QUANYI_PUBLIC_BASE_URL" in body["detail"]
    assert await shop.count(GatewayConfig) == 0


async def test_a_stored_gateway_is_not_started_without_the_public_address(shop, caplog):
    configuration.register_kind(configuration.GatewayKind(
        name="recording", title="Recording", config_model=_RecordingConfig,
        build=lambda cfg, http: Recording(secret=cfg.secret, http=http)))
    try:
        async with shop.ctx.db.transaction() as session:
            await configuration.save_gateway_config(
                session=session, cipher=shop.ctx.cipher, name="recording", config={"secret": "s" * 20},
                enabled=True, public_base_url="https://shop.example.com")
        await refresh_gateways(shop.ctx)
        assert "recording" in shop.ctx.gateways.names()
        shop.ctx.settings.public_base_url = None  # e.g. a restart with the setting lost
        configuration._refused_without_url.discard("recording")
        with caplog.at_level(logging.ERROR, logger="quanyi.payments.configuration"):
            await refresh_gateways(shop.ctx)
        assert "recording" not in shop.ctx.gateways.names()
        assert "gateway recording not started: QUANYI_PUBLIC_BASE_URL is not set" in caplog.text
        assert (await shop.scalar(select(GatewayConfig.enabled))) is True  # stored as it was: starts once set
    finally:
        configuration._KINDS.pop("recording", None)


def test_init_writes_the_address_and_bad_addresses_are_refused(tmp_path: Path):
    assert "QUANYI_PUBLIC_BASE_URL=http://127.0.0.1:8000" in generate_secrets_env()
    assert "QUANYI_PUBLIC_BASE_URL=https://shop.example.com" in generate_secrets_env("https://shop.example.com")
    for bad in ("shop.example.com", "ftp://shop.example.com", "https://shop.example.com/?x=1", "https://"):
        with pytest.raises(ValidationError, match="QUANYI_PUBLIC_BASE_URL must be an absolute http"):
            make_settings(f"sqlite:///{tmp_path}/x.db", public_base_url=bad)
    assert make_settings(f"sqlite:///{tmp_path}/x.db", public_base_url="https://a.example/shop/").public_base_url \
        == "https://a.example/shop"
