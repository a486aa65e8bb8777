"""`quanyi ledger gateway-payout` / `gateway-clearing` as an operator runs them (real subprocesses): a settlement is
booked once, a second try and bad arguments exit non-zero with a message (never a traceback) and book nothing; a
new shop's listing says there is nothing yet instead of empty tables."""

from __future__ import annotations

import datetime as dt

from quanyi.shoptime import shop_day, shop_zone

from .support import posting_count
from .test_gateway_payouts import _balances, _paid_orders
from .test_ledger_cli import _quanyi


async def test_gateway_payouts_from_the_command_line(shop, app, tmp_path):
    await _paid_orders(shop, 2)  # ¥39.60 in gateway_clearing:sandbox
    today = shop_day(dt.datetime.now(dt.UTC), shop_zone(shop.ctx.settings.shop_timezone)).isoformat()
    args = ("ledger", "gateway-payout", "--gateway", "sandbox", "--settlement", "2088CLI01", "--from", today,
            "--to", today, "--fee", "0.60")
    done = _quanyi(shop, tmp_path, *args, "--net", "39.00", "--note", "ICBC 0001")
    assert done.returncode == 0, done.stderr
    assert "Recorded sandbox settlement 2088CLI01" in done.stdout and "sandbox still owes ¥0.00" in done.stdout
    again = _quanyi(shop, tmp_path, *args, "--net", "1.00")
    assert again.returncode == 1 and "gateway_payout_exists" in again.stderr and "Traceback" not in again.stderr

    for bad, code in ((("--net", "-1.234"), 2), (("--net", "0"), 1)):
        refused = _quanyi(shop, tmp_path, *args[:5], "2088CLI02", *args[6:], *bad)
        assert refused.returncode == code, (bad, refused.stdout, refused.stderr)
        assert "Traceback" not in refused.stderr and refused.stderr.strip()
    unknown = _quanyi(shop, tmp_path, "ledger", "gateway-payout", "--gateway", "nopay", "--settlement", "X1",
                      "--from", today, "--to", today, "--net", "1", "--fee", "0")
    assert unknown.returncode == 1 and "payout_gateway_unknown" in unknown.stderr
    bad_day = _quanyi(shop, tmp_path, "ledger", "gateway-payout", "--gateway", "sandbox", "--settlement", "X1",
                      "--from", "2026-13-01", "--to", today, "--net", "1", "--fee", "0")
    assert bad_day.returncode == 2 and "--from must be a date" in bad_day.stderr
    assert await posting_count(shop.ctx, kind="gateway_payout") == 1
    assert (await _balances(shop))["platform_cash"] == 3900

    listed = _quanyi(shop, tmp_path, "ledger", "gateway-clearing")
    assert listed.returncode == 0, listed.stderr
    assert "2088CLI01" in listed.stdout and "¥39.00" in listed.stdout and "¥0.60" in listed.stdout


async def test_gateway_clearing_on_a_new_shop_says_no_payout_is_recorded_yet(shop, app, tmp_path):
    listed = _quanyi(shop, tmp_path, "ledger", "gateway-clearing")
    assert listed.returncode == 0, listed.stderr
    assert "No gateway payouts recorded yet." in listed.stdout, listed.stdout
    assert "settlement" not in listed.stdout and "still owed" not in listed.stdout  # no empty tables
    assert "no gateway owes the shop anything" in listed.stdout
    narrowed = _quanyi(shop, tmp_path, "ledger", "gateway-clearing", "--gateway", "wechat")
    assert "No wechat payouts recorded yet." in narrowed.stdout, narrowed.stdout
