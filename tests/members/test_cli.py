"""`quanyi members list|show|disable|enable`, run in-process against the test shop."""

from __future__ import annotations

import asyncio

from typer.testing import CliRunner

from members.support import sign_in


async def _cli(shop, monkeypatch, *args: str):  # type: ignore[no-untyped-def]
    from quanyi.cli import app
    from quanyi.cli_support import console, err
    from quanyi.config import get_settings

    settings = shop.ctx.settings
    for name in ("database_url", "admin_token", "app_secret", "card_keys", "card_key_active_id",
                 "card_key_hash_key", "sandbox_secret"):
        value = getattr(settings, name)
        monkeypatch.setenv(f"QUANYI_{name.upper()}", value.get_secret_value() if hasattr(value, "get_secret_value")
                           else str(value))
    monkeypatch.setenv("QUANYI_RUN_BACKGROUND_TASKS", "false")
    monkeypatch.setattr(console, "width", 200)
    monkeypatch.setattr(err, "width", 200)
    get_settings.cache_clear()
    try:
        return await asyncio.to_thread(CliRunner().invoke, app, list(args), env={"COLUMNS": "200", "NO_COLOR": "1"})
    finally:
        get_settings.cache_clear()


async def test_operator_lists_shows_disables_and_enables_a_member(shop, client, monkeypatch, stocked_sku):
    order = await shop.create_order(stocked_sku.id, contact="cli@example.com")
    await sign_in(shop, "13900139000@example.com")
    signed = await sign_in(shop, "cli@example.com")  # on the same browser: the other member's session ended
    listed = await _cli(shop, monkeypatch, "members", "list", "--query", "cli@")
    assert listed.exit_code == 0, listed.output
    assert "cli@example.com" in listed.output and "13900139000" not in listed.output
    assert "1 of 1 members" in listed.output
    shown = await _cli(shop, monkeypatch, "members", "show", "CLI@example.com")
    assert shown.exit_code == 0 and order["order_no"] in shown.output and "open sessions: 1" in shown.output
    no_reason = await _cli(shop, monkeypatch, "members", "disable", str(signed["member"]["id"]), "--reason", " ")
    assert no_reason.exit_code == 1 and "invalid_input" in no_reason.output
    disabled = await _cli(shop, monkeypatch, "members", "disable", str(signed["member"]["id"]), "--reason", "fraud")
    assert disabled.exit_code == 0 and "1 sessions ended" in disabled.output
    assert (await client.get("/api/members/me")).status_code == 401
    assert "disabled (fraud" in (await _cli(shop, monkeypatch, "members", "show", "cli@example.com")).output
    assert (await _cli(shop, monkeypatch, "members", "enable", "cli@example.com")).exit_code == 0
    unknown = await _cli(shop, monkeypatch, "members", "show", "nobody@example.com")
    assert unknown.exit_code == 1 and "member_not_found" in unknown.output
    bad_status = await _cli(shop, monkeypatch, "members", "list", "--status", "gone")
    assert bad_status.exit_code == 2
