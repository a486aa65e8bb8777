"""`POST /api/pricing/quote` prices for the logged-in member (OptionalMemberDep), exactly as their checkout does."""

from __future__ import annotations

import pytest

from helpers import make_settings
from members.support import sign_in
from refund_helpers import cashier_pay


@pytest.fixture
def settings(database_url: str):  # type: ignore[no-untyped-def]
    return make_settings(database_url, smtp_host="127.0.0.1", smtp_from="shop@example.com")


async def test_a_members_quote_has_their_member_price_and_matches_their_checkout(shop, stocked_sku):
    member = await sign_in(shop)
    mine = {"X-Member-Token": member["token"]}
    level = await shop.client.put("/api/admin/loyalty/levels/VIP", headers=shop.admin,
                                  json={"name": "VIP", "min_paid_cents": 0, "discount_bps": 1000})
    assert level.status_code == 200, level.text
    first = await shop.client.post("/api/orders", headers=mine, json={"sku_id": stocked_sku.id,
                                                                      "contact": "member@example.com"})
    await cashier_pay(shop, first.json())  # delivered: the member reaches VIP (threshold 0)

    shop.client.cookies.clear()
    guest = await shop.client.post("/api/pricing/quote", json={"sku_id": stocked_sku.id, "quantity": 2})
    assert (guest.json()["member_discount_cents"], guest.json()["payable_cents"]) == (0, 3960)
    quote = await shop.client.post("/api/pricing/quote", headers=mine, json={"sku_id": stocked_sku.id, "quantity": 2})
    assert quote.status_code == 200, quote.text
    assert (quote.json()["member_discount_cents"], quote.json()["payable_cents"]) == (396, 3564)
    order = await shop.client.post("/api/orders", headers=mine, json={"sku_id": stocked_sku.id, "quantity": 2,
                                                                      "contact": "member@example.com"})
    assert order.status_code == 201, order.text
    assert (order.json()["member_discount_cents"], order.json()["total_cents"]) == (396, 3564)
