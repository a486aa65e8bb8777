"""Codes are masked wherever staff see them, and a plaintext card key never reaches a log."""

from __future__ import annotations

import base64
import csv
import logging
import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from quanyi.inventory import masking
from quanyi.inventory.masking import install_log_redaction, mask_code, mask_contact, redact, remember_codes
from quanyi.testpeers.suppliers import CARD_PRODUCT, start_supplier_simulator
from staff.staff_helpers import staff_headers
from suppliers.routing.support import add_supplier, card_order_paid, run_due

REASON = "checking a complaint from the buyer"


def test_mask_code_shows_only_the_ends():
    assert mask_code("ABCD-EFGH-JKLM-NPQR") == "AB" + "*" * 12 + "QR"
    assert mask_code("ABCDEFGH") == "AB****GH"
    assert mask_code("ABC123") == "******"  # too short to show anything
    assert mask_code("") == "" and mask_code(None) == ""
    assert mask_contact("buyer@example.com") == "b***@example.com"
    assert mask_contact("13812345678") == "138****5678"


def test_redaction_keeps_the_shape_of_records_that_carry_no_code():
    install_log_redaction()
    remember_codes(["SHAPE-TEST-CODE-1"])
    factory = logging.getLogRecordFactory()
    access = factory("uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d',
                     ("127.0.0.1:5000", "GET", "/api/catalog", "1.1", 200), None)
    assert access.args == ("127.0.0.1:5000", "GET", "/api/catalog", "1.1", 200)  # uvicorn unpacks these
    leaky = factory("quanyi.x", logging.INFO, __file__, 1, "code %s for %s", ("SHAPE-TEST-CODE-1", "x"), None)
    assert leaky.getMessage() == f"code {mask_code('SHAPE-TEST-CODE-1')} for x"


_PIECES = st.text(alphabet="AB9卡-.:;=,|'\" \t\x1f", min_size=1, max_size=6)


@settings(deadline=None)  # pure CPU and quick, but a machine shared by many test runs may stall any example
@given(st.lists(_PIECES, min_size=1, max_size=5).map("".join))
def test_the_registry_remembers_every_part_of_a_code_a_log_line_can_show(code):
    """The parts remembered are the ones the registry always hashed (the code, its card number / password
    parts of 3+ characters) less those that can never be one word of a log line, the only thing redact()
    looks up; and each of them is masked in a log line once remembered."""
    always = {part for part in {code, *re.split(r"[\x1f,\t ]|-{4}", code)} if len(part) >= 3}
    words = set(masking._words_of(code))
    assert words == {part for part in always if masking._WORD.fullmatch(part)}
    remember_codes([code])
    for word in words:
        assert redact(f"imported {word} ok") == f"imported {mask_code(word)} ok"


async def test_no_plaintext_code_in_debug_logs_through_import_delivery_reveal_and_trace(shop, caplog):
    caplog.set_level(logging.DEBUG)
    for name in ("sqlalchemy.engine", "httpx", "quanyi"):
        logging.getLogger(name).setLevel(logging.DEBUG)
    try:
        sku = await shop.make_sku()
        codes = await shop.stock(sku, 3)
        order = await shop.create_order(sku.id)
        await shop.pay(order)
        sold = (await shop.reveal(order))[0]["code"]
        support = await staff_headers(shop, "support", "card_keys.reveal", "leaks.trace")
        trace = await shop.client.post("/api/admin/leaks/trace", json={"codes": codes}, headers=support)
        assert trace.status_code == 200
        card_key_id = next(item["card_key_id"] for item in trace.json()["items"] if item["status"] == "sold")
        staff_view = await shop.client.post(f"/api/admin/card-keys/{card_key_id}/reveal", json={"reason": REASON},
                                            headers=support)
        assert staff_view.json()["code"] == sold

        # Careless code paths: a code formatted into a message, an argument, and a traceback.
        log = logging.getLogger("quanyi.careless")
        log.warning("buyer complained about %s", sold)
        log.info(f"stock line was {codes[1]}----{codes[2]}")
        try:
            raise ValueError(f"cannot redeem {codes[2]}")
        except ValueError:
            log.exception("redeem failed")
    finally:
        for name in ("sqlalchemy.engine", "httpx", "quanyi"):
            logging.getLogger(name).setLevel(logging.NOTSET)

    text = caplog.text + "".join(r.exc_text or "" for r in caplog.records)
    assert "buyer complained about" in text and "redeem failed" in text and "Traceback" in text
    assert len(caplog.records) > 20  # the SQL statements of the whole flow were logged too
    for code in codes:
        assert code not in text
    assert mask_code(sold) in text


@pytest.mark.parametrize("dialect", ["quanyi", "card_platform"])
async def test_a_code_bought_from_a_supplier_is_masked_in_logs_before_anyone_reveals_it(shop, caplog, dialect):
    caplog.set_level(logging.INFO)
    # A seed no other test uses: the simulator's codes follow from it, and masking remembers codes per process.
    sim = start_supplier_simulator(dialect, seed=1000 + secrets.randbelow(10**6))
    try:
        sku = await shop.make_sku()
        await add_supplier(shop, sim, code="masked", sku=sku, product_code=CARD_PRODUCT)
        order = await card_order_paid(shop, sku)
        assert await run_due(shop) == 1
        assert (await shop.get_order(order))["status"] == "delivered"
        [bought] = sim.order(f"{order['order_no']}-01").codes
    finally:
        sim.stop()
    # The quanyi protocol sends the password alone; the card platform sends card number and password.
    received = [bought.password] + ([bought.number] if dialect == "card_platform" else [])
    logging.getLogger("quanyi.careless").warning("supplier sent %s", " / ".join(received))
    assert "supplier sent" in caplog.text
    for part in received:
        assert part not in caplog.text and mask_code(part) in caplog.text
    [revealed] = await shop.reveal(order)  # the same code, shown to nobody before the log line
    assert revealed["code"] == bought.password


def _cli(cwd: Path, env: dict[str, str], *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("QUANYI_")}
    clean.update({"COLUMNS": "250", "NO_COLOR": "1", **env})
    return subprocess.run([sys.executable, "-m", "quanyi.cli", *args], cwd=cwd, env=clean, capture_output=True,
                          text=True, timeout=120, input=stdin if stdin is not None else "")


def _env(settings, **overrides: str) -> dict[str, str]:
    env = {
        "QUANYI_DATABASE_URL": settings.database_url,
        "QUANYI_ADMIN_TOKEN": settings.admin_token.get_secret_value(),
        "QUANYI_APP_SECRET": settings.app_secret.get_secret_value(),
        "QUANYI_CARD_KEYS": settings.card_keys.get_secret_value(),
        "QUANYI_CARD_KEY_ACTIVE_ID": settings.card_key_active_id,
        "QUANYI_CARD_KEY_HASH_KEY": settings.card_key_hash_key.get_secret_value(),
        "QUANYI_SANDBOX_SECRET": settings.sandbox_secret.get_secret_value(),
    }
    env.update(overrides)
    return env


async def test_operator_cli_staff_list_trace_rotate_with_masked_output(shop, tmp_path):
    env = _env(shop.ctx.settings)
    sku = await shop.make_sku()
    codes = await shop.stock(sku, 4)
    order = await shop.create_order(sku.id, contact="victim@example.com")
    await shop.pay(order)
    sold = (await shop.reveal(order))[0]["code"]

    added = _cli(tmp_path, env, "staff", "add", "helen", "--grant", "card_keys.reveal", "--password-stdin",
                 stdin="a long enough password\n")
    assert added.returncode == 0, added.stderr
    login = await shop.client.post("/api/staff/login", json={"username": "helen",
                                                             "password": "a long enough password"})
    assert login.status_code == 200 and login.json()["permissions"] == ["card_keys.reveal"]
    bad = _cli(tmp_path, env, "staff", "grant", "helen", "root")
    assert bad.returncode == 1 and "unknown permission" in bad.stderr

    listing = _cli(tmp_path, env, "keys", "list", "--batch", "1")
    assert listing.returncode == 0, listing.stderr
    assert all(code not in listing.stdout and mask_code(code) in listing.stdout for code in codes)

    leaked = tmp_path / "leaked.txt"
    leaked.write_text(f"{sold}\n{codes[3] if codes[3] != sold else codes[2]}\nNOT-OURS-9999\n")
    report_csv = tmp_path / "report.csv"
    traced = _cli(tmp_path, env, "keys", "trace-leak", "--file", str(leaked), "--csv", str(report_csv))
    assert traced.returncode == 0, traced.stderr
    assert "2 of 3 codes found; 1 unsold keys withdrawn" in traced.stdout
    assert order["order_no"] in traced.stdout and "v***@example.com" in traced.stdout
    assert "victim@example.com" not in traced.stdout and sold not in traced.stdout
    rows = list(csv.DictReader(report_csv.open(encoding="utf-8")))
    assert [r["found"] for r in rows] == ["yes", "yes", "no"] and rows[0]["order_no"] == order["order_no"]
    assert "api" in rows[0]["reveals"] and rows[0]["buyer"] == "v***@example.com"
    full = _cli(tmp_path, env, "keys", "trace-leak", "--no-mark", "--show-contact", stdin=f"{sold}\n")
    assert full.returncode == 0 and "victim@example.com" in full.stdout, full.stderr

    new_key = base64.b64encode(secrets.token_bytes(32)).decode()
    rotated_env = {**env, "QUANYI_CARD_KEYS": f"{env['QUANYI_CARD_KEYS']},k2:{new_key}",
                   "QUANYI_CARD_KEY_ACTIVE_ID": "k2"}
    dry = _cli(tmp_path, rotated_env, "keys", "rotate", "--dry-run")
    assert dry.returncode == 0 and "Dry run" in dry.stdout, dry.stderr
    rotation = _cli(tmp_path, rotated_env, "keys", "rotate", "--batch-size", "2")
    assert rotation.returncode == 0 and "re-encrypting card keys" in rotation.stdout, rotation.stderr
    assert "Done" in rotation.stdout
    status = _cli(tmp_path, rotated_env, "keys", "status")
    assert "Unused keys that can be removed from QUANYI_CARD_KEYS: k1" in status.stdout, status.stdout
    only_new = {**env, "QUANYI_CARD_KEYS": f"k2:{new_key}", "QUANYI_CARD_KEY_ACTIVE_ID": "k2"}
    after = _cli(tmp_path, only_new, "keys", "list", "--batch", "1")
    assert after.returncode == 0 and mask_code(codes[0]) in after.stdout, after.stderr
    refused = _cli(tmp_path, {**env, "QUANYI_CARD_KEYS": f"k3:{new_key}", "QUANYI_CARD_KEY_ACTIVE_ID": "k3"},
                   "keys", "rotate")
    assert refused.returncode == 1 and "rotation_refused" in refused.stderr
