"""Counters keyed by shop and merchant: several shops on one Redis never read each other's counters (a peer's
known bug: a failed-login lockout or a velocity count of one shop hitting another), the processes of one shop
share theirs, and the risk `shop` dimensions count each merchant on its own."""

from __future__ import annotations

import os

import pytest

from helpers import make_settings
from quanyi.context import build_context
from quanyi.risk import engine as risk_engine
from quanyi.risk.service import reserve_attempt

REDIS_URL = os.environ.get("QUANYI_TEST_REDIS_URL")


@pytest.mark.skipif(not REDIS_URL, reason="QUANYI_TEST_REDIS_URL not set")
async def test_two_shops_on_one_redis_keep_their_own_limits_and_counters_and_one_shops_processes_share(tmp_path):
    one = make_settings(f"sqlite:///{tmp_path / 'one.db'}", redis_url=REDIS_URL)
    other = make_settings(f"sqlite:///{tmp_path / 'other.db'}", redis_url=REDIS_URL)
    shop_one, second_process, shop_other = build_context(one), build_context(one), build_context(other)
    try:
        assert one.redis_prefix("rl") != other.redis_prefix("rl")
        assert one.redis_prefix("risk") != other.redis_prefix("risk")
        # Shop one's attacker uses up alice's failed-login allowance ...
        limit = [("staff-login:user:alice", 3)]
        for _ in range(3):
            assert await reserve_attempt(shop_one.limiter, limit, window_seconds=60) is not None
        assert await reserve_attempt(shop_one.limiter, limit, window_seconds=60) is None
        # ... in every process of shop one, and in no other shop.
        assert await reserve_attempt(second_process.limiter, limit, window_seconds=60) is None
        assert await shop_other.limiter.count("staff-login:user:alice", 60) == 0
        assert await reserve_attempt(shop_other.limiter, limit, window_seconds=60) is not None
        # Risk counters likewise: shop one's checkout surge is not the other shop's.
        for _ in range(4):
            await shop_one.risk.counters.hit("att:shop:all", window_seconds=600, at=1_000_000.0)
        assert await second_process.risk.counters.count("att:shop:all", window_seconds=600, at=1_000_000.0) == 4
        assert await shop_other.risk.counters.count("att:shop:all", window_seconds=600, at=1_000_000.0) == 0
    finally:
        for ctx in (shop_one, second_process, shop_other):
            await ctx.close()


def test_the_shop_dimensions_count_each_merchant_on_its_own(ctx):
    def signals(merchant_id: int, verified: bool = False):  # type: ignore[no-untyped-def]
        return risk_engine.checkout_signals(ctx.risk, ip="198.51.100.7", device="d1" if verified else "",
                                            contact_kind="email",
                                            contact="a@example.com", sku_id=1, quantity=1, amount_cents=100,
                                            device_verified=verified, merchant_id=merchant_id)

    platform, first, second = signals(1), signals(2), signals(3)
    # The platform's own store keeps the key it always had (a single-shop install counts as before).
    assert platform.value("shop") == "all" and platform.value("shop_without_device") == "all"
    assert len({s.value("shop") for s in (platform, first, second)}) == 3
    assert first.value("shop_without_device") == first.value("shop") and signals(2, True).value(
        "shop_without_device") == ""
    # Per-buyer dimensions stay platform-wide: the same card tester at two merchants is one attacker.
    assert first.value("ip") == second.value("ip") and first.value("contact") == second.value("contact")


def test_an_explicit_namespace_or_risk_prefix_wins(tmp_path):
    pinned = make_settings(f"sqlite:///{tmp_path / 'x.db'}", redis_namespace="shop-a:", risk_redis_prefix="legacy:")
    assert pinned.redis_prefix("rl") == "shop-a:rl:" and pinned.redis_prefix("risk") == "legacy:"
