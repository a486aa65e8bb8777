"""Rule options each on their own: the failed-payments grace, per-SKU buyer-day limits, time windows for new
accounts only, and rules that run at the delivery stage (inside payment handling)."""

from __future__ import annotations

import datetime as dt

import pytest

from risk.support import SHANGHAI, add_rule, checkout, decisions, reason_codes, refused, set_clock


@pytest.fixture
async def goods(shop):
    sku = await shop.make_sku(code="OPT-GOODS", price_cents=1980)
    await shop.stock(sku, 20)
    return sku


@pytest.fixture
async def other(shop):
    sku = await shop.make_sku(code="OPT-OTHER", price_cents=500)
    await shop.stock(sku, 20)
    return sku



async def _only_decision(shop) -> dict:
    [entry] = await decisions(shop)
    return entry


async def test_failed_payments_grace_spares_young_unpaid_orders_and_counts_older_ones(shop, goods):
    await add_rule(shop, "failed_payments",
                   {"dimension": "contact", "window_seconds": 3600, "max_unpaid": 1, "grace_seconds": 600})
    start = dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.UTC)
    for seconds in (0, 10, 20):  # without the grace the third would see two unpaid orders
        set_clock(shop, start + dt.timedelta(seconds=seconds))
        assert (await checkout(shop, goods.id, contact="slow@example.com")).status_code == 201
    set_clock(shop, start + dt.timedelta(seconds=605))  # only the first order is past its grace: 1 unpaid
    assert (await checkout(shop, goods.id, contact="slow@example.com")).status_code == 201
    assert await decisions(shop) == []
    set_clock(shop, start + dt.timedelta(seconds=615))  # the first two are: 2 unpaid
    assert refused(await checkout(shop, goods.id, contact="slow@example.com"))
    entry = await _only_decision(shop)
    assert entry["decision"] == "deny" and entry["outcome"] == "refused"
    assert reason_codes(entry) == ["test_failed_payments"]
    assert entry["rules_hit"][0]["detail"] == "2 unpaid orders by contact"
    assert (await checkout(shop, goods.id, contact="other@example.com")).status_code == 201


@pytest.mark.parametrize(("limit", "detail"), [({"max_quantity": 3}, "quantity 4 > 3 (buyer_day)"),
                                               ({"max_amount_cents": 6000}, "amount 7920 > 6000 (buyer_day)")])
async def test_amount_limit_per_buyer_per_day_for_one_sku(shop, goods, other, limit, detail):
    await add_rule(shop, "amount_limit", {"scope": "buyer_day", "sku_id": goods.id, **limit})
    day = dt.datetime(2026, 12, 1, 12, 0, tzinfo=SHANGHAI)
    set_clock(shop, day)
    assert (await checkout(shop, goods.id, quantity=2)).status_code == 201
    assert (await checkout(shop, other.id, quantity=8)).status_code == 201  # other SKU: not judged, not counted
    assert (await checkout(shop, goods.id, quantity=1)).status_code == 201  # 3 of this SKU today, 5940
    assert await decisions(shop) == []
    assert refused(await checkout(shop, goods.id, quantity=1))  # 4, 7920
    entry = await _only_decision(shop)
    assert entry["decision"] == "deny" and reason_codes(entry) == ["test_amount_limit"]
    assert entry["rules_hit"][0]["detail"] == detail
    assert (await checkout(shop, other.id, quantity=1)).status_code == 201
    assert (await checkout(shop, goods.id, quantity=3, contact="someone@example.com")).status_code == 201
    set_clock(shop, day + dt.timedelta(days=1))  # a new shop day
    assert (await checkout(shop, goods.id, quantity=3)).status_code == 201


async def test_amount_limit_per_sku_per_day_counts_every_buyer(shop, goods, other):
    """sku_day: a daily cap on one SKU over all buyers (each SKU on its own when no sku_id is given)."""
    await add_rule(shop, "amount_limit", {"scope": "sku_day", "max_quantity": 5})
    day = dt.datetime(2026, 12, 1, 12, 0, tzinfo=SHANGHAI)
    set_clock(shop, day)
    for buyer, quantity in (("a@example.com", 2), ("b@example.com", 2), ("c@example.com", 1)):
        assert (await checkout(shop, goods.id, quantity=quantity, contact=buyer)).status_code == 201
    assert (await checkout(shop, other.id, quantity=5, contact="a@example.com")).status_code == 201  # its own cap
    assert await decisions(shop) == []
    assert refused(await checkout(shop, goods.id, quantity=1, contact="d@example.com"))  # 6 of this SKU today
    entry = await _only_decision(shop)
    assert reason_codes(entry) == ["test_amount_limit"]
    assert entry["rules_hit"][0]["detail"] == "quantity 6 > 5 (sku_day)"
    set_clock(shop, day + dt.timedelta(days=1))  # a new shop day
    assert (await checkout(shop, goods.id, quantity=5, contact="d@example.com")).status_code == 201


@pytest.mark.parametrize("per_sku", [True, False])
async def test_amount_limit_per_buyer_per_day_each_sku_on_its_own(shop, goods, other, per_sku):
    await add_rule(shop, "amount_limit", {"scope": "buyer_day", "max_quantity": 4, "per_sku": per_sku})
    set_clock(shop, dt.datetime(2026, 12, 1, 12, 0, tzinfo=SHANGHAI))
    assert (await checkout(shop, goods.id, quantity=3)).status_code == 201
    third = await checkout(shop, other.id, quantity=3)  # 3 of the other SKU: 6 in all, but 3 of each
    if per_sku:
        assert third.status_code == 201 and await decisions(shop) == []
        assert refused(await checkout(shop, goods.id, quantity=2))  # 5 of this SKU
    else:
        assert refused(third)
    assert (await _only_decision(shop))["rules_hit"][0]["detail"].startswith("quantity ")


@pytest.mark.parametrize("new_accounts_only", [True, False])
async def test_time_window_for_new_accounts_only_spares_buyers_who_paid_before(shop, goods, new_accounts_only):
    set_clock(shop, dt.datetime(2026, 12, 2, 12, 0, tzinfo=SHANGHAI))
    known = await checkout(shop, goods.id, contact="regular@example.com")
    await shop.pay(known.json())
    await add_rule(shop, "time_window", {"start": "01:00", "end": "06:00", "new_accounts_only": new_accounts_only},
                   action="challenge")
    assert (await checkout(shop, goods.id, contact="newcomer@example.com")).status_code == 201  # outside
    set_clock(shop, dt.datetime(2026, 12, 2, 3, 0, tzinfo=SHANGHAI))
    regular = await checkout(shop, goods.id, contact="regular@example.com")
    if new_accounts_only:
        assert regular.status_code == 201
        assert await decisions(shop) == []
    else:
        assert regular.json()["code"] == "verification_required"
    response = await checkout(shop, goods.id, contact="newcomer@example.com")
    assert response.status_code == 403 and response.json()["code"] == "verification_required"
    entry = (await decisions(shop))[0]
    assert entry["decision"] == "challenge" and entry["outcome"] == "challenged"
    assert reason_codes(entry) == ["test_time_window"] and entry["signals"]["contact"] == "newcomer@example.com"


async def test_delivery_stage_rule_holds_the_paid_order_for_review(shop, goods):
    await add_rule(shop, "amount_limit", {"scope": "order", "max_quantity": 1}, action="deny", stages=["delivery"])
    small = (await checkout(shop, goods.id, quantity=1)).json()
    await shop.pay(small)
    assert (await shop.get_order(small))["status"] == "delivered"
    big = await checkout(shop, goods.id, quantity=2, contact="big@example.com")
    assert big.status_code == 201  # not judged at checkout
    assert await decisions(shop) == []
    await shop.pay(big.json())
    status = await shop.get_order(big.json())
    assert status["status"] == "under_review" and status["delivered_keys"] == 0
    entry = await _only_decision(shop)
    assert entry["stage"] == "delivery" and entry["decision"] == "review" and entry["outcome"] == "held"
    assert reason_codes(entry) == ["test_amount_limit"]
    queue = (await shop.client.get("/api/admin/risk/reviews", headers=shop.admin)).json()
    assert [held["order_no"] for held in queue] == [big.json()["order_no"]]
