"""`quanyi points ...` and `quanyi levels ...`: rules, a member's points with a correction (posted to the ledger),
levels and member prices; clear errors, nothing changed on bad input."""

from __future__ import annotations

from members.support import sign_in
from merchants.test_tenancy import _cli
from quanyi.loyalty import points as points_service


async def test_points_and_levels_from_the_command_line(shop, app, stocked_sku, monkeypatch):
    signed = await sign_in(shop, "cli-member@example.com")
    member_id = str(signed["member"]["id"])
    program = await _cli(shop, monkeypatch, "points", "program", "--points-per-yuan", "10")
    assert program.exit_code == 0 and "10 per ¥1 paid" in program.output
    gift = await _cli(shop, monkeypatch, "points", "adjust", "cli-member@example.com", "--points", "300",
                      "--reason", "welcome gift")
    assert gift.exit_code == 0 and "now has 300 points" in gift.output
    too_much = await _cli(shop, monkeypatch, "points", "adjust", member_id, "--points", "-301", "--reason", "oops")
    assert too_much.exit_code == 1 and "points_insufficient" in too_much.output
    shown = await _cli(shop, monkeypatch, "points", "show", member_id)
    assert shown.exit_code == 0 and "300 points" in shown.output and "welcome gift" in shown.output
    unknown = await _cli(shop, monkeypatch, "points", "show", "nobody@example.com")
    assert unknown.exit_code == 1 and "member_not_found" in unknown.output
    level = await _cli(shop, monkeypatch, "levels", "set", "gold", "--name", "黄金", "--min-paid-cents", "100000",
                       "--discount-bps", "500")
    assert level.exit_code == 0 and "GOLD" in level.output
    price = await _cli(shop, monkeypatch, "levels", "price", "GOLD", "--sku-id", str(stocked_sku.id),
                       "--price-cents", "1500")
    assert price.exit_code == 0
    listed = await _cli(shop, monkeypatch, "levels", "list")
    assert "GOLD" in listed.output and "¥1,000.00" in listed.output and "5.00%" in listed.output
    again = await _cli(shop, monkeypatch, "levels", "reevaluate")
    assert again.exit_code == 0 and "0 members changed level" in again.output
    async with shop.ctx.db.read_session() as session:
        assert await points_service.liability_drift(session=session) == 0  # the gift is in the books
