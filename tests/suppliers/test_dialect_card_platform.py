"""The card_platform dialect: `&key=` MD5 signing, numeric codes mapped to outcome-aware errors, card number +
password turned into one code, stock counted with -1 for "not counted", and signed stock pushes."""

from __future__ import annotations

import datetime as dt
import time
from urllib.parse import urlencode

import pytest
from fastapi import FastAPI
from fastapi.responses import JSONResponse

from quanyi.suppliers.adapter import (
    CallbackRejected,
    CardPurchaseRequest,
    ProductKind,
    QueryState,
    StockEvent,
    SupplierEndpoint,
    SupplierOutcomeUnknown,
    SupplierRejected,
)
from quanyi.suppliers.dialects.card_platform import CardPlatformAdapter, card_code, md5_key_sign
from quanyi.testpeers.runner import serve_in_thread
from quanyi.testpeers.suppliers import CARD_PRODUCT, CARD_PRODUCT_UNCOUNTED
from suppliers.support import adapter_for_sim

BEIJING = dt.timezone(dt.timedelta(hours=8))


def test_sign_matches_a_fixed_vector():
    # md5("customer_id=CP10001&goods_id=GIFT-100&max_price=95.00&out_trade_no=ord-1001-a1&quantity=2"
    #     "&timestamp=1767225600&key=k3y"), upper case; empty values and `sign` are left out.
    params = {"customer_id": "CP10001", "goods_id": "GIFT-100", "max_price": "95.00", "out_trade_no": "ord-1001-a1",
              "quantity": "2", "timestamp": "1767225600", "remark": "", "sign": "x"}
    assert md5_key_sign("k3y", params) == "156678730FB0CF3DD7C4C1FC73385673"


def test_a_card_is_stored_as_number_space_password():
    assert card_code("8800123412341234", "ABCD-EFGH") == "8800123412341234 ABCD-EFGH"
    assert card_code("", "ABCD-EFGH") == "ABCD-EFGH"


async def test_purchase_hands_over_the_platforms_cards_as_codes(supplier_sim, http):
    sim = supplier_sim("card_platform")
    result = await adapter_for_sim(sim, http).buy_card_keys(
        CardPurchaseRequest("ord-c1", CARD_PRODUCT, 2, max_unit_cost_cents=9500))
    placed = sim.order("ord-c1")
    assert [c.code for c in result.codes] == [f"{c.number} {c.password}" for c in placed.codes]
    assert result.codes[0].expires_at == dt.datetime(2030, 12, 31, 23, 59, 59, tzinfo=BEIJING)
    answer = await adapter_for_sim(sim, http).query_order("ord-c1", kind=ProductKind.CARD_KEY)
    assert answer.state == QueryState.SUCCEEDED and list(answer.codes) == list(result.codes)


async def test_uncounted_stock_is_none_and_counted_stock_is_exact(supplier_sim, http):
    sim = supplier_sim("card_platform")
    quotes = {q.product_code: q for q in await adapter_for_sim(sim, http).fetch_quotes(
        [CARD_PRODUCT, CARD_PRODUCT_UNCOUNTED])}
    assert quotes[CARD_PRODUCT].stock == 50 and quotes[CARD_PRODUCT_UNCOUNTED].stock is None


async def test_wrong_secret_is_sign_error_and_balance_is_refused(supplier_sim, http):
    sim = supplier_sim("card_platform", balance_cents=9000)
    endpoint = sim.endpoint()
    forged = CardPlatformAdapter(SupplierEndpoint("cp", endpoint.base_url, {**endpoint.credentials, "secret": "x"}),
                                 http)
    with pytest.raises(SupplierRejected) as raised:
        await forged.buy_card_keys(CardPurchaseRequest("ord-c2", CARD_PRODUCT, 1, 9500))
    assert raised.value.context["code"] == 1001
    with pytest.raises(SupplierRejected) as raised:
        await adapter_for_sim(sim, http).buy_card_keys(CardPurchaseRequest("ord-c3", CARD_PRODUCT, 1, 9500))
    assert raised.value.context["code"] == 3001
    assert sim.orders == {} and sim.balance_cents == 9000


async def test_stock_push_is_one_signed_form_per_goods_answered_ok(supplier_sim, http, callback_sink):
    sim = supplier_sim("card_platform")
    adapter = adapter_for_sim(sim, http)
    callback_sink.answer(adapter.callback_ack().body)
    sim.set_stock(CARD_PRODUCT, 0)
    sim.set_cost(CARD_PRODUCT_UNCOUNTED, 2300)
    records = sim.push_stock([CARD_PRODUCT, CARD_PRODUCT_UNCOUNTED], url=callback_sink.url + "/push")
    assert [r.accepted for r in records] == [True, True]
    events = [adapter.parse_callback(headers=c.headers, body=c.body) for c in callback_sink.received]
    assert events == [[StockEvent(CARD_PRODUCT, stock=0, cost_cents=9500, available=True)],
                      [StockEvent(CARD_PRODUCT_UNCOUNTED, stock=None, cost_cents=2300, available=True)]]
    tampered = callback_sink.received[0].body.replace(b"stock=0", b"stock=9")
    with pytest.raises(CallbackRejected):
        adapter.parse_callback(headers={}, body=tampered)
    later = CardPlatformAdapter(sim.endpoint(), http, clock=lambda: time.time() + 3600)
    with pytest.raises(CallbackRejected):
        later.parse_callback(headers={}, body=callback_sink.received[0].body)
    callback_sink.answer(b"success")  # not this platform's ack: it counts the push as not delivered
    assert [r.accepted for r in sim.push_stock([CARD_PRODUCT], url=callback_sink.url + "/push")] == [False]


def test_push_from_another_customer_is_rejected(http):
    adapter = CardPlatformAdapter(SupplierEndpoint("cp", "http://127.0.0.1:9", {"customer_id": "C1", "secret": "k"}),
                                  http)
    fields = {"customer_id": "C2", "goods_id": "G", "stock": "1", "price": "1.00", "timestamp": str(int(time.time()))}
    with pytest.raises(CallbackRejected):
        adapter.parse_callback(headers={}, body=urlencode({**fields, "sign": md5_key_sign("k", fields)}).encode())


@pytest.fixture
def slow_platform():
    """Answers a purchase as still processing (cards later), and with an undocumented code."""
    app = FastAPI()
    answers = iter([
        {"code": 0, "msg": "ok", "data": {"order_no": "CP1", "price": "95.00", "status": "processing", "cards": []}},
        {"code": 4242, "msg": "???", "data": None},
    ])

    @app.post("/api/order/buy")
    async def buy() -> JSONResponse:
        return JSONResponse(next(answers))

    with serve_in_thread(app) as url:
        yield url


async def test_taken_without_cards_or_undocumented_code_is_an_unknown_outcome(slow_platform, http):
    adapter = CardPlatformAdapter(SupplierEndpoint("cp", slow_platform, {"customer_id": "C1", "secret": "k"}), http)
    for key in ("ord-s1", "ord-s2"):
        with pytest.raises(SupplierOutcomeUnknown):
            await adapter.buy_card_keys(CardPurchaseRequest(key, CARD_PRODUCT, 1, 9500))
