"""自选卡密: buyers pick one specific key by the label the operator gave it (never seeing the code before paying),
pay the SKU's surcharge, and get exactly that key; two buyers racing for one key: exactly one gets it."""

from __future__ import annotations

import asyncio
import datetime as dt

from sqlalchemy import select

from quanyi.inventory import picking
from quanyi.inventory.models import CardKey, CardKeyStatus
from quanyi.orders import service as orders_service
from quanyi.orders.models import Order


async def _pick_sku(shop, *, keys: int, labelled: int, surcharge: int = 200):  # type: ignore[no-untyped-def]
    sku = await shop.make_sku(price_cents=1000)
    answer = await shop.client.patch(f"/api/admin/skus/{sku.id}", headers=shop.admin,
                                     json={"pick_surcharge_cents": surcharge})
    assert answer.status_code == 200 and answer.json()["product_type"] == "chosen_card_key", answer.text
    codes = await shop.stock(sku, keys)
    async with shop.ctx.db.transaction() as session:
        ids = (await session.scalars(select(CardKey.id).where(CardKey.sku_id == sku.id).order_by(CardKey.id))).all()
        await picking.label_card_keys(session=session, sku_id=sku.id,
                                      labels={key_id: f"账号 #{n} · {80 + n}级" for n, key_id in
                                              enumerate(ids[:labelled], 1)})
    return sku, codes, ids


async def test_a_buyer_picks_a_key_by_label_pays_the_surcharge_and_gets_exactly_that_key(shop):
    sku, codes, ids = await _pick_sku(shop, keys=3, labelled=2)
    listed = await shop.client.get(f"/api/catalog/skus/{sku.id}/pickable-keys")
    assert listed.status_code == 200
    assert listed.json() == [{"id": ids[0], "label": "账号 #1 · 81级"}, {"id": ids[1], "label": "账号 #2 · 82级"}]
    assert not any(code in listed.text for code in codes)
    page = await shop.client.get(f"/p/product-{sku.product_id}")
    assert page.text.count('data-testid="pick-option"') == 2 and "账号 #2 · 82级" in page.text
    assert not any(code in page.text for code in codes)

    order = await shop.create_order(sku.id, card_key_id=ids[1])
    assert (order["unit_price_cents"], order["total_cents"]) == (1200, 1200)  # price + surcharge
    assert order["picked_card_key_label"] == "账号 #2 · 82级"
    assert [k["id"] for k in (await shop.client.get(f"/api/catalog/skus/{sku.id}/pickable-keys")).json()] == [ids[0]]
    await shop.pay(order)
    assert [k["code"] for k in await shop.reveal(order)] == [codes[1]]

    taken = await shop.client.post("/api/orders", json={"sku_id": sku.id, "contact": "b@example.com",
                                                        "card_key_id": ids[1]})
    assert taken.status_code == 409 and taken.json()["code"] == "card_key_taken"
    unlabelled = await shop.client.post("/api/orders", json={"sku_id": sku.id, "contact": "b@example.com",
                                                             "card_key_id": ids[2]})
    assert unlabelled.status_code == 409 and unlabelled.json()["code"] == "card_key_taken"
    two = await shop.client.post("/api/orders", json={"sku_id": sku.id, "contact": "b@example.com", "quantity": 2,
                                                      "card_key_id": ids[0]})
    assert two.status_code == 422 and two.json()["code"] == "pick_not_offered"
    assert await shop.count(Order) == 1  # refusals wrote nothing

    random_buy = await shop.create_order(sku.id)  # no pick: the list price, any key
    assert random_buy["total_cents"] == 1000

    plain = await shop.make_sku(code="PLAIN-1")
    await shop.stock(plain, 1)
    refused = await shop.client.post("/api/orders", json={"sku_id": plain.id, "contact": "b@example.com",
                                                          "card_key_id": ids[0]})
    assert refused.status_code == 422 and refused.json()["code"] == "pick_not_offered"
    assert (await shop.client.get(f"/api/catalog/skus/{plain.id}/pickable-keys")).status_code == 404


async def test_a_late_payment_never_gets_a_substitute_for_the_picked_key(shop):
    sku, codes, ids = await _pick_sku(shop, keys=1, labelled=1)
    picked = await shop.create_order(sku.id, card_key_id=ids[0])
    payment = await shop.start_payment(picked)  # the buyer is at the cashier...
    cancelled = await shop.client.post(f"/api/orders/{picked['order_no']}/cancel", headers=shop.auth(picked))
    assert cancelled.json()["status"] == "cancelled"
    other = await shop.create_order(sku.id, contact="other@example.com")  # takes the released key at list price
    await shop.pay(other)
    late = await shop.notify(shop.notification(payment))  # ...and pays after the order was cancelled
    assert late.status_code == 200
    # Money after cancellation: the picked key is gone, so the order waits for a refund, never another key.
    assert (await shop.get_order(picked))["status"] == "refund_pending"
    assert [k["code"] for k in await shop.reveal(other)] == codes


async def test_buyers_racing_for_one_key_exactly_one_gets_it(shop):
    sku, _codes, ids = await _pick_sku(shop, keys=2, labelled=2)
    racers = 6

    async def checkout(n: int) -> str:
        try:
            async with shop.ctx.db.transaction() as session:
                await orders_service.create_order(
                    session=session, sku_id=sku.id, quantity=1, contact=f"racer{n}@example.com",
                    reservation_ttl=dt.timedelta(minutes=15), picked_card_key_id=ids[0])
            return "won"
        except picking.CardKeyTaken:
            return "taken"

    outcomes = await asyncio.gather(*(checkout(n) for n in range(racers)))
    assert sorted(outcomes) == ["taken"] * (racers - 1) + ["won"]
    async with shop.ctx.db.read_session() as session:
        orders = (await session.scalars(select(Order).where(Order.sku_id == sku.id))).all()
        key = await session.get(CardKey, ids[0])
        other = await session.get(CardKey, ids[1])
    assert len(orders) == 1 and orders[0].picked_card_key_id == ids[0]
    assert (key.status, key.order_id) == (CardKeyStatus.RESERVED, orders[0].id)
    assert other.status == CardKeyStatus.AVAILABLE  # the loser never got a different key instead
