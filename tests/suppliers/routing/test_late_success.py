"""A supplier purchase that succeeds only after its order was refunded by hand: what was bought is not lost to
the books. Card keys go on sale at their cost (booked as cost of goods when they sell); a recharge already
credited is written off as cost."""

from __future__ import annotations

from sqlalchemy import select

from quanyi.ledger import service as ledger_service
from quanyi.orders.models import Order
from quanyi.suppliers.adapter import ProductKind
from quanyi.testpeers.suppliers import CARD_PRODUCT, RECHARGE_PRODUCT
from refund_helpers import ask_refund, cashier_pay
from suppliers.routing.support import GRACE, TIMEOUT_MS, add_supplier, age_attempts, attempts, run_due


async def _refunded_while_the_supplier_is_slow(shop, sim, sku, **order_fields):  # type: ignore[no-untyped-def]
    order = await shop.create_order(sku.id, **order_fields)
    await cashier_pay(shop, order)
    await run_due(shop, grace=GRACE)  # the purchase timed out: unclear, asked about later
    [attempt] = await attempts(shop, order)
    assert attempt["state"] == "unknown"
    refund = await ask_refund(shop, order)
    assert refund.status_code in (200, 201, 202), refund.text
    key = f"{order['order_no']}-01"
    sim.release_placing()
    await sim.await_for(lambda: sim.purchases_for(key) == 1)  # ...and then the supplier took it after all
    await sim.await_for(lambda: sim.order(key).state == "succeeded")  # a recharge: once credited
    await age_attempts(shop, GRACE)
    await run_due(shop, later=GRACE, grace=GRACE)  # (a recharge's callback may have told the shop already)
    [attempt] = await attempts(shop, order)
    assert attempt["state"] == "succeeded"
    assert (await shop.get_order(order))["status"] in ("refunding", "refunded")
    return order, key


async def _postings(shop, order):  # type: ignore[no-untyped-def]
    async with shop.ctx.db.read_session() as session:
        order_id = await session.scalar(select(Order.id).where(Order.order_no == order["order_no"]))
        return await ledger_service.order_postings(session=session, order_id=order_id)


async def _books_balance(shop) -> None:  # type: ignore[no-untyped-def]
    async with shop.ctx.db.read_session() as session:
        assert set((await ledger_service.trial_balance(session=session)).totals.values()) <= {0}


def _sum(postings, account: str) -> int:  # type: ignore[no-untyped-def]
    return sum(amount for p in postings for code, amount, _ in p.entries if code == account)


async def test_codes_bought_after_the_order_was_refunded_go_on_sale_at_their_cost(shop, sims, served_shop):
    slow = sims(seed=1)
    slow.hold_placing()  # placed only after our call timed out and we asked about it
    sku = await shop.make_sku()
    await add_supplier(shop, slow, code="slow", sku=sku, product_code=CARD_PRODUCT, cost_cents=900,
                       timeout_ms=TIMEOUT_MS)
    order, key = await _refunded_while_the_supplier_is_slow(shop, slow, sku)

    postings = await _postings(shop, order)
    assert "supplier_goods_stocked" in {p.kind for p in postings}
    assert _sum(postings, "card_key_stock") == 900 and _sum(postings, "cost_of_goods") == 0
    await _books_balance(shop)

    # The next buyer gets that key from our own stock, and its cost is booked with that sale.
    buyer = await shop.create_order(sku.id, contact="next@example.com")
    await cashier_pay(shop, buyer)
    assert (await shop.get_order(buyer))["status"] == "delivered"
    [shown] = await shop.reveal(buyer)
    assert shown["code"] == slow.order(key).codes[0].password
    sold = await _postings(shop, buyer)
    assert _sum(sold, "cost_of_goods") == 900 and _sum(sold, "card_key_stock") == -900
    await _books_balance(shop)


async def test_a_recharge_credited_after_the_order_was_refunded_is_written_off_as_cost(shop, sims, served_shop):
    slow = sims(seed=1)
    slow.hold_placing()  # taken only after our call timed out and we asked about it
    sku = await shop.make_sku(delivery_type="direct_recharge", price_cents=5000)
    await add_supplier(shop, slow, code="slow", sku=sku, product_code=RECHARGE_PRODUCT,
                       kind=ProductKind.DIRECT_RECHARGE, timeout_ms=TIMEOUT_MS)
    cost = slow.products[RECHARGE_PRODUCT].cost_cents
    order, _ = await _refunded_while_the_supplier_is_slow(shop, slow, sku, recharge_account="13800138000")
    postings = await _postings(shop, order)
    assert "supplier_goods_written_off" in {p.kind for p in postings}
    assert _sum(postings, "cost_of_goods") == cost
    await _books_balance(shop)
