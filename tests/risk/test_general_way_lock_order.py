"""PostgreSQL: a checkout placed the general way (a challenge answered) and a checkout of the same client on the one
transaction take the client's advisory locks (risk.holdings) and the rows they share (a shared code's, a member's
coupons, a supplier's mappings) in one order: the advisory locks first. The general way took them only once its
order was in, after those rows: the two could wait for each other (a deadlock, one of them a 500)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from faults.support import await_until, pg_connect
from helpers import make_settings
from quanyi.risk import engine as risk_engine
from risk.support import add_rule, checkout, sent_codes

IP = "198.51.100.9"


@pytest.fixture
def settings(database_url: str):  # type: ignore[no-untyped-def]
    # E-mail configured (the one-time code goes out); the held-stock limits on, as a shop has them by default.
    return make_settings(database_url, smtp_host="127.0.0.1", smtp_from="shop@example.com",
                         held_units_limit_per_ip=50, held_units_limit_per_device=20, held_units_limit_per_contact=20)


async def _shared_sku(shop: Any) -> Any:
    sku = await shop.make_sku(code="SHARED-LOCKS", delivery_type="shared_code", price_cents=300)
    added = await shop.client.post(f"/api/admin/skus/{sku.id}/shared-codes", headers=shop.admin,
                                   json={"code": "VIP-SHARED-LOCK-ORDER-1", "sale_limit": 10})
    assert added.status_code == 201, added.text
    return sku


async def test_a_challenge_answered_and_a_checkout_from_the_same_address_never_deadlock(backend, shop, database_url,
                                                                                       monkeypatch):
    if backend != "postgresql":
        pytest.skip("SQLite's single writer serializes every checkout")
    sku = await _shared_sku(shop)
    await add_rule(shop, "block_list", {"email_domains": ["check.example"]}, action="challenge")
    asked = await checkout(shop, sku.id, ip=IP, contact="g@check.example")
    assert asked.status_code == 403 and asked.json()["code"] == "verification_required", asked.text
    code = (await sent_codes(shop))[-1].payload["code"]

    paused, go = asyncio.Event(), asyncio.Event()
    remember = risk_engine.remember_order

    async def remember_after_a_pause(**kwargs: Any) -> None:
        if kwargs["signals"].contact == "g@check.example":
            paused.set()  # its order is in, the shared code's row updated, the client's locks not taken yet
            await go.wait()
        await remember(**kwargs)

    monkeypatch.setattr(risk_engine, "remember_order", remember_after_a_pause)
    answered = asyncio.create_task(checkout(shop, sku.id, ip=IP, contact="g@check.example",
                                            challenge_id=asked.json()["challenge_id"], verification_code=code))
    await asyncio.wait_for(paused.wait(), 60)
    other = asyncio.create_task(checkout(shop, sku.id, ip=IP, contact="f@example.com"))  # the one transaction
    watcher = await pg_connect(database_url)
    try:
        async def waiting() -> bool:
            await watcher.execute("SELECT pg_stat_clear_snapshot()")
            return bool(await watcher.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND wait_event_type = 'Lock'"))

        await await_until(waiting, what="the second checkout waiting for a lock the first holds")
    finally:
        await watcher.close()
    go.set()
    responses = await asyncio.wait_for(asyncio.gather(answered, other), 60)
    assert [r.status_code for r in responses] == [201, 201], [r.text for r in responses]
