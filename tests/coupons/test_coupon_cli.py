"""`quanyi coupons`: create, list, pause, issue and code batches written to CSV, in-process against the shop."""

from __future__ import annotations

import csv

import pytest

from coupons.support import try_order
from enterprises.support import run_cli


async def test_coupons_cli_creates_lists_pauses_and_exports_codes(shop, stocked_sku, monkeypatch, tmp_path, backend):
    if backend != "sqlite":
        pytest.skip("the commands are thin over the coupon services, which are tested on both databases")
    made = await run_cli(shop, monkeypatch, "coupons", "create", "满10减2", "--code", "cli-2", "--amount-off", "2.00",
                         "--threshold", "10.00", "--total", "5")
    assert made.exit_code == 0, made.output
    placed = await try_order(shop, stocked_sku.id, coupon_codes=["CLI2"])
    assert placed.status_code == 201 and placed.json()["total_cents"] == 1780
    listed = await run_cli(shop, monkeypatch, "coupons", "list")
    assert "满¥10.00减¥2.00" in listed.output and "1 / 5" in listed.output
    paused = await run_cli(shop, monkeypatch, "coupons", "pause", "1")
    assert paused.exit_code == 0
    assert (await try_order(shop, stocked_sku.id, coupon_codes=["CLI2"])).json()["reason"] == "inactive"
    batch = await run_cli(shop, monkeypatch, "coupons", "create", "Partner", "--distribution", "codes",
                          "--percent-off", "15", "--max-discount", "5.00", "--sku", stocked_sku.code)
    assert batch.exit_code == 0, batch.output
    out = tmp_path / "codes.csv"
    written = await run_cli(shop, monkeypatch, "coupons", "codes", "2", "--count", "50", "--out", str(out))
    assert written.exit_code == 0, written.output
    rows = list(csv.reader(out.read_text(encoding="utf-8-sig").splitlines()))
    assert rows[0] == ["code", "coupon", "status"] and len(rows) == 51 and len({r[0] for r in rows[1:]}) == 50
    used = await try_order(shop, stocked_sku.id, coupon_codes=[rows[1][0]])
    assert used.status_code == 201 and used.json()["coupon_discount_cents"] == 297  # 15 % of 19.80
    wrong = await run_cli(shop, monkeypatch, "coupons", "create", "x", "--amount-off", "1", "--percent-off", "5",
                          "--code", "X")
    assert wrong.exit_code == 2
    missing = await run_cli(shop, monkeypatch, "coupons", "pause", "999")
    assert missing.exit_code == 1 and "coupon_not_found" in missing.output
