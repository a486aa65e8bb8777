"""`quanyi resellers` as an operator runs it: register (secret shown once), top up once per reference, status and
prices; bad amounts and statuses stop with exit 2 and change nothing."""

from __future__ import annotations

from sqlalchemy import select

from enterprises.support import run_cli
from helpers import Shop
from quanyi.resellers.models import Reseller, ResellerPrice
from resellers.support import balance_of


async def test_the_cli_registers_tops_up_once_per_reference_and_sets_prices(shop: Shop, monkeypatch):
    await shop.make_sku(code="GIFT-100", price_cents=10_000)
    added = await run_cli(shop, monkeypatch, "resellers", "add", "R001", "--name", "Shop R",
                          "--email", "ops@r.example", "--credit-limit", "100.00")
    assert added.exit_code == 0 and "shown this once" in added.output, added.output

    topped = await run_cli(shop, monkeypatch, "resellers", "top-up", "R001", "--amount", "500.25", "--reference", "t1")
    assert topped.exit_code == 0 and "Topped up R001 ¥500.25; balance ¥500.25" in topped.output, topped.output
    again = await run_cli(shop, monkeypatch, "resellers", "top-up", "R001", "--amount", "500.25", "--reference", "t1")
    assert again.exit_code == 0 and "Already recorded (same reference): R001" in again.output, again.output
    assert await balance_of(shop, "R001") == 50_025

    for args, message in ((("top-up", "R001", "--amount", "1.234"), "--amount"),
                          (("set", "R001", "--status", "paused"), "--status must be active or suspended"),
                          (("set", "R001", "--credit-limit", "lots"), "--credit-limit")):
        refused = await run_cli(shop, monkeypatch, "resellers", *args)
        assert refused.exit_code == 2 and message in refused.output, (args, refused.output)
    assert await balance_of(shop, "R001") == 50_025

    suspended = await run_cli(shop, monkeypatch, "resellers", "set", "R001", "--status", "suspended")
    assert suspended.exit_code == 0, suspended.output
    assert await shop.scalar(select(Reseller.status)) == "suspended"
    prices = await run_cli(shop, monkeypatch, "resellers", "prices", "R001", "--set", "GIFT-100=95.00")
    assert prices.exit_code == 0 and "¥95.00" in prices.output and "¥100.00" in prices.output, prices.output
    assert await shop.scalar(select(ResellerPrice.price_cents)) == 9_500
