"""Each built-in rule type hits at its threshold and stays quiet just under it."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import update

from quanyi.orders.models import Order
from risk.support import SHANGHAI, add_rule, checkout, refused, set_clock


@pytest.fixture
async def goods(shop):
    sku = await shop.make_sku(code="RISK-GOODS", price_cents=1980, max_quantity=50)
    await shop.stock(sku, 30)
    return sku


@pytest.fixture
async def cheap(shop):
    sku = await shop.make_sku(code="RISK-CHEAP", price_cents=100)
    await shop.stock(sku, 10)
    return sku



@pytest.mark.parametrize("dimension", ["ip", "device", "contact"])
async def test_velocity_refuses_the_checkout_past_max_count_per_dimension(shop, goods, dimension):
    await add_rule(shop, "velocity", {"dimension": dimension, "window_seconds": 600, "max_count": 3})

    def varied(i: int) -> dict:
        # Only the dimension under test stays the same; everything else changes per request.
        return {"ip": "203.0.113.1" if dimension == "ip" else f"203.0.113.{10 + i}",
                "device": "device-fixed-1" if dimension == "device" else f"device-{i:04d}-x",
                "contact": "same@example.com" if dimension == "contact" else f"b{i}@example.com"}

    for i in range(3):
        assert (await checkout(shop, goods.id, **varied(i))).status_code == 201
    response = await checkout(shop, goods.id, **varied(3))
    assert refused(response)
    body = response.json()
    assert "velocity" not in str(body) and "max_count" not in str(body)  # neutral to the buyer


async def test_velocity_window_slides(shop, goods):
    await add_rule(shop, "velocity", {"dimension": "ip", "window_seconds": 60, "max_count": 1})
    start = dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.UTC)
    set_clock(shop, start)
    assert (await checkout(shop, goods.id, contact="a@example.com")).status_code == 201
    set_clock(shop, start + dt.timedelta(seconds=30))
    assert refused(await checkout(shop, goods.id, contact="b@example.com"))
    set_clock(shop, start + dt.timedelta(seconds=100))  # both earlier attempts left the window
    assert (await checkout(shop, goods.id, contact="c@example.com")).status_code == 201


@pytest.mark.parametrize("dimension", ["ip", "device"])
async def test_distinct_contacts_counts_different_contacts_only(shop, goods, dimension):
    await add_rule(shop, "distinct_contacts", {"dimension": dimension, "window_seconds": 3600, "max_distinct": 2})
    same = {"ip": "203.0.113.50"} if dimension == "ip" else {"device": "dev-shared-0001"}

    def other(i: int) -> dict:
        return {"device": f"dev-{i:06d}"} if dimension == "ip" else {"ip": f"203.0.113.{60 + i}"}

    for i, contact in enumerate(["a@example.com", "b@example.com", "a@example.com", "b@example.com"]):
        assert (await checkout(shop, goods.id, contact=contact, **same, **other(i))).status_code == 201
    assert refused(await checkout(shop, goods.id, contact="c@example.com", **same, **other(9)))


async def test_card_testing_counts_small_orders_only(shop, goods, cheap):
    await add_rule(shop, "card_testing",
                   {"dimension": "ip", "window_seconds": 3600, "max_count": 2, "max_amount_cents": 500})
    for i in range(2):
        assert (await checkout(shop, cheap.id, contact=f"t{i}@example.com")).status_code == 201
    for i in range(3):  # normal-sized orders from the same address are not card testing
        assert (await checkout(shop, goods.id, contact=f"n{i}@example.com")).status_code == 201
    assert refused(await checkout(shop, cheap.id, contact="t9@example.com"))


async def test_failed_payments_counts_unpaid_orders(shop, goods):
    await add_rule(shop, "failed_payments",
                   {"dimension": "contact", "window_seconds": 3600, "max_unpaid": 1, "grace_seconds": 0})
    first = await checkout(shop, goods.id, contact="slow@example.com")
    assert first.status_code == 201
    assert (await checkout(shop, goods.id, contact="slow@example.com")).status_code == 201  # one unpaid so far
    assert refused(await checkout(shop, goods.id, contact="slow@example.com"))  # two unpaid

    paid = await checkout(shop, goods.id, contact="payer@example.com")
    await shop.pay(paid.json())
    assert (await checkout(shop, goods.id, contact="payer@example.com")).status_code == 201
    assert (await checkout(shop, goods.id, contact="payer@example.com")).status_code == 201  # only one unpaid


async def test_amount_limit_per_order_and_per_sku(shop, goods, cheap):
    await add_rule(shop, "amount_limit", {"scope": "order", "max_quantity": 3, "sku_id": goods.id})
    assert (await checkout(shop, goods.id, quantity=3)).status_code == 201
    assert refused(await checkout(shop, goods.id, quantity=4))
    assert (await checkout(shop, cheap.id, quantity=4, contact="other@example.com")).status_code == 201  # other SKU


async def test_amount_limit_per_buyer_per_shop_day(shop, goods):
    await add_rule(shop, "amount_limit", {"scope": "buyer_day", "max_amount_cents": 5000})
    day = dt.datetime(2026, 12, 1, 23, 0, tzinfo=SHANGHAI)
    set_clock(shop, day)
    assert (await checkout(shop, goods.id, quantity=2)).status_code == 201  # 3960
    assert refused(await checkout(shop, goods.id))  # 5940 today
    assert (await checkout(shop, goods.id, contact="someone@example.com")).status_code == 201
    set_clock(shop, day + dt.timedelta(hours=1, minutes=1))  # next shop day (00:01 Asia/Shanghai)
    assert (await checkout(shop, goods.id)).status_code == 201


async def test_buyer_day_amount_counts_paid_and_payable_orders_not_abandoned_ones(shop, goods):
    await add_rule(shop, "amount_limit", {"scope": "buyer_day", "max_amount_cents": 5000})
    cancelled = (await checkout(shop, goods.id, quantity=2)).json()  # 3960
    response = await shop.client.post(f"/api/orders/{cancelled['order_no']}/cancel", headers=shop.auth(cancelled))
    assert response.status_code == 200 and response.json()["status"] == "cancelled"
    expired = await checkout(shop, goods.id, quantity=2)  # the cancelled order is not a purchase
    assert expired.status_code == 201
    async with shop.ctx.db.transaction() as session:  # past its reservation, not yet swept
        await session.execute(update(Order).where(Order.order_no == expired.json()["order_no"]).values(
            expires_at=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)))
    payable = await checkout(shop, goods.id, quantity=2)  # neither abandoned order counts
    assert payable.status_code == 201
    assert refused(await checkout(shop, goods.id))  # 3960 still payable + 1980
    await shop.pay(payable.json())
    assert refused(await checkout(shop, goods.id))  # 3960 paid + 1980


async def test_time_window_in_shop_time_asks_for_verification(shop, goods):
    await add_rule(shop, "time_window", {"start": "01:00", "end": "06:00"}, action="challenge")
    set_clock(shop, dt.datetime(2026, 12, 2, 0, 59, tzinfo=SHANGHAI))
    assert (await checkout(shop, goods.id)).status_code == 201
    set_clock(shop, dt.datetime(2026, 12, 2, 6, 0, tzinfo=SHANGHAI))
    assert (await checkout(shop, goods.id)).status_code == 201
    set_clock(shop, dt.datetime(2026, 12, 2, 1, 0, tzinfo=SHANGHAI))  # 17:00 UTC the day before
    response = await checkout(shop, goods.id)
    assert response.status_code == 403 and response.json()["code"] == "verification_required"


async def test_new_account_rule_spares_contacts_that_paid_before(shop, goods):
    known = await checkout(shop, goods.id, contact="regular@example.com")
    await shop.pay(known.json())
    await add_rule(shop, "new_account", {"min_amount_cents": 1000}, action="challenge")
    assert (await checkout(shop, goods.id, contact="regular@example.com")).status_code == 201
    response = await checkout(shop, goods.id, contact="newcomer@example.com")
    assert response.json()["code"] == "verification_required"


@pytest.mark.parametrize(("params", "hit", "miss"), [
    ({"ips": ["10.0.0.0/8"]}, {"ip": "10.20.30.40"}, {"ip": "11.0.0.1"}),
    ({"email_domains": ["@Spam.example"]}, {"contact": "x@spam.example"}, {"contact": "x@ok.example"}),
    ({"phones": ["13800138000"]}, {"contact": "138 0013 8000"}, {"contact": "13900139000"}),
    ({"devices": ["bad-device-1"]}, {"device": "bad-device-1"}, {"device": "good-device-1"}),
])
async def test_block_list_denies_listed_ip_domain_phone_and_device(shop, goods, params, hit, miss):
    await add_rule(shop, "block_list", params)
    assert (await checkout(shop, goods.id, **miss)).status_code == 201
    assert refused(await checkout(shop, goods.id, **hit))


async def test_allow_list_overrides_every_other_rule(shop, goods):
    await add_rule(shop, "block_list", {"ips": ["192.0.2.0/24"]})
    await add_rule(shop, "allow_list", {"email_domains": ["partner.example"]}, action="allow")
    assert refused(await checkout(shop, goods.id, ip="192.0.2.5", contact="x@elsewhere.example"))
    assert (await checkout(shop, goods.id, ip="192.0.2.5", contact="x@partner.example")).status_code == 201


async def test_scores_add_up_to_the_threshold_decision(shop, goods):
    await shop.client.put("/api/admin/risk/policy", headers=shop.admin,
                          json={"challenge_at": 50, "review_at": 80, "deny_at": 120})
    await add_rule(shop, "time_window", {"start": "01:00", "end": "06:00"}, action="allow", score=30)
    await add_rule(shop, "new_account", {"min_amount_cents": 0}, action="allow", score=20)
    set_clock(shop, dt.datetime(2026, 12, 2, 12, 0, tzinfo=SHANGHAI))
    assert (await checkout(shop, goods.id)).status_code == 201  # 20 < 50
    set_clock(shop, dt.datetime(2026, 12, 2, 3, 0, tzinfo=SHANGHAI))
    response = await checkout(shop, goods.id)  # 30 + 20 = 50
    assert response.json()["code"] == "verification_required"
    log = (await shop.client.get("/api/admin/risk/decisions", headers=shop.admin)).json()
    assert log[0]["decision"] == "challenge" and log[0]["score"] == 50
    assert {h["reason_code"] for h in log[0]["rules_hit"]} == {"test_time_window", "test_new_account"}
    assert log[0]["signals"]["ip"] == "198.51.100.7"


async def test_new_device_hits_a_known_buyer_on_a_new_device_and_address(shop, goods):
    first = await checkout(shop, goods.id, contact="owner@example.com", ip="203.0.113.77", device="phone-of-owner")
    await shop.pay(first.json())
    await add_rule(shop, "new_device", {}, action="challenge")
    # Same device from another address, or the same address from a new device: the owner.
    assert (await checkout(shop, goods.id, contact="owner@example.com", ip="198.51.100.1",
                           device="phone-of-owner")).status_code == 201
    assert (await checkout(shop, goods.id, contact="owner@example.com", ip="203.0.113.77",
                           device="new-laptop-01")).status_code == 201
    assert (await checkout(shop, goods.id, contact="stranger@example.com", ip="192.0.2.9",
                           device="thief-phone-1")).status_code == 201  # never paid: not a known buyer
    response = await checkout(shop, goods.id, contact="owner@example.com", ip="192.0.2.9", device="thief-phone-1")
    assert response.json()["code"] == "verification_required"
