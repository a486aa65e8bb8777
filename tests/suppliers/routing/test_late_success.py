"""A supplier purchase that succeeds only after its order was refunded by hand: what was bought is not lost to
the books. Card keys go on sale at their cost (booked as cost of goods when they sell); a recharge already
credited is written off as cost. The same while the refund of the whole order is still on its way (its gateway
call unanswered or refused): the order is paid, but nothing more is the buyer's. A partial refund is not that. And
when an operator withdraws the refused refund, delivery resumes: with what was bought late, booked once."""

from __future__ import annotations

import asyncio
import datetime as dt

import httpx
from sqlalchemy import select

from quanyi.inventory.models import CardKey
from quanyi.ledger import service as ledger_service
from quanyi.orders.models import Order
from quanyi.payments.gateway import RefundRequest, RefundResult
from quanyi.payments.sandbox.gateway import SandboxGateway
from quanyi.refunds import service as refunds_service
from quanyi.refunds.models import Refund
from quanyi.suppliers.adapter import ProductKind
from quanyi.testpeers.suppliers import CARD_PRODUCT, RECHARGE_PRODUCT
from refund_helpers import Unreachable, ask_refund, cashier_pay
from suppliers.routing.support import GRACE, TIMEOUT_MS, add_supplier, age_attempts, attempts, job_of, run_due


class _Refusing(SandboxGateway):
    async def refund(self, request: RefundRequest) -> RefundResult:
        return RefundResult(refund_no=request.refund_no, state="failed", amount_cents=request.amount_cents,
                            detail="ACQ.SELLER_BALANCE_NOT_ENOUGH: balance too low")


def _gateway(shop, refund_gateway: str) -> SandboxGateway:  # type: ignore[no-untyped-def]
    """The sandbox as the refund finds it: unreachable (the refund stays requested) or refusing (failed)."""
    if refund_gateway == "unreachable":
        return SandboxGateway(secret=shop.sandbox_secret, http=httpx.AsyncClient(transport=Unreachable()),
                              api_base_url="http://127.0.0.1:8000")
    return _Refusing(secret=shop.sandbox_secret, http=shop.ctx.http, api_base_url="http://127.0.0.1:8000")


async def _refunded_while_the_supplier_is_slow(shop, sim, sku, *, refund_gateway: str | None = None,  # type: ignore[no-untyped-def]
                                               refund_body: dict | None = None, **order_fields):
    order = await shop.create_order(sku.id, **order_fields)
    await cashier_pay(shop, order)
    await run_due(shop, grace=GRACE)  # the purchase timed out: unclear, asked about later
    [attempt] = await attempts(shop, order)
    assert attempt["state"] == "unknown"
    if refund_gateway is not None:
        shop.ctx.gateways.register(_gateway(shop, refund_gateway))
    refund = await ask_refund(shop, order, **(refund_body or {}))
    assert refund.status_code in (200, 201, 202), refund.text
    key = f"{order['order_no']}-01"
    sim.release_placing()
    await sim.await_for(lambda: sim.purchases_for(key) == 1)  # ...and then the supplier took it after all
    await sim.await_for(lambda: sim.order(key).state == "succeeded")  # a recharge: once credited
    # The shop learns it by asking, or by the recharge's callback: that one may still be committing when the ask
    # finds the attempt locked and leaves it (seen under load: 'unknown' read just before the callback's commit).
    for _ in range(50):
        await age_attempts(shop, GRACE)
        await run_due(shop, later=GRACE, grace=GRACE)
        [attempt] = await attempts(shop, order)
        if attempt["state"] != "unknown":
            break
        await asyncio.sleep(0.2)
    assert attempt["state"] == "succeeded"
    if refund_body is None:
        # Refunded, or (the gateway call failed or was slow: a loaded machine) paid with its full refund on its way:
        # either way not delivered.
        status = (await shop.get_order(order))["status"]
        refund_status = await shop.scalar(select(Refund.status))
        assert (status, refund_status) in {("refunded", "succeeded"), ("paid", "requested"), ("paid", "processing"),
                                           ("paid", "failed")}
    return order, key


async def _slow_card_supplier(shop, sims):  # type: ignore[no-untyped-def]
    """A SKU filled by one supplier (codes at 900) that places our purchase only after our call timed out and we
    asked about it."""
    slow = sims(seed=1)
    slow.hold_placing()
    sku = await shop.make_sku()
    await add_supplier(shop, slow, code="slow", sku=sku, product_code=CARD_PRODUCT, cost_cents=900,
                       timeout_ms=TIMEOUT_MS)
    return slow, sku


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
    slow, sku = await _slow_card_supplier(shop, sims)
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


async def _paid_with_no_keys(shop, order) -> None:  # type: ignore[no-untyped-def]
    view = await shop.get_order(order)
    assert (view["status"], view["delivered_keys"]) == ("paid", 0)
    reveal = await shop.client.post(f"/api/orders/{order['order_no']}/reveal", headers=shop.auth(order))
    assert reveal.status_code == 409, reveal.text


async def test_codes_bought_while_a_full_refund_is_unanswered_go_on_sale_not_to_the_buyer(shop, sims, served_shop):
    slow, sku = await _slow_card_supplier(shop, sims)
    order, key = await _refunded_while_the_supplier_is_slow(shop, slow, sku, refund_gateway="unreachable",
                                                            refund_body={})
    assert await shop.scalar(select(Refund.status)) == "requested"
    await _paid_with_no_keys(shop, order)
    assert (await job_of(shop, order)).outcome == "abandoned"  # no new purchase for an order being refunded
    postings = await _postings(shop, order)
    assert "supplier_goods_stocked" in {p.kind for p in postings}
    assert _sum(postings, "card_key_stock") == 900
    await _books_balance(shop)

    buyer = await shop.create_order(sku.id, contact="next@example.com")
    await cashier_pay(shop, buyer)
    [shown] = await shop.reveal(buyer)
    assert shown["code"] == slow.order(key).codes[0].password

    # The gateway is back: the refund completes and the order is refunded, with nothing delivered.
    shop.ctx.gateways.register(SandboxGateway(secret=shop.sandbox_secret, http=shop.ctx.http,
                                              api_base_url="http://127.0.0.1:8000"))
    later = dt.datetime.now(dt.UTC) + dt.timedelta(hours=2)
    assert await refunds_service.execute_due_refunds(db=shop.ctx.db, gateways=shop.ctx.gateways, now=later) == 1
    assert (await shop.get_order(order))["status"] == "refunded"
    await _books_balance(shop)


async def test_a_recharge_credited_while_a_full_refund_was_refused_is_written_off_until_it_is_withdrawn(
        shop, sims, served_shop):
    slow = sims(seed=1)
    slow.hold_placing()
    sku = await shop.make_sku(delivery_type="direct_recharge", price_cents=5000)
    await add_supplier(shop, slow, code="slow", sku=sku, product_code=RECHARGE_PRODUCT,
                       kind=ProductKind.DIRECT_RECHARGE, timeout_ms=TIMEOUT_MS)
    cost = slow.products[RECHARGE_PRODUCT].cost_cents
    order, _ = await _refunded_while_the_supplier_is_slow(shop, slow, sku, refund_gateway="refused", refund_body={},
                                                          recharge_account="13800138000")
    assert await shop.scalar(select(Refund.status)) == "failed"  # an operator retries it: still the buyer's money
    assert (await shop.get_order(order))["status"] == "paid"
    assert (await job_of(shop, order)).outcome == "abandoned"
    postings = await _postings(shop, order)
    assert "supplier_goods_written_off" in {p.kind for p in postings}
    assert _sum(postings, "cost_of_goods") == cost
    await _books_balance(shop)

    # The operator withdraws the refused refund: the account was credited, so the order is delivered, its cost
    # booked once (the write-off is that cost, not a second one), and nothing is recharged again.
    await _withdraw(shop, order)
    await run_due(shop, later=GRACE, grace=GRACE)
    assert (await shop.get_order(order))["status"] == "delivered"
    assert slow.purchases_for(f"{order['order_no']}-02") == 0
    postings = await _postings(shop, order)
    assert _sum(postings, "cost_of_goods") == cost and "order_delivered" in {p.kind for p in postings}
    await _books_balance(shop)


async def test_a_recharge_credited_while_a_partial_refund_is_unanswered_is_delivered(shop, sims, served_shop):
    slow = sims(seed=1)
    slow.hold_placing()
    sku = await shop.make_sku(delivery_type="direct_recharge", price_cents=5000)
    await add_supplier(shop, slow, code="slow", sku=sku, product_code=RECHARGE_PRODUCT,
                       kind=ProductKind.DIRECT_RECHARGE, timeout_ms=TIMEOUT_MS)
    order, _ = await _refunded_while_the_supplier_is_slow(shop, slow, sku, refund_gateway="unreachable",
                                                          refund_body={"amount_cents": 4999},
                                                          recharge_account="13800138000")
    assert (await shop.get_order(order))["status"] == "delivered"  # one cent is still the buyer's: delivered
    assert "supplier_goods_written_off" not in {p.kind for p in await _postings(shop, order)}
    await _books_balance(shop)


async def test_codes_held_for_an_order_abandoned_while_its_full_refund_is_on_its_way_go_back_on_sale(
        shop, sims, served_shop):
    """A short delivery left the order one code (held for it) and the rest was being bought elsewhere when its
    whole amount was refunded. That purchase then fails: the job gives up (the order is not the buyer's any more),
    and the code it held goes back on sale at its cost, as if no supplier could fill the order (it stayed reserved
    for the refunded order for ever)."""
    stingy, slow = sims(seed=1), sims(seed=2)
    stingy.set_faulty_delivery(short=1)
    slow.hold_placing()  # never places it: its "no such order" is believed after the grace, a failure
    sku = await shop.make_sku()
    await add_supplier(shop, stingy, code="stingy", sku=sku, product_code=CARD_PRODUCT, cost_cents=900, priority=1)
    await add_supplier(shop, slow, code="slow", sku=sku, product_code=CARD_PRODUCT, cost_cents=950, priority=2,
                       timeout_ms=TIMEOUT_MS)
    order = await shop.create_order(sku.id, quantity=2)
    await cashier_pay(shop, order)
    await run_due(shop, grace=GRACE)  # 1 of 2 codes from stingy; the other asked of slow, unclear
    assert [(a["supplier_code"], a["state"]) for a in await attempts(shop, order)] == [
        ("stingy", "succeeded"), ("slow", "unknown")]
    assert await _key_statuses(shop, sku) == ["reserved"]

    shop.ctx.gateways.register(_gateway(shop, "unreachable"))
    refund = await ask_refund(shop, order)
    assert refund.status_code in (200, 201, 202), refund.text
    assert await shop.scalar(select(Refund.status)) == "requested"

    await age_attempts(shop, GRACE)
    await run_due(shop, later=GRACE, grace=GRACE)  # slow never had it: failed; nothing more to buy
    assert [a["state"] for a in await attempts(shop, order)] == ["succeeded", "failed"]
    assert (await job_of(shop, order)).outcome == "abandoned"
    await _paid_with_no_keys(shop, order)
    assert await _key_statuses(shop, sku) == ["available"]
    postings = await _postings(shop, order)
    assert _sum(postings, "card_key_stock") == 900  # the code's cost is stock now, sold with it later
    await _books_balance(shop)

    buyer = await shop.create_order(sku.id, contact="next@example.com")
    await cashier_pay(shop, buyer)
    [shown] = await shop.reveal(buyer)
    assert shown["code"] == stingy.order(f"{order['order_no']}-01").codes[0].password


async def _key_statuses(shop, sku) -> list[str]:  # type: ignore[no-untyped-def]
    async with shop.ctx.db.read_session() as session:
        return list((await session.scalars(select(CardKey.status).where(CardKey.sku_id == sku.id))).all())


# ---------------------------------------------------------------- the refused refund withdrawn: delivery resumes


async def _withdraw(shop, order) -> dict:  # type: ignore[no-untyped-def]
    [refund] = (await shop.client.get(f"/api/admin/orders/{order['order_no']}/refunds", headers=shop.admin)).json()
    assert (refund["status"], refund["actions"]) == ("failed", ["retry", "withdraw"])
    response = await shop.client.post(f"/api/admin/refunds/{refund['refund_no']}/withdraw", headers=shop.admin,
                                      json={"reason": "buyer wants the goods after all"})
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


async def test_a_withdrawn_refund_resumes_delivery_with_the_codes_bought_late(shop, sims, served_shop):
    slow, sku = await _slow_card_supplier(shop, sims)
    order, key = await _refunded_while_the_supplier_is_slow(shop, slow, sku, refund_gateway="refused",
                                                            refund_body={})
    await _paid_with_no_keys(shop, order)
    assert (await job_of(shop, order)).outcome == "abandoned"
    await run_due(shop, later=GRACE, grace=GRACE)  # nobody acts: nothing moves by itself
    assert (await shop.get_order(order))["status"] == "paid"

    assert (await _withdraw(shop, order))["status"] == "withdrawn"
    job = await job_of(shop, order)
    assert (job.status.value, job.outcome) == ("open", None)
    await run_due(shop, later=GRACE, grace=GRACE)
    assert (await shop.get_order(order))["status"] == "delivered"
    [shown] = await shop.reveal(order)
    assert shown["code"] == slow.order(key).codes[0].password  # the code bought late, from our stock
    assert slow.purchases_for(f"{order['order_no']}-02") == 0  # nothing bought twice
    assert ((await job_of(shop, order)).outcome, await shop.scalar(select(Refund.status))) == ("delivered",
                                                                                              "withdrawn")
    sold = await _postings(shop, order)
    assert _sum(sold, "cost_of_goods") == 900 and _sum(sold, "card_key_stock") == 0  # stocked at cost, then sold
    await _books_balance(shop)
