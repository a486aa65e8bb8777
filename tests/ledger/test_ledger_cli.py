"""`quanyi ledger ...` as an operator runs it (real subprocesses): top-ups (idempotent), statements with CSV,
the trial balance, reconciliation; bad input exits non-zero with a message, never a traceback."""

from __future__ import annotations

import csv
import datetime as dt
import os
import subprocess
import sys

from .support import make_supplier, supplier_balance


def _quanyi(shop, cwd, *args: str) -> subprocess.CompletedProcess[str]:  # type: ignore[no-untyped-def]
    s = shop.ctx.settings
    env = {k: v for k, v in os.environ.items() if not k.startswith("QUANYI_")}
    env.update({
        "COLUMNS": "250", "NO_COLOR": "1", "QUANYI_DATABASE_URL": s.database_url,
        "QUANYI_ADMIN_TOKEN": s.admin_token.get_secret_value(), "QUANYI_APP_SECRET": s.app_secret.get_secret_value(),
        "QUANYI_CARD_KEYS": s.card_keys.get_secret_value(), "QUANYI_CARD_KEY_ACTIVE_ID": s.card_key_active_id,
        "QUANYI_CARD_KEY_HASH_KEY": s.card_key_hash_key.get_secret_value(),
        "QUANYI_SANDBOX_SECRET": s.sandbox_secret.get_secret_value(),
    })
    return subprocess.run([sys.executable, "-m", "quanyi.cli", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=120, stdin=subprocess.DEVNULL)


async def test_ledger_commands_from_the_command_line(shop, app, tmp_path):
    supplier = await make_supplier(shop.ctx, code="SUPCLI", base_url="http://127.0.0.1:9")
    for _ in range(2):
        done = _quanyi(shop, tmp_path, "ledger", "top-up", "--supplier", "SUPCLI", "--amount", "100.00",
                       "--note", "bank", "--reference", "cli-topup-1")
        assert done.returncode == 0, done.stderr
        assert "balance ¥100.00" in done.stdout
    assert await supplier_balance(shop.ctx, supplier.id) == 10_000

    bad = _quanyi(shop, tmp_path, "ledger", "top-up", "--supplier", "SUPCLI", "--amount", "1.234")
    assert bad.returncode == 1 and "invalid_ledger_amount" in bad.stderr and "Traceback" not in bad.stderr
    unknown = _quanyi(shop, tmp_path, "ledger", "top-up", "--supplier", "NOPE", "--amount", "1")
    assert unknown.returncode == 1 and "supplier_not_found" in unknown.stderr

    today = dt.datetime.now(dt.UTC).astimezone(dt.timezone(dt.timedelta(hours=8))).date().isoformat()
    stated = _quanyi(shop, tmp_path, "ledger", "statement", "--supplier", "SUPCLI", "--period", today,
                     "--cycle", "daily", "--csv", "st.csv")
    assert stated.returncode == 0, stated.stderr
    assert "closing ¥100.00" in stated.stdout
    with (tmp_path / "st.csv").open(encoding="utf-8-sig") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["kind"] for r in rows] == ["opening", "top_up", "closing"]
    bad_day = _quanyi(shop, tmp_path, "ledger", "statement", "--supplier", "SUPCLI", "--period", "2026-13-01")
    assert bad_day.returncode == 2
    assert _quanyi(shop, tmp_path, "ledger", "statement", "--supplier", "SUPCLI", "--period", today,
                   "--cycle", "monthly").returncode == 2

    trial = _quanyi(shop, tmp_path, "ledger", "trial-balance")
    assert trial.returncode == 0 and "Balanced" in trial.stdout and "supplier_prepaid:" in trial.stdout

    async with shop.ctx.db.transaction() as session:
        from quanyi.ledger import service as ledger_service

        await ledger_service.charge_supplier(session=session, supplier_id=supplier.id, amount_cents=100,
                                             reference="CLI-1")
    broken = await make_supplier(shop.ctx, code="SUPNOCRED", credentials={"token": "x"})
    async with shop.ctx.db.transaction() as session:
        await ledger_service.top_up_supplier(session=session, supplier_id=broken.id, amount_cents=100, note="",
                                             actor="test")
        await ledger_service.charge_supplier(session=session, supplier_id=broken.id, amount_cents=100,
                                             reference="CLI-2")
    refused = _quanyi(shop, tmp_path, "ledger", "reconcile", "--supplier", "SUPNOCRED", "--period", today)
    assert refused.returncode == 1 and "supplier_not_queryable" in refused.stderr
    assert "Traceback" not in refused.stderr
    checked = _quanyi(shop, tmp_path, "ledger", "reconcile", "--supplier", "SUPCLI", "--period", today)
    assert checked.returncode == 1 and "query_failed" in checked.stdout and "1 charges checked, 1 mismatches" in (
        checked.stdout), checked.stdout + checked.stderr
