"""Direct-recharge (直充) orders: submitted to the best supplier, driven by its callbacks (into the shop
served on a real port) and by polling; a failure tries the next supplier; none left means a refund."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from sqlalchemy import func, select

from quanyi.orders.access import COOKIE_NAME, cookie_with_token
from quanyi.orders.models import OrderEvent
from quanyi.suppliers.adapter import ProductKind
from quanyi.testpeers.suppliers import RECHARGE_PRODUCT
from suppliers.routing.support import (
    ACCOUNT,
    GRACE,
    TIMEOUT_MS,
    add_supplier,
    age_attempts,
    attempts,
    job_of,
    recharge_order_paid,
    run_due,
    supplier_row,
)


@pytest.fixture(params=["quanyi", "async_recharge"])
def dialect(request: pytest.FixtureRequest) -> str:
    """Both dialects that do direct recharge: our own protocol and the asynchronous MD5-signed one."""
    return str(request.param)


async def _until(check: Callable[[], Awaitable[bool]], timeout: float = 45.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await check():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


async def _status(shop: Any, order: dict[str, Any]) -> str:
    return (await shop.get_order(order))["status"]  # type: ignore[no-any-return]


async def _recharge_sku(shop: Any, sim: Any, *more: tuple[str, Any], **first: Any) -> Any:
    sku = await shop.make_sku(delivery_type="direct_recharge", price_cents=5000)
    await add_supplier(shop, sim, code="first", sku=sku, product_code=RECHARGE_PRODUCT,
                       kind=ProductKind.DIRECT_RECHARGE, **first)
    for code, other in more:
        await add_supplier(shop, other, code=code, sku=sku, product_code=RECHARGE_PRODUCT,
                           cost_cents=other.products[RECHARGE_PRODUCT].cost_cents + 10,
                           kind=ProductKind.DIRECT_RECHARGE)
    return sku


async def test_recharge_succeeds_through_the_suppliers_callback(shop, sims, dialect, served_shop):
    sim = sims(dialect, seed=1)
    sim.set_callback_delay(None)  # stays processing until we let it finish
    sku = await _recharge_sku(shop, sim)
    order = await recharge_order_paid(shop, sku)
    await run_due(shop)
    view = await shop.get_order(order)
    assert view["status"] == "paid" and view["fulfilment"]["stage"] in ("submitted", "processing")
    assert view["recharge_account_masked"] == "138****8000"
    key = f"{order['order_no']}-01"
    assert sim.order(key).account == ACCOUNT and sim.order(key).notify_url.startswith(served_shop)

    page = await _order_page(shop, order)
    assert 'data-testid="fulfilment"' in page and 'http-equiv="refresh"' in page  # live status, refreshing

    await asyncio.to_thread(sim.resolve_recharge, key, succeeded=True)
    await _until(lambda: _is(shop, order, "delivered"))
    page = await _order_page(shop, order)
    assert 'data-testid="recharged"' in page and "138****8000" in page and 'http-equiv="refresh"' not in page
    assert (await shop.get_order(order))["fulfilment"]["stage"] == "succeeded"
    assert all(c.accepted for c in sim.callbacks_for("recharge"))  # answered with the dialect's ack
    [attempt] = await attempts(shop, order)
    assert attempt["state"] == "succeeded" and attempt["supplier_order_no"] == sim.order(key).order_no


async def _order_page(shop: Any, order: dict[str, Any]) -> str:
    shop.client.cookies.set(COOKIE_NAME, cookie_with_token(None, order["order_no"], order["access_token"]))
    page = await shop.client.get(f"/orders/{order['order_no']}")
    assert page.status_code == 200
    return page.text  # type: ignore[no-any-return]


async def _is(shop: Any, order: dict[str, Any], status: str) -> bool:
    return await _status(shop, order) == status


async def test_recharge_without_callbacks_is_found_by_polling(shop, sims, dialect):
    sim = sims(dialect, seed=1)
    sim.set_callbacks_enabled(False)
    sku = await _recharge_sku(shop, sim)
    order = await recharge_order_paid(shop, sku)
    await run_due(shop)
    key = f"{order['order_no']}-01"
    await sim.await_for(lambda: sim.order(key).state == "succeeded")
    assert await _status(shop, order) == "paid"  # nobody told us yet
    job = await job_of(shop, order)
    assert job.next_attempt_at > job.updated_at  # asked again after the polling interval...
    assert await run_due(shop, at=job.next_attempt_at - dt.timedelta(milliseconds=1)) == 0  # ...not before
    assert await run_due(shop, later=5) == 1
    assert await _status(shop, order) == "delivered"
    assert sim.purchases_for(key) == 1


async def test_failed_recharge_moves_on_to_the_next_supplier(shop, sims, dialect, served_shop):
    first, second = sims(dialect, seed=1), sims(dialect, seed=2)
    first.fail_accounts(ACCOUNT)
    sku = await _recharge_sku(shop, first, ("second", second))
    order = await recharge_order_paid(shop, sku)
    await run_due(shop)
    await _until(lambda: _attempt_state(shop, order, 0, "failed"))  # the callback said failed
    await run_due(shop)  # due at once: the next supplier
    await _until(lambda: _is(shop, order, "delivered"))
    rows = await attempts(shop, order)
    assert [(r["supplier_code"], r["state"]) for r in rows] == [("first", "failed"), ("second", "succeeded")]
    first_row = await supplier_row(shop, 1)
    assert first_row.balance_cents == 1_000_000  # the failed recharge's prepaid debit came back


async def _attempt_state(shop: Any, order: dict[str, Any], index: int, state: str) -> bool:
    rows = await attempts(shop, order)
    return len(rows) > index and rows[index]["state"] == state


async def test_every_supplier_failing_moves_the_order_to_refund_pending(shop, sims, dialect, served_shop):
    first, second = sims(dialect, seed=1), sims(dialect, seed=2)
    first.fail_accounts(ACCOUNT)
    second.fail_accounts(ACCOUNT)
    sku = await _recharge_sku(shop, first, ("second", second))
    order = await recharge_order_paid(shop, sku)
    await run_due(shop)
    await _until(lambda: _attempt_state(shop, order, 0, "failed"))
    await run_due(shop)
    await _until(lambda: _attempt_state(shop, order, 1, "failed"))
    await run_due(shop)
    view = await shop.get_order(order)
    assert view["status"] == "refund_pending" and view["fulfilment"]["stage"] == "failed"
    assert [(await supplier_row(shop, i)).balance_cents for i in (1, 2)] == [1_000_000, 1_000_000]


async def test_duplicate_callbacks_change_nothing(shop, sims, dialect, served_shop):
    sim = sims(dialect, seed=1)
    sim.set_callback_duplicates(3)
    sku = await _recharge_sku(shop, sim)
    order = await recharge_order_paid(shop, sku)
    await run_due(shop)
    await _until(lambda: _is(shop, order, "delivered"))
    await sim.await_for(lambda: len(sim.callbacks_for("recharge")) >= 3)
    assert all(c.accepted for c in sim.callbacks_for("recharge"))
    # Replaying a callback later (a supplier's retry) is answered and changes nothing either.
    old = sim.callbacks_for("recharge")[0]
    again = await shop.client.post("/api/suppliers/first/recharge-callback", content=old.body, headers=old.headers)
    assert again.status_code == 200
    async with shop.ctx.db.read_session() as session:
        delivered = await session.scalar(select(func.count()).select_from(OrderEvent)
                                         .where(OrderEvent.to_status == "delivered"))
    assert delivered == 1
    [attempt] = await attempts(shop, order)
    assert attempt["state"] == "succeeded"
    assert (await supplier_row(shop, 1)).balance_cents == 1_000_000 - 4900  # charged once, never released


async def test_forged_and_misdirected_callbacks_are_refused(shop, sims, dialect):
    from quanyi.testpeers.suppliers import SimOrder

    sim, other = sims(dialect, seed=1), sims(dialect, seed=2)
    sim.set_callback_delay(None)
    sku = await _recharge_sku(shop, sim, ("other", other))
    order = await recharge_order_paid(shop, sku)
    await run_due(shop)
    key = f"{order['order_no']}-01"
    done = SimOrder(key=key, order_no="X1", kind="direct_recharge", product_code=RECHARGE_PRODUCT, quantity=1,
                    unit_cost_cents=4900, fingerprint=(), account=ACCOUNT, state="succeeded")
    # Signed with a secret that is not this supplier's.
    forged = other.recharge_callback(done)
    answer = await shop.client.post("/api/suppliers/first/recharge-callback", content=forged.content,
                                    headers=forged.headers)
    assert answer.status_code == 400 and answer.json()["code"] == "supplier_callback_rejected"
    # Authentic, but from another supplier about an attempt it never had: ignored.
    answer = await shop.client.post("/api/suppliers/other/recharge-callback", content=forged.content,
                                    headers=forged.headers)
    assert answer.status_code == 200
    tampered = sim.recharge_callback(done)
    answer = await shop.client.post("/api/suppliers/first/recharge-callback",
                                    content=tampered.content.replace(key.encode(), key[:-1].encode() + b"9"),
                                    headers=tampered.headers)
    assert key.encode() in tampered.content
    assert answer.status_code == 400
    unknown = await shop.client.post("/api/suppliers/nobody/recharge-callback", content=b"{}")
    assert unknown.status_code == 404
    assert await _status(shop, order) == "paid"
    assert [a["state"] for a in await attempts(shop, order)] in (["processing"], ["submitted"])


async def test_a_recharge_submitted_after_we_gave_up_waiting_is_not_sent_to_a_second_supplier(shop, sims, dialect):
    """Crediting the buyer's account twice is money lost: a supplier that accepts the recharge only after our
    call timed out (its first "no such order" was premature) keeps it, and nobody else is asked."""
    slow, second = sims(dialect, seed=1), sims(dialect, seed=2)
    slow.hold_placing()  # it takes our recharge only after our call timed out (0.5 s) and we asked about it
    sku = await _recharge_sku(shop, slow, ("second", second), timeout_ms=TIMEOUT_MS)
    order = await recharge_order_paid(shop, sku)
    await run_due(shop, grace=GRACE)
    key = f"{order['order_no']}-01"
    [attempt] = await attempts(shop, order)
    assert attempt["state"] == "unknown" and "no such order yet" in attempt["error"]
    slow.release_placing()
    await slow.await_for(lambda: slow.purchases_for(key) == 1)

    await age_attempts(shop, GRACE)  # asked again once its "no such order" could be believed: it has one now
    assert await run_due(shop, later=GRACE, grace=GRACE) == 1
    await _until(lambda: _status_is(shop, order, "delivered"))
    assert not second.requests and slow.order(key).account == ACCOUNT
    assert [(a["supplier_code"], a["state"]) for a in await attempts(shop, order)] == [("first", "succeeded")]


async def _status_is(shop: Any, order: dict[str, Any], status: str) -> bool:
    await run_due(shop)
    return await _status(shop, order) == status
