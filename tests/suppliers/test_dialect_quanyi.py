"""The quanyi dialect: signatures exactly as docs/supplier-protocol.md says, callbacks verified, stock pushes,
and the wire errors mapped to outcome-aware errors."""

from __future__ import annotations

import json
import time

import httpx
import pytest
from fastapi import FastAPI
from fastapi.responses import JSONResponse, PlainTextResponse

from quanyi.suppliers.adapter import (
    CallbackRejected,
    CardPurchaseRequest,
    RechargeRequest,
    StockEvent,
    SupplierEndpoint,
    SupplierOutcomeUnknown,
    SupplierRejected,
    SupplierUnavailable,
)
from quanyi.suppliers.dialects.quanyi import QuanyiAdapter, callback_signature, request_signature
from quanyi.testpeers.runner import serve_in_thread
from quanyi.testpeers.suppliers import CARD_PRODUCT
from suppliers.support import adapter_for_sim

# The worked example of docs/supplier-protocol.md (also checkable with `openssl dgst -sha256 -hmac`).
VECTOR_BODY = (b'{"idempotency_key":"ord-1001-a1","product_code":"GIFT-100","quantity":2,'
               b'"max_unit_cost_cents":9500}')
VECTOR_CALLBACK = (b'{"event_id":"evt_1","type":"stock.changed","data":{"products":[{"product_code":"GIFT-100",'
                   b'"cost_cents":9400,"stock":12,"available":true}]}}')
NONCE = "0123456789abcdef0123456789abcdef"


def test_request_signature_matches_the_documented_vector():
    assert request_signature("s3cr3t-key", method="POST", path="/v1/card-orders", timestamp="1767225600",
                             nonce=NONCE, body=VECTOR_BODY) == (
        "b36f0b52bd31dcb9e107b176819b58f0e2737493a0df73ab3847a1f8ad5c5087")


def test_callback_signature_matches_the_documented_vector():
    assert callback_signature("s3cr3t-key", timestamp="1767225600", nonce=NONCE, body=VECTOR_CALLBACK) == (
        "5ca797386cbcd240387f472784f490efed3d978836303006cebf982fa2fbb9d9")


def _adapter(http: httpx.AsyncClient, *, clock=time.time, base_url: str = "http://127.0.0.1:9") -> QuanyiAdapter:
    endpoint = SupplierEndpoint(supplier_code="qy", base_url=base_url,
                                credentials={"app_id": "QY1", "secret": "s3cr3t-key"}, timeout_seconds=0.5)
    return QuanyiAdapter(endpoint, http, clock=clock)


def _callback_headers(timestamp: str, signature: str, app_id: str = "QY1") -> dict[str, str]:
    return {"x-quanyi-app-id": app_id, "x-quanyi-timestamp": timestamp, "x-quanyi-nonce": NONCE,
            "x-quanyi-signature": signature}


async def test_documented_callback_parses_and_expired_or_foreign_ones_are_rejected(http):
    signature = "5ca797386cbcd240387f472784f490efed3d978836303006cebf982fa2fbb9d9"
    on_time = _adapter(http, clock=lambda: 1767225600 + 299)
    assert on_time.parse_callback(headers=_callback_headers("1767225600", signature), body=VECTOR_CALLBACK) == [
        StockEvent(product_code="GIFT-100", stock=12, cost_cents=9400, available=True)]
    late = _adapter(http, clock=lambda: 1767225600 + 301)
    with pytest.raises(CallbackRejected, match="window"):
        late.parse_callback(headers=_callback_headers("1767225600", signature), body=VECTOR_CALLBACK)
    with pytest.raises(CallbackRejected):
        on_time.parse_callback(headers=_callback_headers("1767225600", signature, app_id="QY2"),
                               body=VECTOR_CALLBACK)
    with pytest.raises(CallbackRejected):
        on_time.parse_callback(headers=_callback_headers("1767225600", signature.upper()[:-1] + "0"),
                               body=VECTOR_CALLBACK)


async def test_stock_push_reaches_the_receiver_signed_and_parses(supplier_sim, http, callback_sink):
    sim = supplier_sim("quanyi")
    adapter = adapter_for_sim(sim, http)
    callback_sink.answer(adapter.callback_ack().body, media_type="application/json")
    sim.set_push_url(callback_sink.url + "/suppliers/qy/callback")
    sim.set_cost(CARD_PRODUCT, 9700)
    sim.set_stock(CARD_PRODUCT, 3)
    sim.set_callback_duplicates(2)
    records = await sim.apush_stock([CARD_PRODUCT])
    assert len(records) == 2 and all(r.accepted for r in records)
    for received in callback_sink.received:
        assert adapter.parse_callback(headers=received.headers, body=received.body) == [
            StockEvent(product_code=CARD_PRODUCT, stock=3, cost_cents=9700, available=True)]


async def test_wrong_secret_is_refused_by_the_supplier_and_nothing_is_bought(supplier_sim, http):
    sim = supplier_sim("quanyi")
    endpoint = sim.endpoint()
    forged = SupplierEndpoint(supplier_code="qy", base_url=endpoint.base_url,
                              credentials={**endpoint.credentials, "secret": "not-the-secret"})
    with pytest.raises(SupplierRejected) as raised:
        await QuanyiAdapter(forged, http).buy_card_keys(
            CardPurchaseRequest(idempotency_key="k1", product_code=CARD_PRODUCT, quantity=1, max_unit_cost_cents=9500))
    assert raised.value.context["code"] == "bad_signature"
    assert sim.orders == {}


async def test_a_replayed_request_is_refused(supplier_sim, http):
    sim = supplier_sim("quanyi")
    adapter = adapter_for_sim(sim, http)
    sent: list[httpx.Request] = []

    async def keep(request: httpx.Request) -> None:
        sent.append(request)

    http.event_hooks["request"].append(keep)
    await adapter.fetch_catalog()
    replay = await http.send(sent[0])
    assert replay.status_code == 401 and replay.json()["error"]["code"] == "replayed_nonce"


async def test_reusing_a_key_for_another_purchase_is_a_refusal(supplier_sim, http):
    sim = supplier_sim("quanyi")
    adapter = adapter_for_sim(sim, http)
    await adapter.buy_card_keys(CardPurchaseRequest("k-9", CARD_PRODUCT, 1, 9500))
    with pytest.raises(SupplierRejected) as raised:
        await adapter.buy_card_keys(CardPurchaseRequest("k-9", CARD_PRODUCT, 2, 9500))
    assert raised.value.context["code"] == "idempotency_conflict"
    assert sim.purchases_for("k-9") == 1


@pytest.fixture
def broken_supplier():
    """A server answering like a crashed supplier or its proxy: 502 without a protocol body, garbled 200."""
    app = FastAPI()

    @app.post("/v1/card-orders")
    async def card_orders() -> PlainTextResponse:
        return PlainTextResponse("Bad Gateway", status_code=502)

    @app.post("/v1/recharge-orders")
    async def recharge_orders() -> PlainTextResponse:
        return PlainTextResponse("<html>ok</html>", status_code=200)

    @app.get("/v1/catalog")
    async def catalog() -> JSONResponse:
        return JSONResponse({"error": {"code": "rate_limited", "message": "slow down"}}, status_code=429)

    with serve_in_thread(app) as url:
        yield url


async def test_answers_that_may_hide_a_placed_order_are_unknown_outcomes(broken_supplier, http):
    adapter = _adapter(http, base_url=broken_supplier)
    with pytest.raises(SupplierOutcomeUnknown):
        await adapter.buy_card_keys(CardPurchaseRequest("k-1", CARD_PRODUCT, 1, 9500))
    with pytest.raises(SupplierOutcomeUnknown):
        await adapter.submit_recharge(RechargeRequest("k-2", "MOBILE-50", "13800138000", 1, 4900))
    with pytest.raises(SupplierUnavailable):
        await adapter.fetch_catalog()


def test_the_ack_is_json_ok(http):
    ack = _adapter(http).callback_ack()
    assert ack.status_code == 200 and json.loads(ack.body) == {"ok": True}
