"""Enterprise test helpers: register through the admin API, top up, set tiers, run the CLI in-process."""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import func, select
from typer.testing import CliRunner

from helpers import Shop
from quanyi.ledger.models import CustomerAccount, LedgerEntry


async def add_enterprise(shop: Shop, code: str = "ACME", *, top_up_cents: int = 0, **extra: Any) -> dict[str, Any]:
    response = await shop.client.post("/api/admin/enterprises", headers=shop.admin, json={
        "code": code, "name": f"{code} 科技有限公司", **extra})
    assert response.status_code == 201, response.text
    if top_up_cents:
        await top_up(shop, code, top_up_cents)
    return response.json()  # type: ignore[no-any-return]


async def top_up(shop: Shop, code: str, cents: int, key: str | None = None) -> dict[str, Any]:
    headers = {**shop.admin, **({"Idempotency-Key": key} if key else {})}
    response = await shop.client.post(f"/api/admin/enterprises/{code}/top-ups", headers=headers,
                                      json={"amount_cents": cents, "note": "bank transfer"})
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


async def set_tiers(shop: Shop, code: str, sku_code: str, *tiers: tuple[int, int]) -> dict[str, Any]:
    response = await shop.client.put(f"/api/admin/enterprises/{code}/prices/{sku_code}", headers=shop.admin,
                                     json={"tiers": [{"min_quantity": q, "unit_price_cents": p} for q, p in tiers]})
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


async def balance_of(shop: Shop, code: str, kind: str = "enterprise") -> int:
    return int(await shop.scalar(select(CustomerAccount.balance_cents).where(
        CustomerAccount.code == f"{kind}:{code}")))


async def books_balanced(shop: Shop) -> None:
    """Every posting sums to zero, and every prepaid balance agrees with its ledger account."""
    from quanyi.ledger import service as ledger_service

    await ledger_service.post_all_deferred(shop.ctx.db)  # payments' deferred postings (ledger/deferred.py)
    async with shop.ctx.db.transaction() as session:
        trial = await ledger_service.trial_balance(session=session)
        drift = await ledger_service.prepaid_drift(session=session)
    assert trial.balanced, trial.totals
    assert drift == {}
    assert await shop.scalar(select(func.coalesce(func.sum(LedgerEntry.amount_cents), 0))) == 0


async def run_cli(shop: Shop, monkeypatch: Any, *args: str, input_text: str | None = None) -> Any:
    """Run `quanyi ARGS` in-process (in a thread: the command runs its own event loop) against this shop."""
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
        return await asyncio.to_thread(CliRunner().invoke, app, list(args), input=input_text,
                                     env={"COLUMNS": "200", "NO_COLOR": "1"})
    finally:
        get_settings.cache_clear()
