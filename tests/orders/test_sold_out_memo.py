"""The sold-out memo (售罄标记): after a checkout finds a SKU sold out, the process refuses the next checkouts
of it for a moment without screening or opening a transaction; stock coming back ends the memo."""

from __future__ import annotations

import pytest
from sqlalchemy import event

from helpers import with_csrf
from quanyi.catalog import service as catalog_service
from quanyi.inventory import service as inventory_service
from quanyi.inventory.sold_out import SoldOutMemo, install_stock_gate
from quanyi.orders.models import Order


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(shop) -> FakeClock:
    clock = FakeClock()
    shop.ctx.sold_out = SoldOutMemo(2.0, clock=clock)
    install_stock_gate(shop.ctx.db, shop.ctx.sold_out)
    return clock


class StatementCounter:
    """Every SQL statement the shop sends, on both engines."""

    def __init__(self, shop) -> None:
        self.count = 0
        self._engines = {shop.ctx.db.write_engine.sync_engine, shop.ctx.db.read_engine.sync_engine}
        for engine in self._engines:
            event.listen(engine, "before_cursor_execute", self._seen)

    def _seen(self, *_args: object) -> None:
        self.count += 1

    def close(self) -> None:
        for engine in self._engines:
            event.remove(engine, "before_cursor_execute", self._seen)


async def _checkout(shop, sku, quantity: int = 1):
    return await shop.client.post("/api/orders", json={"sku_id": sku.id, "quantity": quantity,
                                                       "contact": "fan@example.com"})


def test_the_memo_remembers_only_for_its_time_and_forgets_on_request():
    clock = FakeClock()
    memo = SoldOutMemo(1.5, clock=clock)
    assert not memo.is_sold_out(7)
    memo.remember(7)
    assert memo.is_sold_out(7) and not memo.is_sold_out(8)
    clock.now += 1.4
    assert memo.is_sold_out(7)
    clock.now += 0.2
    assert not memo.is_sold_out(7)
    memo.remember(7)
    memo.remember(8)
    memo.forget(7)
    assert not memo.is_sold_out(7) and memo.is_sold_out(8)
    memo.forget()
    assert not memo.is_sold_out(8)
    off = SoldOutMemo(0, clock=clock)
    off.remember(7)
    assert not off.is_sold_out(7)


async def test_after_a_sold_out_checkout_the_next_ones_are_refused_without_the_database(shop, sku, clock):
    await shop.stock(sku, 1)
    await shop.create_order(sku.id)
    first = await _checkout(shop, sku)
    assert first.status_code == 409 and first.json()["code"] == "sold_out"

    counter = StatementCounter(shop)
    try:
        again = await _checkout(shop, sku)
    finally:
        counter.close()
    assert again.status_code == 409
    assert again.json()["code"] == "sold_out" and again.json()["available"] == 0
    assert counter.count == 0  # no screening, no transaction
    assert await shop.count(Order) == 1


async def _stock_elsewhere(shop, sku, count: int) -> None:
    """Restock as another process would (`quanyi keys import`): through the services, on its own database
    handle, so this process's stock gate is not told."""
    gate = shop.ctx.db.session_info.pop("quanyi.inventory.stock_gate")
    try:
        await shop.stock(sku, count)
    finally:
        shop.ctx.db.session_info["quanyi.inventory.stock_gate"] = gate


async def test_stock_from_elsewhere_sells_once_the_memo_runs_out(shop, sku, clock):
    await _checkout(shop, sku)  # sold out: remembered
    await _stock_elsewhere(shop, sku, 1)
    assert (await _checkout(shop, sku)).status_code == 409
    clock.now += 2.1
    assert (await _checkout(shop, sku)).status_code == 201


async def test_an_import_through_this_process_sells_at_once(shop, sku, clock):
    assert (await _checkout(shop, sku)).status_code == 409
    response = await shop.client.post(f"/api/admin/skus/{sku.id}/card-keys/import",
                                      files={"file": ("keys.txt", b"MEMO-AAAA-BBBB-0001\n")}, headers=shop.admin)
    assert response.status_code in (200, 201), response.text
    assert (await _checkout(shop, sku)).status_code == 201


async def test_asking_for_more_than_is_left_is_not_remembered_as_sold_out(shop, sku, clock):
    await shop.stock(sku, 1)
    short = await _checkout(shop, sku, quantity=2)
    assert short.status_code == 409 and short.json()["available"] == 1
    assert (await _checkout(shop, sku)).status_code == 201


async def test_stock_returned_through_the_services_rearms_the_gate_at_commit(shop, sku, clock):
    """Imports, supplier codes and released reservations (expiry, cancellation) re-arm the gate when their
    transaction commits, whatever route or job made them."""
    assert (await _checkout(shop, sku)).status_code == 409
    await shop.stock(sku, 1)  # the service layer, as `quanyi keys import` in this process
    placed = await _checkout(shop, sku)
    assert placed.status_code == 201
    assert (await _checkout(shop, sku)).status_code == 409  # sold out again: remembered
    cancelled = await shop.client.post(f"/api/orders/{placed.json()['order_no']}/cancel",
                                       headers={"X-Order-Token": placed.json()["access_token"]})
    assert cancelled.status_code == 200, cancelled.text
    assert (await _checkout(shop, sku)).status_code == 201  # the released key sells at once


async def test_a_rolled_back_return_of_stock_leaves_the_gate_shut(shop, sku, clock):
    assert (await _checkout(shop, sku)).status_code == 409
    with pytest.raises(RuntimeError):
        async with shop.ctx.db.transaction() as session:
            fresh = await catalog_service.get_sku(session=session, sku_id=sku.id)
            await inventory_service.import_card_keys(session=session, cipher=shop.ctx.cipher, sku=fresh,
                                                     text="GATE-AAAA-BBBB-0001")
            raise RuntimeError("rolled back")
    assert shop.ctx.sold_out.is_sold_out(sku.id)


async def test_the_storefront_checkout_uses_the_memo_too(shop, sku, clock):
    await _checkout(shop, sku)
    await _stock_elsewhere(shop, sku, 1)  # not told; the memo still holds
    form = await with_csrf(shop.client, {"sku_id": str(sku.id), "contact": "a@example.com", "quantity": "1"})
    response = await shop.client.post("/p/product-1/checkout", headers={"Accept": "text/html,application/xhtml+xml"},
                                      data=form)
    assert response.status_code == 409 and "已售罄" in response.text
    assert await shop.count(Order) == 0


async def test_a_sold_out_checkout_above_the_request_limit_is_refused_by_the_limit_as_the_route_would(shop, sku,
                                                                                                     clock):
    """The sold-out lane sits outside the body limit: with QUANYI_MAX_REQUEST_BYTES below its own 8 KiB, a body
    between the two is the limit's 413, as without the lane, not the lane's 409."""
    assert (await _checkout(shop, sku)).status_code == 409  # remembered as sold out
    shop.ctx.settings.max_request_bytes = 1024
    body = b'{"sku_id": %d, "quantity": 1, "contact": "fan@example.com"' % sku.id + b" " * 2000 + b"}"
    answer = await shop.client.post("/api/orders", content=body, headers={"content-type": "application/json"})
    assert answer.status_code == 413 and answer.json()["code"] == "payload_too_large"


async def test_the_lanes_refusals_are_the_routes_answer_for_each_quantity(shop, sku, clock):
    """The sold-out lane builds its refusal once per quantity asked for and sends it again (section 25d of
    docs/PERFORMANCE.md): each answer is still the route's, status, headers and body, with its own quantity."""
    await shop.stock(sku, 1)
    await shop.create_order(sku.id)
    by_route = await _checkout(shop, sku)  # the route finds it sold out (the database); the lane answers after
    answers = [await _checkout(shop, sku, quantity) for quantity in (1, 1, 2, 1, 2)]
    for answer, quantity in zip(answers, (1, 1, 2, 1, 2), strict=True):
        assert answer.status_code == 409
        assert answer.json() == {**by_route.json(), "requested": quantity}
        assert answer.headers.multi_items() == [
            (name, str(len(answer.content)) if name == "content-length" else value)
            for name, value in by_route.headers.multi_items()]
    assert answers[0].content == answers[1].content == answers[3].content == by_route.content
    assert answers[2].content == answers[4].content != by_route.content
    assert await shop.count(Order) == 1
