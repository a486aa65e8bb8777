"""The `quanyi` dialect adapter speaks the evolved protocol: a card order a supplier takes to fill later
(`202 processing`) is a pending purchase (asked about later, the supplier counted healthy), and the news
callbacks a quanyi shop sends (order.updated, order.refunded) are verified and understood."""

from __future__ import annotations

import json
import time

import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from quanyi.openapi_client import callback_signature
from quanyi.suppliers.adapter import CardPurchaseRequest, PurchaseNews, SupplierEndpoint, SupplierPurchasePending
from quanyi.suppliers.dialects.quanyi import QuanyiAdapter
from quanyi.suppliers.routing import _failure
from quanyi.testpeers.runner import serve_in_thread


def _adapter(http: httpx.AsyncClient, base_url: str = "http://127.0.0.1:9") -> QuanyiAdapter:
    return QuanyiAdapter(SupplierEndpoint(supplier_code="shopa", base_url=base_url,
                                          credentials={"app_id": "qyA", "secret": "k" * 40}, timeout_seconds=30),
                         http)


async def test_a_card_order_taken_for_later_is_a_healthy_pending_purchase():
    app = FastAPI()
    seen: dict[str, str] = {}

    @app.post("/api/open/v1/card-orders")
    async def take(request: Request) -> JSONResponse:
        seen.update(request.headers)
        return JSONResponse({"order_no": "A1", "idempotency_key": "B1-01", "kind": "card_key", "state": "processing",
                             "quantity": 1, "unit_cost_cents": 900, "codes": []}, status_code=202)

    with serve_in_thread(app) as url:
        async with httpx.AsyncClient() as http:
            with pytest.raises(SupplierPurchasePending) as pending:
                await _adapter(http, url + "/api/open").buy_card_keys(CardPurchaseRequest(
                    idempotency_key="B1-01", product_code="GIFT-A", quantity=1, max_unit_cost_cents=900))
    assert seen["x-quanyi-content-sha256"]  # the adapter declares its body hash
    step = type("Step", (), {"idempotency_key": "B1-01"})()
    outcome = _failure(step, pending.value)  # type: ignore[arg-type]
    assert outcome.state.value == "unknown" and outcome.healthy is True


async def test_order_news_callbacks_are_verified_and_understood():
    async with httpx.AsyncClient() as http:
        adapter = _adapter(http)
        now = str(int(time.time()))
        for kind, state, expected in (("order.updated", "succeeded", PurchaseNews("B1-01", "succeeded")),
                                      ("order.refunded", "succeeded", PurchaseNews("B1-01", "refunded", 900))):
            body = json.dumps({"event_id": "e", "type": kind, "data": {
                "idempotency_key": "B1-01", "state": state, "refunded_cents": 900}}).encode()
            headers = {"X-Quanyi-App-Id": "qyA", "X-Quanyi-Timestamp": now, "X-Quanyi-Nonce": "n" * 32,
                       "X-Quanyi-Signature": callback_signature("k" * 40, timestamp=now, nonce="n" * 32, body=body)}
            assert adapter.parse_callback(headers=headers, body=body) == [expected]
