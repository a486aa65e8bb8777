"""Velocity per payer account (支付账号): the account a gateway names in its notification (sandbox
`buyer_id`, Alipay `buyer_id`) is counted at the payment stage under a keyed hash; too many paid orders,
or orders of too many contacts, by one payer hold the order for review."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy import select

from quanyi.payments.alipay import AlipayConfig, AlipayGateway
from quanyi.risk.counters import RedisCounters
from quanyi.risk.models import CounterEvent, RiskDecisionLog
from quanyi.testpeers.alipay import AlipayKeys, AlipaySimulator
from quanyi.testpeers.runner import serve_in_thread
from risk.support import add_rule

REDIS_URL = os.environ.get("QUANYI_TEST_REDIS_URL")
PAYER = "2088102177846101"
OTHER_PAYER = "2088102177846202"


async def _payer_rule(shop, max_count: int = 2) -> None:
    await add_rule(shop, "velocity", {"dimension": "payer", "window_seconds": 3600, "max_count": max_count},
                   action="review", stages=["payment"], name="payer burst")


async def _pay_sandbox(shop, sku_id: int, contact: str, buyer_id: str | None) -> str:
    """Checkout, then the sandbox's signed notification through the real endpoint; the order's status."""
    order = await shop.create_order(sku_id, contact=contact)
    payment = await shop.start_payment(order)
    extra = {"buyer_id": buyer_id} if buyer_id is not None else {}
    response = await shop.notify(shop.notification(payment, **extra))
    assert response.status_code == 200 and response.text == "success", response.text
    return str((await shop.get_order(order))["status"])


@pytest.fixture
async def sku(shop):
    sku = await shop.make_sku(code="PAYER-GOODS")
    await shop.stock(sku, 12)
    return sku


async def test_one_payer_paying_more_orders_than_allowed_is_held_for_review(shop, sku):
    await _payer_rule(shop, max_count=2)
    statuses = [await _pay_sandbox(shop, sku.id, f"buyer{i}@example.com", PAYER) for i in range(3)]
    assert statuses == ["delivered", "delivered", "under_review"]
    queue = (await shop.client.get("/api/admin/risk/reviews", headers=shop.admin)).json()
    assert len(queue) == 1 and queue[0]["decisions"][-1]["rules_hit"][0]["name"] == "payer burst"
    assert "3 paid orders by payer" in queue[0]["decisions"][-1]["rules_hit"][0]["detail"]


async def test_below_the_threshold_and_other_payers_stay_quiet(shop, sku):
    await _payer_rule(shop, max_count=2)
    assert [await _pay_sandbox(shop, sku.id, "a@example.com", PAYER) for _ in range(2)] == ["delivered"] * 2
    # A different account (and the same number at another gateway would be another payer too) is counted apart.
    assert [await _pay_sandbox(shop, sku.id, "a@example.com", OTHER_PAYER) for _ in range(2)] == ["delivered"] * 2


async def test_without_a_payer_id_the_rule_never_fires(shop, sku):
    await _payer_rule(shop, max_count=1)
    assert [await _pay_sandbox(shop, sku.id, f"n{i}@example.com", None) for i in range(3)] == ["delivered"] * 3
    async with shop.ctx.db.read_session() as session:
        keys = (await session.scalars(select(CounterEvent.key))).all()
    assert not [k for k in keys if ":payer:" in k]


async def test_an_unusable_payer_id_is_ignored_and_the_payment_still_counts(shop, sku):
    """A signed notification with an empty, over-long or control-character buyer_id is still a payment."""
    await _payer_rule(shop, max_count=1)
    for i, weird in enumerate(["", "x" * 500, "2088\x00evil"]):
        assert await _pay_sandbox(shop, sku.id, f"w{i}@example.com", weird) == "delivered"


async def test_the_payer_account_is_never_stored_in_plaintext(shop, sku):
    await _payer_rule(shop, max_count=1)
    await add_rule(shop, "distinct_contacts", {"dimension": "payer", "window_seconds": 3600, "max_distinct": 5},
                   action="review", stages=["payment"])
    for i in range(2):
        await _pay_sandbox(shop, sku.id, f"p{i}@example.com", PAYER)
    async with shop.ctx.db.read_session() as session:
        events = (await session.execute(select(CounterEvent.key, CounterEvent.member))).all()
        logs = (await session.scalars(select(RiskDecisionLog))).all()
    payer_keys = {k for k, _ in events if ":payer:" in k}
    assert payer_keys and len({k.rsplit(":", 1)[1] for k in payer_keys}) == 1  # one hashed payer
    assert not [e for e in events if PAYER in e.key or PAYER in e.member]
    assert logs and not [log for log in logs if PAYER in str(log.signals) or PAYER in str(log.rules_hit)]


async def test_one_payer_paying_for_many_contacts(shop, sku):
    await add_rule(shop, "distinct_contacts", {"dimension": "payer", "window_seconds": 3600, "max_distinct": 2},
                   action="review", stages=["payment"], name="payer many contacts")
    # The same contact again and again is not "many contacts".
    assert [await _pay_sandbox(shop, sku.id, "same@example.com", PAYER) for _ in range(3)] == ["delivered"] * 3
    assert await _pay_sandbox(shop, sku.id, "second@example.com", PAYER) == "delivered"
    assert await _pay_sandbox(shop, sku.id, "third@example.com", PAYER) == "under_review"
    assert await _pay_sandbox(shop, sku.id, "fourth@example.com", OTHER_PAYER) == "delivered"


async def test_payer_rules_cannot_fire_at_checkout(shop, sku):
    """At order creation no payer is known yet: a payer rule on the order stage never refuses a checkout."""
    await add_rule(shop, "velocity", {"dimension": "payer", "window_seconds": 3600, "max_count": 1},
                   action="deny", stages=["order"])
    for i in range(3):
        await shop.create_order(sku.id, contact=f"c{i}@example.com")


@pytest.mark.skipif(not REDIS_URL, reason="QUANYI_TEST_REDIS_URL not set")
async def test_redis_counter_keys_carry_only_the_hash(shop, sku):
    import redis.asyncio as redis

    prefix = f"quanyi-test:{uuid.uuid4().hex}:"
    shop.ctx.risk.counters = RedisCounters(REDIS_URL, retention_seconds=3600, prefix=prefix)
    await _payer_rule(shop, max_count=1)
    assert [await _pay_sandbox(shop, sku.id, f"r{i}@example.com", PAYER) for i in range(2)] == [
        "delivered", "under_review"]
    client = redis.from_url(REDIS_URL)
    try:
        keys = [k.decode() async for k in client.scan_iter(match=f"{prefix}*")]
        assert [k for k in keys if ":payer:" in k]
        assert not [k for k in keys if PAYER in k]
        for key in keys:
            members = await client.zrange(key, 0, -1)
            assert not [m for m in members if PAYER.encode() in m]
    finally:
        if keys:
            await client.delete(*keys)
        await client.aclose()


# ---------------------------------------------------------------- a real gateway: the Alipay simulator

@pytest.fixture(scope="module")
def alipay_keys() -> AlipayKeys:
    return AlipayKeys.generate()


@pytest.fixture
def alipay_peer(alipay_keys: AlipayKeys) -> Iterator[tuple[AlipaySimulator, str]]:
    simulator = AlipaySimulator(keys=alipay_keys)
    with serve_in_thread(simulator.app) as base_url:
        yield simulator, base_url
    simulator.stop()


@pytest.fixture
async def alipay(shop, app, alipay_peer) -> AlipaySimulator:
    simulator, base_url = alipay_peer
    shop.ctx.gateways.register(AlipayGateway(AlipayConfig(**simulator.merchant_config(base_url)), http=shop.ctx.http))
    return simulator


async def _pay_alipay(shop, sim: AlipaySimulator, sku_id: int, contact: str, buyer_id: str) -> str:
    order = await shop.create_order(sku_id, contact=contact)
    response = await shop.client.post(f"/api/orders/{order['order_no']}/payments", headers=shop.auth(order),
                                      json={"gateway": "alipay"})
    assert response.status_code == 201, response.text
    payment = response.json()
    async with httpx.AsyncClient(follow_redirects=True) as browser:  # the buyer opens the cashier
        assert (await browser.get(payment["cashier_url"])).status_code == 200
    sim.pay(payment["payment_no"], buyer_id=buyer_id)
    (notification,) = sim.take_notifications()
    assert notification.params["buyer_id"] == buyer_id
    answer = await shop.client.post("/payments/alipay/notify", content=notification.body,
                                    headers=notification.headers)
    assert answer.text == "success", answer.text
    return str((await shop.get_order(order))["status"])


async def test_alipay_buyer_id_drives_the_payer_rule(shop, sku, alipay):
    await _payer_rule(shop, max_count=2)
    assert [await _pay_alipay(shop, alipay, sku.id, f"ali{i}@example.com", PAYER) for i in range(2)] == [
        "delivered", "delivered"]
    assert await _pay_alipay(shop, alipay, sku.id, "ali-other@example.com", OTHER_PAYER) == "delivered"
    assert await _pay_alipay(shop, alipay, sku.id, "ali3@example.com", PAYER) == "under_review"
