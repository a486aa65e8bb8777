"""Reseller test helpers: register through the admin API, top up, and call the open API with the repo's own
Python client (quanyi.openapi_client) over the app in-process."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
from sqlalchemy import func, select

from helpers import Shop
from quanyi.ledger.models import CustomerAccount, LedgerEntry
from quanyi.openapi_client import AsyncOpenApiClient


@dataclass
class Reseller:
    code: str
    app_id: str
    secret: str
    client: AsyncOpenApiClient
    data: dict[str, Any]


async def add_reseller(shop: Shop, code: str = "R001", *, top_up_cents: int = 0, **extra: Any) -> Reseller:
    response = await shop.client.post("/api/admin/resellers", headers=shop.admin, json={
        "code": code, "name": f"Reseller {code}", "contact_email": f"ops@{code.lower()}.example", **extra})
    assert response.status_code == 201, response.text
    data = response.json()
    if top_up_cents:
        await top_up(shop, code, top_up_cents)
    client = AsyncOpenApiClient("http://test/api/open", app_id=data["app_id"], secret=data["secret"],
                                http=shop.client)
    return Reseller(code, data["app_id"], data["secret"], client, data)


async def top_up(shop: Shop, code: str, cents: int, key: str | None = None) -> dict[str, Any]:
    headers = {**shop.admin, **({"Idempotency-Key": key} if key else {})}
    response = await shop.client.post(f"/api/admin/resellers/{code}/top-ups", headers=headers,
                                      json={"amount_cents": cents, "note": "bank transfer"})
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


async def balance_of(shop: Shop, code: str) -> int:
    return int(await shop.scalar(select(CustomerAccount.balance_cents).where(
        CustomerAccount.code == f"reseller:{code}")))


async def books_balanced(shop: Shop) -> None:
    """Every posting sums to zero, and every prepaid balance agrees with its ledger account."""
    from quanyi.ledger import service as ledger_service

    async with shop.ctx.db.read_session() as session:
        trial = await ledger_service.trial_balance(session=session)
        drift = await ledger_service.prepaid_drift(session=session)
    assert trial.balanced, trial.totals
    assert drift == {}
    total = await shop.scalar(select(func.coalesce(func.sum(LedgerEntry.amount_cents), 0)))
    assert total == 0


def raw_client(shop: Shop) -> httpx.AsyncClient:
    return shop.client
