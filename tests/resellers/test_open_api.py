"""The open API as a reseller uses it, through the repo's Python client: catalog at its prices, card keys paid
from its prepaid balance (delivered in the same request, revealed and audited), direct recharges, idempotent
order numbers, balance, and the ledger after it all."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from helpers import Shop
from quanyi.inventory.models import KeyReveal
from quanyi.openapi_client import OpenApiError
from quanyi.orders.models import Order
from resellers.support import add_reseller, balance_of, books_balanced, top_up


async def test_card_keys_are_bought_from_the_balance_and_delivered_in_the_answer(shop: Shop):
    sku = await shop.make_sku(code="GIFT-100", price_cents=10000)
    codes = await shop.stock(sku, 5)
    reseller = await add_reseller(shop, top_up_cents=50_000)
    response = await shop.client.put("/api/admin/resellers/R001/prices/GIFT-100", headers=shop.admin,
                                     json={"price_cents": 9500})
    assert response.status_code == 200, response.text

    catalog = await reseller.client.catalog()
    assert catalog == [{"product_code": "GIFT-100", "cost_cents": 9500, "stock": 5, "available": True,
                        "name": "Video VIP 1 Monthly", "kind": "card_key", "face_value_cents": 0, "currency": "CNY",
                        "min_quantity": 1, "max_quantity": 10}]

    order = await reseller.client.buy_card_keys("R-1001", "GIFT-100", quantity=2, max_unit_cost_cents=9500)
    assert order["state"] == "succeeded" and order["unit_cost_cents"] == 9500 and order["total_cents"] == 19000
    assert sorted(c["code"] for c in order["codes"]) == sorted(set(codes) & {c["code"] for c in order["codes"]})
    assert len({c["code"] for c in order["codes"]}) == 2
    assert await balance_of(shop, "R001") == 50_000 - 19_000
    assert (await reseller.client.balance())["balance_cents"] == 31_000

    again = await reseller.client.buy_card_keys("R-1001", "GIFT-100", quantity=2, max_unit_cost_cents=9500)
    assert again["order_no"] == order["order_no"] and again["codes"] == order["codes"]
    assert await balance_of(shop, "R001") == 31_000  # the retry took nothing
    looked_up = await reseller.client.order("R-1001")
    assert looked_up["codes"] == order["codes"]
    # Every hand-over of the codes is a reveal, audited per key (creation, retry, lookup).
    assert await shop.count(KeyReveal, KeyReveal.channel == "openapi") == 6
    assert await shop.available(sku.id) == 3

    with pytest.raises(OpenApiError) as conflict:
        await reseller.client.buy_card_keys("R-1001", "GIFT-100", quantity=1, max_unit_cost_cents=9500)
    assert (conflict.value.status, conflict.value.code) == (409, "idempotency_conflict")
    await books_balanced(shop)


async def test_refusals_take_nothing_and_say_why(shop: Shop):
    sku = await shop.make_sku(code="GIFT-50", price_cents=5000)
    await shop.stock(sku, 1)
    reseller = await add_reseller(shop, top_up_cents=6000)
    cases = [
        (dict(order_no="A1", product_code="NOPE", quantity=1, max_unit_cost_cents=9999), 404, "unknown_product"),
        (dict(order_no="A2", product_code="GIFT-50", quantity=1, max_unit_cost_cents=4999), 409, "price_changed"),
        (dict(order_no="A3", product_code="GIFT-50", quantity=2, max_unit_cost_cents=5000), 409, "out_of_stock"),
    ]
    for kwargs, status, code in cases:
        order_no = kwargs.pop("order_no")
        with pytest.raises(OpenApiError) as refused:
            await reseller.client.buy_card_keys(order_no, **kwargs)
        assert (refused.value.status, refused.value.code) == (status, code), refused.value
    await reseller.client.buy_card_keys("A4", "GIFT-50", quantity=1, max_unit_cost_cents=5000)
    await shop.stock(sku, 1)
    with pytest.raises(OpenApiError) as poor:
        await reseller.client.buy_card_keys("A5", "GIFT-50", quantity=1, max_unit_cost_cents=5000)
    assert (poor.value.status, poor.value.code) == (402, "insufficient_balance")
    assert await balance_of(shop, "R001") == 1000
    assert await shop.count(Order) == 1  # refused orders were never placed
    assert await shop.available(sku.id) == 1
    # A refused number was not taken: it may be used again once the balance allows.
    await top_up(shop, "R001", 4000)
    assert (await reseller.client.buy_card_keys("A5", "GIFT-50", quantity=1, max_unit_cost_cents=5000))["state"] == (
        "succeeded")
    await books_balanced(shop)


async def test_top_ups_are_idempotent_and_booked(shop: Shop):
    await add_reseller(shop)
    first = await top_up(shop, "R001", 1234, key="bank-77")
    second = await top_up(shop, "R001", 1234, key="bank-77")
    assert first["created"] and not second["created"] and second["balance_cents"] == 1234
    await books_balanced(shop)
    assert int(await shop.scalar(select(func.count()).select_from(Order))) == 0


async def test_an_order_refunded_while_its_look_up_waits_for_it_is_described_refunded_without_keys(
        shop: Shop, backend: str, database_url: str):
    """PostgreSQL: the look-up reads the order as delivered, then reveals its keys under the order row (FOR KEY
    SHARE, as every reveal). A refund holding the row commits it refunded meanwhile: the look-up describes the order
    as it now is, with no keys (the reveal raised OrderNotDelivered: a 503 for an order that exists)."""
    from faults.support import refunded_while_waiting

    if backend != "postgresql":
        pytest.skip("SQLite's writer lock: no reveal waits for a refund inside a look-up")
    sku = await shop.make_sku(code="GIFT-30", price_cents=3000)
    await shop.stock(sku, 2)
    reseller = await add_reseller(shop, top_up_cents=10_000)
    bought = await reseller.client.buy_card_keys("R-7", "GIFT-30", quantity=2, max_unit_cost_cents=3000)
    assert bought["state"] == "succeeded" and len(bought["codes"]) == 2
    order_id = await shop.scalar(select(Order.id).where(Order.order_no == bought["order_no"]))
    described = await refunded_while_waiting(database_url, order_id, reseller.client.order("R-7"),
                                             what="the look-up")
    assert described["codes"] == [] and described["refunded_cents"] == described["total_cents"] == 6000
    assert described == await reseller.client.order("R-7")  # as any later look-up describes it
