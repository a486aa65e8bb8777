"""The `quanyi` command as an operator uses it: real subprocesses in an empty directory."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest


def _quanyi(cwd: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("QUANYI_")}
    clean.update({"COLUMNS": "200", "NO_COLOR": "1", **(env or {})})
    return subprocess.run([sys.executable, "-m", "quanyi.cli", *args], cwd=cwd, env=clean, capture_output=True,
                          text=True, timeout=120, stdin=subprocess.DEVNULL)


def test_help_lists_the_commands(tmp_path):
    result = _quanyi(tmp_path, "--help")
    assert result.returncode == 0
    for command in ("init", "migrate", "demo", "serve", "sweep", "keys"):
        assert command in result.stdout


def test_missing_secrets_give_a_clear_message_not_a_traceback(tmp_path):
    result = _quanyi(tmp_path, "keys", "stock")
    assert result.returncode == 2
    assert "Configuration problem" in result.stderr and "quanyi init" in result.stderr
    assert "Traceback" not in result.stderr


def test_operator_session_init_migrate_demo_import_void(tmp_path, database_url):
    env = {"QUANYI_DATABASE_URL": database_url}
    init = _quanyi(tmp_path, "init", env=env)
    assert init.returncode == 0, init.stderr
    secrets_file = tmp_path / "var" / "quanyi.env"
    assert stat.S_IMODE(secrets_file.stat().st_mode) == 0o600
    first = secrets_file.read_text()
    assert "QUANYI_CARD_KEYS=k1:" in first and "QUANYI_SANDBOX_ENABLED=true" in first  # the demo pays in the sandbox
    assert _quanyi(tmp_path, "init", env=env).returncode == 0
    assert secrets_file.read_text() == first  # never silently replaced

    assert "up to date" in _quanyi(tmp_path, "migrate", env=env).stdout
    demo = _quanyi(tmp_path, "demo", env=env)
    assert demo.returncode == 0 and "Demo data loaded" in demo.stdout, demo.stderr
    login_file = tmp_path / "var" / "console-login.txt"  # the demo's console owner, password shown once
    assert stat.S_IMODE(login_file.stat().st_mode) == 0o600 and "username: owner" in login_file.read_text()
    assert login_file.read_text().split("password: ")[1].strip() in demo.stdout
    assert "Console: http://127.0.0.1:8000/console" in demo.stdout  # where `quanyi serve` listens by default
    again = _quanyi(tmp_path, "demo", env={**env, "QUANYI_PUBLIC_BASE_URL": "http://127.0.0.1:8766"})
    assert "already present" in again.stdout and "var/console-login.txt" in again.stdout
    assert "Console: http://127.0.0.1:8766/console" in again.stdout  # the shop's own address once it has one

    keys = tmp_path / "keys.csv"
    keys.write_text("card_no,password,expires\nNEW0001,PW1,2099-01-01\nNEW0002,PW2\nNEW0001,PW1\nA,B,C,D\n")
    result = _quanyi(tmp_path, "keys", "import", str(keys), "--sku", "star-vip-1m", "--source", "invoice 42",
                     env=env)
    assert result.returncode == 0, result.stderr
    assert "importing" in result.stdout  # the progress bar
    assert "line 4: duplicate" in result.stdout and "line 5: invalid" in result.stdout
    stock = _quanyi(tmp_path, "keys", "stock", env=env)
    assert stock.returncode == 0
    line = next(row for row in stock.stdout.splitlines() if "STAR-VIP-1M" in row)
    assert " 42 " in line  # 40 demo keys + 2 imported

    void = _quanyi(tmp_path, "keys", "void", "1", "--reason", "supplier recall", env=env)
    assert void.returncode == 0 and "withdrawn" in void.stdout
    again = _quanyi(tmp_path, "keys", "void", "1", "--reason", "again", env=env)
    assert again.returncode == 1 and "batch_already_voided" in again.stderr
    assert "Expired 0 orders" in _quanyi(tmp_path, "sweep", env=env).stdout


@pytest.mark.parametrize(("args", "expected"), [
    (["keys", "import", "nope.txt", "--sku", "X"], "does not exist"),
    (["keys", "import"], "Missing argument"),
    (["keys", "void", "zero", "--reason", "x"], "valid integer"),
    (["serve", "--port", "70000"], "65535"),
    (["frobnicate"], "No such command"),
])
def test_wrong_arguments_are_usage_errors(tmp_path, args, expected):
    result = _quanyi(tmp_path, *args)
    assert result.returncode == 2
    assert expected in result.stderr


def test_importing_into_an_unknown_sku_says_so(tmp_path, database_url):
    env = {"QUANYI_DATABASE_URL": database_url}
    assert _quanyi(tmp_path, "init", env=env).returncode == 0
    keys = tmp_path / "keys.txt"
    keys.write_text("CODE1\n")
    result = _quanyi(tmp_path, "keys", "import", str(keys), "--sku", "NO-SUCH-SKU", env=env)
    assert result.returncode == 1
    assert "sku_not_found" in result.stderr and "Traceback" not in result.stderr


def test_gateway_commands_refuse_unknown_gateways_and_bad_files(tmp_path, database_url):
    env = {"QUANYI_DATABASE_URL": database_url}
    assert _quanyi(tmp_path, "init", env=env).returncode == 0
    listed = _quanyi(tmp_path, "gateways", "list", env=env)
    assert listed.returncode == 0 and "Payment gateways" in listed.stdout, listed.stderr
    unknown = _quanyi(tmp_path, "gateways", "set", "paypalish", env=env)
    assert unknown.returncode == 1 and "unknown_gateway" in unknown.stderr
    bad = tmp_path / "bad.json"
    for content in ("{not json", "[1, 2]"):
        bad.write_text(content)
        result = _quanyi(tmp_path, "gateways", "set", "paypalish", "--config", str(bad), env=env)
        assert result.returncode == 2 and "JSON" in result.stderr and "Traceback" not in result.stderr


def test_gateway_set_stores_an_encrypted_masked_configuration(tmp_path, database_url):
    env = {"QUANYI_DATABASE_URL": database_url}
    assert _quanyi(tmp_path, "init", env=env).returncode == 0
    assert _quanyi(tmp_path, "migrate", env=env).returncode == 0
    config = tmp_path / "stripe.json"
    config.write_text('{"secret_key": "sk_test_cli_0123456789", "webhook_secret": "whsec_cli_0123456789"}')
    saved = _quanyi(tmp_path, "gateways", "set", "stripe", "--config", str(config), env=env)
    assert saved.returncode == 0 and "Saved stripe (enabled)" in saved.stdout, saved.stderr
    listed = _quanyi(tmp_path, "gateways", "list", env=env)
    assert "stripe" in listed.stdout and "active" in listed.stdout and "secret_key=********" in listed.stdout
    assert "sk_test_cli" not in listed.stdout
    config.write_text('{"secret_key": "pk_wrong_kind_of_key"}')
    refused = _quanyi(tmp_path, "gateways", "set", "stripe", "--config", str(config), env=env)
    assert refused.returncode == 1 and "invalid_gateway_config" in refused.stderr and "secret_key" in refused.stderr
    assert "pk_wrong" not in refused.stderr
    disabled = _quanyi(tmp_path, "gateways", "set", "stripe", "--disable", env=env)
    assert disabled.returncode == 0 and "disabled" in _quanyi(tmp_path, "gateways", "list", env=env).stdout
