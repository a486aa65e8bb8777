"""QUANYI_RISK_CAPTCHA_VERIFIER plugs a captcha provider in without code changes; a bad value stops the shop
at startup with a clear message."""

from __future__ import annotations

import subprocess
import sys

import pytest
from pydantic import ValidationError

from helpers import make_settings
from notifications.support import settings_env
from quanyi.context import build_context
from quanyi.orders.models import Order
from risk.captcha_plugin import OneTimeTokenCaptcha
from risk.support import add_rule, checkout, decisions, reason_codes

PLUGIN = "risk.captcha_plugin"


@pytest.fixture
def settings(database_url: str):
    return make_settings(database_url, smtp_host="127.0.0.1", smtp_from="shop@example.com",
                         risk_captcha_verifier=f" {PLUGIN}:make_verifier ")


@pytest.fixture
async def goods(shop):
    sku = await shop.make_sku(code="CAPTCHA-GOODS")
    await shop.stock(sku, 10)
    return sku


async def test_the_configured_verifier_answers_challenges(shop, goods):
    assert isinstance(shop.ctx.risk.captcha, OneTimeTokenCaptcha)
    await add_rule(shop, "new_account", {"min_amount_cents": 0}, action="challenge")
    challenged = await checkout(shop, goods.id, contact="new@example.com")
    assert challenged.status_code == 403 and challenged.json()["captcha_accepted"] is True
    wrong = await checkout(shop, goods.id, contact="new@example.com", captcha_token="made-up")
    assert wrong.status_code == 422 and wrong.json()["code"] == "verification_failed"
    assert await shop.count(Order) == 0
    done = await checkout(shop, goods.id, contact="new@example.com", ip="203.0.113.9", captcha_token="plugin-token-1")
    assert done.status_code == 201, done.text
    assert shop.ctx.risk.captcha.seen[-1] == ("plugin-token-1", "203.0.113.9")
    entry = (await decisions(shop))[0]
    assert entry["outcome"] == "verified" and reason_codes(entry) == ["test_new_account"]


async def test_a_buyer_who_is_not_challenged_needs_no_captcha(shop, goods):
    assert (await checkout(shop, goods.id, contact="new@example.com")).status_code == 201  # no rules
    assert shop.ctx.risk.captcha.seen == []


@pytest.mark.parametrize(("value", "message"), [
    ("risk.captcha_plugin.make_verifier", "must look like 'package.module:factory'"),
    ("no_such_package.captcha:make", "cannot import module 'no_such_package.captcha' (ModuleNotFoundError"),
    (f"{PLUGIN}:missing", f"module '{PLUGIN}' has no 'missing'"),
    (f"{PLUGIN}:NOT_CALLABLE", "is not callable"),
])
def test_a_bad_path_is_refused_with_what_is_wrong(database_url, value, message):
    with pytest.raises(ValidationError) as caught:
        make_settings(database_url, risk_captcha_verifier=value)
    assert "QUANYI_RISK_CAPTCHA_VERIFIER" in str(caught.value) and message in str(caught.value)


@pytest.mark.parametrize(("factory", "message"), [
    ("not_a_verifier", "returned object, which has no `async def verify(token, *, ip)` method"),
    ("broken_factory", "failed (RuntimeError: captcha service key missing)"),
])
def test_a_factory_that_gives_no_verifier_stops_the_shop_from_starting(database_url, factory, message):
    settings = make_settings(database_url, risk_captcha_verifier=f"{PLUGIN}:{factory}")
    with pytest.raises(ValueError, match="QUANYI_RISK_CAPTCHA_VERIFIER") as caught:
        build_context(settings)
    assert message in str(caught.value)


def test_serve_refuses_to_start_with_a_bad_path(database_url, tmp_path):
    env = settings_env(make_settings(database_url))
    env["QUANYI_RISK_CAPTCHA_VERIFIER"] = "no_such_package.captcha:make"
    result = subprocess.run([sys.executable, "-m", "quanyi.cli", "serve", "--port", "1"], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert result.returncode == 2
    assert "Configuration problem" in result.stderr and "QUANYI_RISK_CAPTCHA_VERIFIER" in result.stderr
    assert "Traceback" not in result.stderr
