"""The adapter contract, proved once for every dialect against its simulator: what routing and sync rely on
whatever wire format a supplier speaks."""

from __future__ import annotations

import time
from urllib.parse import parse_qsl, urlencode

import pytest

from quanyi.suppliers.adapter import (
    CallbackRejected,
    CardPurchaseRequest,
    ProductKind,
    QueryState,
    RechargeEvent,
    RechargeRequest,
    RechargeState,
    SupplierOutcomeUnknown,
    SupplierOutOfStock,
    SupplierPriceChanged,
    SupplierRejected,
    SupplierUnavailable,
    SupplierUnsupported,
)
from quanyi.testpeers.suppliers import CARD_PRODUCT, CARD_PRODUCT_UNCOUNTED, RECHARGE_PRODUCT
from suppliers.support import HANG_SECONDS, IMPATIENT_TIMEOUT, adapter_for_sim

CARD_DIALECTS = ["quanyi", "card_platform"]
RECHARGE_DIALECTS = ["quanyi", "async_recharge"]
COUNTS_STOCK = {"quanyi", "card_platform"}  # async_recharge only says on sale / off sale / out of stock
ALL_DIALECTS = sorted(set(CARD_DIALECTS) | set(RECHARGE_DIALECTS))


def card(key: str, quantity: int = 2, max_cost: int = 9500, product: str = CARD_PRODUCT) -> CardPurchaseRequest:
    return CardPurchaseRequest(idempotency_key=key, product_code=product, quantity=quantity,
                               max_unit_cost_cents=max_cost)


def recharge(key: str, account: str, url: str | None, max_cost: int = 4900) -> RechargeRequest:
    return RechargeRequest(idempotency_key=key, product_code=RECHARGE_PRODUCT, account=account, quantity=1,
                           max_unit_cost_cents=max_cost, callback_url=url)


@pytest.mark.parametrize("dialect", ALL_DIALECTS)
async def test_catalog_and_quotes_follow_the_suppliers_cost_and_stock(dialect, supplier_sim, http):
    sim = supplier_sim(dialect)
    adapter = adapter_for_sim(sim, http)
    catalog = {item.product_code: item for item in await adapter.fetch_catalog()}
    assert set(catalog) == set(sim.products)
    for code, product in sim.products.items():
        assert catalog[code].cost_cents == product.cost_cents
        assert catalog[code].face_value_cents == product.face_value_cents
        assert catalog[code].stock == (product.stock if dialect in COUNTS_STOCK else None)
        assert catalog[code].kind == ProductKind(product.kind)
    code = next(iter(sim.products))
    sim.set_cost(code, 1234)
    sim.set_stock(code, 7)
    [quote] = await adapter.fetch_quotes([code])
    assert (quote.product_code, quote.cost_cents) == (code, 1234)
    assert quote.stock == (7 if dialect in COUNTS_STOCK else None) and quote.available
    sim.set_available(code, False)
    [quote] = await adapter.fetch_quotes([code])
    assert not quote.available


@pytest.mark.parametrize("dialect", CARD_DIALECTS)
async def test_card_purchase_returns_unique_codes_and_takes_stock(dialect, supplier_sim, http):
    sim = supplier_sim(dialect)
    result = await adapter_for_sim(sim, http).buy_card_keys(card("ord-1-a1", quantity=3))
    assert len(result.codes) == 3 and len({c.code for c in result.codes}) == 3
    assert result.unit_cost_cents == 9500
    assert sim.products[CARD_PRODUCT].stock == 47
    assert sim.charged_cents == 3 * 9500


@pytest.mark.parametrize("dialect", CARD_DIALECTS)
async def test_retry_with_the_same_key_returns_the_same_codes_and_buys_once(dialect, supplier_sim, http):
    sim = supplier_sim(dialect)
    adapter = adapter_for_sim(sim, http)
    first = await adapter.buy_card_keys(card("ord-2-a1"))
    again = await adapter.buy_card_keys(card("ord-2-a1"))
    assert [c.code for c in again.codes] == [c.code for c in first.codes]
    assert again.supplier_order_no == first.supplier_order_no
    assert (sim.requests_for("ord-2-a1"), sim.purchases_for("ord-2-a1")) == (2, 1)
    assert sim.products[CARD_PRODUCT].stock == 48 and sim.charged_cents == 2 * 9500


@pytest.mark.parametrize("dialect", CARD_DIALECTS)
async def test_refusals_map_to_errors_that_allow_failover(dialect, supplier_sim, http):
    sim = supplier_sim(dialect)
    adapter = adapter_for_sim(sim, http)
    sim.set_stock(CARD_PRODUCT, 1)
    with pytest.raises(SupplierOutOfStock):
        await adapter.buy_card_keys(card("ord-3-a1", quantity=2))
    sim.set_cost(CARD_PRODUCT_UNCOUNTED, 2500)
    with pytest.raises(SupplierPriceChanged) as raised:
        await adapter.buy_card_keys(card("ord-3-a2", max_cost=2200, product=CARD_PRODUCT_UNCOUNTED))
    assert raised.value.context["unit_cost_cents"] == 2500
    sim.set_balance(1000)  # our prepaid balance there is below one unit
    with pytest.raises(SupplierRejected):
        await adapter.buy_card_keys(card("ord-3-a4", quantity=1, max_cost=9_999_999, product=CARD_PRODUCT_UNCOUNTED))
    with pytest.raises(SupplierRejected):
        await adapter.buy_card_keys(card("ord-3-a5", product="NO-SUCH-PRODUCT"))
    assert sum(sim.purchases.values()) == 0 and sim.charged_cents == 0


@pytest.mark.parametrize("dialect", CARD_DIALECTS)
async def test_hang_before_accept_is_unknown_and_the_query_says_not_found(dialect, supplier_sim, http):
    sim = supplier_sim(dialect)
    adapter, impatient = adapter_for_sim(sim, http), adapter_for_sim(sim, http, timeout_seconds=IMPATIENT_TIMEOUT)
    sim.set_timeout_mode("hang_before_accept", hang_seconds=HANG_SECONDS, times=1)
    with pytest.raises(SupplierOutcomeUnknown):
        await impatient.buy_card_keys(card("ord-4-a1"))
    answer = await adapter.query_order("ord-4-a1", kind=ProductKind.CARD_KEY)
    assert answer.state == QueryState.NOT_FOUND
    assert sim.purchases_for("ord-4-a1") == 0


@pytest.mark.parametrize("dialect", CARD_DIALECTS)
async def test_hang_then_complete_is_unknown_and_the_query_returns_the_bought_codes(dialect, supplier_sim, http):
    sim = supplier_sim(dialect)
    adapter, impatient = adapter_for_sim(sim, http), adapter_for_sim(sim, http, timeout_seconds=IMPATIENT_TIMEOUT)
    sim.set_timeout_mode("hang_then_complete", hang_seconds=HANG_SECONDS, times=1)
    with pytest.raises(SupplierOutcomeUnknown):
        await impatient.buy_card_keys(card("ord-5-a1"))
    answer = await adapter.query_order("ord-5-a1", kind=ProductKind.CARD_KEY)
    assert answer.state == QueryState.SUCCEEDED and answer.quantity == 2
    retried = await adapter.buy_card_keys(card("ord-5-a1"))  # the knob fired once; a retry gets the same order
    assert [c.code for c in answer.codes] == [c.code for c in retried.codes]
    assert answer.supplier_order_no == retried.supplier_order_no
    assert sim.purchases_for("ord-5-a1") == 1


@pytest.mark.parametrize("dialect", ALL_DIALECTS)
async def test_a_stopped_supplier_is_unavailable(dialect, supplier_sim, http):
    sim = supplier_sim(dialect)
    adapter = adapter_for_sim(sim, http)
    sim.stop()
    with pytest.raises(SupplierUnavailable):
        await adapter.fetch_catalog()
    with pytest.raises(SupplierUnavailable):
        if dialect in CARD_DIALECTS:
            await adapter.buy_card_keys(card("ord-6-a1"))
        else:
            await adapter.submit_recharge(recharge("ord-6-a1", "13800138000", None))


@pytest.mark.parametrize("dialect", ALL_DIALECTS)
async def test_busy_answers_are_unavailable_and_take_nothing(dialect, supplier_sim, http):
    sim = supplier_sim(dialect)
    adapter = adapter_for_sim(sim, http)
    sim.set_error_rate(1.0)
    with pytest.raises(SupplierUnavailable):
        if dialect in CARD_DIALECTS:
            await adapter.buy_card_keys(card("ord-7-a1"))
        else:
            await adapter.submit_recharge(recharge("ord-7-a1", "13800138000", None))
    assert sim.orders == {} and sim.charged_cents == 0


@pytest.mark.parametrize("dialect", RECHARGE_DIALECTS)
async def test_recharge_finishes_by_callback_and_duplicates_parse_to_the_same_event(
        dialect, supplier_sim, http, callback_sink):
    sim = supplier_sim(dialect)
    adapter = adapter_for_sim(sim, http)
    callback_sink.answer(adapter.callback_ack().body, status=adapter.callback_ack().status_code)
    sim.set_callback_duplicates(3)
    status = await adapter.submit_recharge(recharge("rc-1-a1", "13800138000", callback_sink.url + "/cb/1"))
    assert status.state in (RechargeState.SUBMITTED, RechargeState.PROCESSING)
    await sim.await_for(lambda: len(callback_sink.received) >= 3)
    events = [adapter.parse_callback(headers=c.headers, body=c.body) for c in callback_sink.received]
    assert all(e == events[0] for e in events)
    [event] = events[0]
    assert isinstance(event, RechargeEvent)
    assert (event.idempotency_key, event.state) == ("rc-1-a1", RechargeState.SUCCEEDED)
    assert event.supplier_order_no == status.supplier_order_no
    assert all(c.accepted for c in sim.callbacks_for("recharge"))


@pytest.mark.parametrize("dialect", RECHARGE_DIALECTS)
async def test_recharge_without_callbacks_is_found_by_polling(dialect, supplier_sim, http, callback_sink):
    sim = supplier_sim(dialect)
    adapter = adapter_for_sim(sim, http)
    sim.set_callbacks_enabled(False)
    sim.set_callback_delay(None)
    sim.fail_accounts("13900000000")
    await adapter.submit_recharge(recharge("rc-2-ok", "13800138000", callback_sink.url + "/cb"))
    await adapter.submit_recharge(recharge("rc-2-bad", "13900000000", callback_sink.url + "/cb"))
    assert (await adapter.query_order("rc-2-ok", kind=ProductKind.DIRECT_RECHARGE)).state == QueryState.PROCESSING
    sim.resolve_recharge("rc-2-ok")
    sim.resolve_recharge("rc-2-bad")
    assert (await adapter.query_order("rc-2-ok", kind=ProductKind.DIRECT_RECHARGE)).state == QueryState.SUCCEEDED
    assert (await adapter.query_order("rc-2-bad", kind=ProductKind.DIRECT_RECHARGE)).state == QueryState.FAILED
    assert (await adapter.query_order("rc-2-none", kind=ProductKind.DIRECT_RECHARGE)).state == QueryState.NOT_FOUND
    assert callback_sink.received == [] and sim.charged_cents == 4900  # the failed one is not owed


@pytest.mark.parametrize("dialect", RECHARGE_DIALECTS)
async def test_failed_recharge_callback_says_failed(dialect, supplier_sim, http, callback_sink):
    sim = supplier_sim(dialect)
    adapter = adapter_for_sim(sim, http)
    callback_sink.answer(adapter.callback_ack().body)
    sim.fail_accounts("13900000000")
    await adapter.submit_recharge(recharge("rc-3-a1", "13900000000", callback_sink.url + "/cb"))
    await sim.await_for(lambda: len(callback_sink.received) >= 1)
    [event] = adapter.parse_callback(headers=callback_sink.received[0].headers, body=callback_sink.received[0].body)
    assert event.state == RechargeState.FAILED


@pytest.mark.parametrize("dialect", RECHARGE_DIALECTS)
async def test_tampered_or_unsigned_callbacks_are_rejected(dialect, supplier_sim, http, callback_sink):
    sim = supplier_sim(dialect)
    adapter = adapter_for_sim(sim, http)
    await adapter.submit_recharge(recharge("rc-4-a1", "13800138000", callback_sink.url + "/cb"))
    await sim.await_for(lambda: len(callback_sink.received) >= 1)
    good = callback_sink.received[0]
    assert adapter.parse_callback(headers=good.headers, body=good.body)
    tampered = good.body.replace(b"succeeded", b"failed").replace(b"rc-4-a1", b"rc-4-a2")
    assert tampered != good.body
    with pytest.raises(CallbackRejected):
        adapter.parse_callback(headers=good.headers, body=tampered)
    headers, body = _without_signature(good.headers, good.body)
    with pytest.raises(CallbackRejected):
        adapter.parse_callback(headers=headers, body=body)
    with pytest.raises(CallbackRejected):
        adapter.parse_callback(headers={}, body=b"garbage")


def _without_signature(headers: dict[str, str], body: bytes) -> tuple[dict[str, str], bytes]:
    """The same callback with its signature taken out, wherever the dialect carries it."""
    form = [(k, v) for k, v in parse_qsl(body.decode(), keep_blank_values=True) if k != "sign"]
    if "sign=" in body.decode():
        return headers, urlencode(form).encode()
    return {k: v for k, v in headers.items() if "signature" not in k.lower()}, body


@pytest.mark.parametrize("dialect", RECHARGE_DIALECTS)
async def test_a_callback_received_long_after_it_was_signed_is_rejected(dialect, supplier_sim, http, callback_sink):
    sim = supplier_sim(dialect)
    adapter = adapter_for_sim(sim, http)
    await adapter.submit_recharge(recharge("rc-6-a1", "13800138000", callback_sink.url + "/cb"))
    await sim.await_for(lambda: len(callback_sink.received) >= 1)
    good = callback_sink.received[0]
    an_hour_later = type(adapter)(sim.endpoint(), http, clock=lambda: time.time() + 3600)
    with pytest.raises(CallbackRejected):
        an_hour_later.parse_callback(headers=good.headers, body=good.body)
    assert adapter.parse_callback(headers=good.headers, body=good.body)


@pytest.mark.parametrize("dialect", [d for d in ALL_DIALECTS if d not in CARD_DIALECTS])
async def test_card_purchase_is_unsupported_where_the_dialect_has_none(dialect, supplier_sim, http):
    adapter = adapter_for_sim(supplier_sim(dialect), http)
    with pytest.raises(SupplierUnsupported):
        await adapter.buy_card_keys(card("ord-8-a1"))


@pytest.mark.parametrize("dialect", [d for d in ALL_DIALECTS if d not in RECHARGE_DIALECTS])
async def test_recharge_is_unsupported_where_the_dialect_has_none(dialect, supplier_sim, http):
    adapter = adapter_for_sim(supplier_sim(dialect), http)
    with pytest.raises(SupplierUnsupported):
        await adapter.submit_recharge(recharge("rc-5-a1", "13800138000", None))


@pytest.mark.parametrize("dialect", RECHARGE_DIALECTS)
async def test_recharge_timeouts_are_unknown_and_the_query_tells_which_kind(dialect, supplier_sim, http):
    sim = supplier_sim(dialect)
    adapter, impatient = adapter_for_sim(sim, http), adapter_for_sim(sim, http, timeout_seconds=IMPATIENT_TIMEOUT)
    sim.set_callback_delay(None)
    sim.set_timeout_mode("hang_before_accept", hang_seconds=HANG_SECONDS, times=1)
    with pytest.raises(SupplierOutcomeUnknown):
        await impatient.submit_recharge(recharge("rc-7-a1", "13800138000", None))
    assert (await adapter.query_order("rc-7-a1", kind=ProductKind.DIRECT_RECHARGE)).state == QueryState.NOT_FOUND
    sim.set_timeout_mode("hang_then_complete", hang_seconds=HANG_SECONDS, times=1)
    with pytest.raises(SupplierOutcomeUnknown):
        await impatient.submit_recharge(recharge("rc-7-a2", "13800138000", None))
    assert (await adapter.query_order("rc-7-a2", kind=ProductKind.DIRECT_RECHARGE)).state == QueryState.PROCESSING
    again = await adapter.submit_recharge(recharge("rc-7-a2", "13800138000", None))  # retry: same order
    assert again.supplier_order_no == sim.order("rc-7-a2").order_no
    assert (sim.purchases_for("rc-7-a1"), sim.purchases_for("rc-7-a2"), sim.charged_cents) == (0, 1, 4900)


@pytest.mark.parametrize("dialect", CARD_DIALECTS)
async def test_simulators_are_deterministic_per_seed(dialect, supplier_sim, http):
    async def run(seed: int) -> tuple[list[str], list[bool]]:
        sim = supplier_sim(dialect, seed=seed)
        adapter = adapter_for_sim(sim, http)
        codes = [c.code for c in (await adapter.buy_card_keys(card("seed-a1", quantity=5))).codes]
        sim.set_error_rate(0.5)
        taken = []
        for attempt in range(12):
            try:
                await adapter.buy_card_keys(card(f"seed-b{attempt}", quantity=1))
                taken.append(True)
            except SupplierUnavailable:
                taken.append(False)
        return codes, taken

    first, same, other = await run(7), await run(7), await run(8)
    assert first == same
    assert True in first[1] and False in first[1]
    assert set(first[0]).isdisjoint(other[0]) and len(set(first[0])) == 5
