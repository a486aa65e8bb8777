"""TEST PEER — a supplier speaking the quanyi protocol (docs/supplier-protocol.md); not production code.

Verifies our HMAC-SHA256 request signatures with its own implementation of the documented base string
(so a signer bug on our side fails here), enforces the timestamp window and nonce replay rule, and signs
the callbacks it sends (recharge status, stock/price pushes) the same documented way.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
import time
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from quanyi.testpeers.suppliers.core import Outgoing, Refusal, SimOrder, SimProduct, SupplierSimulator

__all__ = ["QuanyiSupplierSimulator"]

_WINDOW = 300
_KEY = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
_STATUS = {"unavailable": 503, "unknown_product": 404, "product_unavailable": 409, "wrong_kind": 422,
           "out_of_stock": 409, "price_changed": 409, "insufficient_balance": 402, "idempotency_conflict": 409,
           "invalid_account": 422, "invalid_request": 400}


def _sign(secret: str, *parts: str, body: bytes) -> str:
    base = "\n".join([*parts, hashlib.sha256(body).hexdigest()])
    return hmac.new(secret.encode(), base.encode(), hashlib.sha256).hexdigest()


def _error(status: int, code: str, message: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message, **extra}}, status_code=status)


def _refused(refusal: Refusal) -> JSONResponse:
    extra = {"unit_cost_cents": refusal.unit_cost_cents} if refusal.unit_cost_cents is not None else {}
    code = "wrong_product_kind" if refusal.reason == "wrong_kind" else refusal.reason
    return _error(_STATUS[refusal.reason], code, refusal.message, **extra)


def _order_json(order: SimOrder) -> dict[str, Any]:
    return {
        "order_no": order.order_no, "idempotency_key": order.key, "kind": order.kind,
        "product_code": order.product_code, "state": order.state, "quantity": order.quantity,
        "unit_cost_cents": order.unit_cost_cents, "account": order.account, "message": order.message,
        "codes": [{"code": c.password, "expires_at": c.expires_at.isoformat() if c.expires_at else None}
                  for c in order.codes],
    }


def _product_json(p: SimProduct, *, full: bool) -> dict[str, Any]:
    data: dict[str, Any] = {"product_code": p.code, "cost_cents": p.cost_cents, "stock": p.stock,
                            "available": p.available}
    if full:
        data.update(name=p.name, kind=p.kind, face_value_cents=p.face_value_cents, currency="CNY")
    return data


class QuanyiSupplierSimulator(SupplierSimulator):
    dialect = "quanyi"
    code_prefix = "QY"

    def build_app(self) -> FastAPI:
        app = FastAPI(title="quanyi supplier simulator (TEST PEER)", openapi_url=None)
        self._nonces: dict[str, float] = {}
        sim = self

        async def _verified(request: Request) -> tuple[bytes, JSONResponse | None]:
            body = await request.body()
            h = request.headers
            app_id, ts = h.get("x-quanyi-app-id"), h.get("x-quanyi-timestamp", "")
            nonce, signature = h.get("x-quanyi-nonce", ""), h.get("x-quanyi-signature", "")
            if app_id != sim.credentials["app_id"]:
                return body, _error(401, "unknown_app", "unknown app id")
            if not ts.isdigit() or abs(time.time() - int(ts)) > _WINDOW:
                return body, _error(401, "stale_request", "timestamp outside the 300 s window")
            if not re.fullmatch(r"[A-Za-z0-9_-]{16,64}", nonce):
                return body, _error(401, "bad_signature", "nonce must be 16-64 characters [A-Za-z0-9_-]")
            path = request.scope["raw_path"].decode("latin-1")
            if request.scope.get("query_string"):
                path += "?" + request.scope["query_string"].decode("latin-1")
            expected = _sign(sim.credentials["secret"], request.method, path, ts, nonce, body=body)
            if not hmac.compare_digest(expected, signature):
                return body, _error(401, "bad_signature", "signature does not match")
            now = time.time()
            with sim._lock:
                for old in [n for n, t in sim._nonces.items() if now - t > 2 * _WINDOW]:
                    del sim._nonces[old]
                if nonce in sim._nonces:
                    return body, _error(401, "replayed_nonce", "nonce already used")
                sim._nonces[nonce] = now
            return body, None

        async def _json_body(request: Request, *, placing: bool) -> dict[str, Any] | JSONResponse:
            body, refused = await _verified(request)
            if refused:
                return refused
            try:
                await sim.gate(placing=placing)
            except Refusal as exc:
                return _refused(exc)
            if not body:
                return {}
            try:
                data = json.loads(body)
            except ValueError:
                return _error(400, "invalid_request", "body is not JSON")
            return data if isinstance(data, dict) else _error(400, "invalid_request", "body is not an object")

        @app.get("/v1/catalog")
        async def catalog(request: Request) -> Any:
            data = await _json_body(request, placing=False)
            if isinstance(data, JSONResponse):
                return data
            with sim._lock:
                return {"products": [_product_json(p, full=True) for p in sim.products.values()]}

        @app.post("/v1/quotes")
        async def quotes(request: Request) -> Any:
            data = await _json_body(request, placing=False)
            if isinstance(data, JSONResponse):
                return data
            codes = data.get("product_codes")
            if not isinstance(codes, list):
                return _error(400, "invalid_request", "product_codes must be a list")
            with sim._lock:
                return {"quotes": [_product_json(sim.products[c], full=False) for c in codes if c in sim.products]}

        def _order_fields(data: dict[str, Any]) -> tuple[Any, ...] | JSONResponse:
            key, product, quantity, max_cost = (data.get(n) for n in
                                                ("idempotency_key", "product_code", "quantity", "max_unit_cost_cents"))
            if not isinstance(key, str) or not _KEY.match(key) or not isinstance(product, str):
                return _error(400, "invalid_request", "idempotency_key and product_code are required")
            if not isinstance(quantity, int) or not isinstance(max_cost, int) or isinstance(quantity, bool):
                return _error(400, "invalid_request", "quantity and max_unit_cost_cents must be integers")
            return key, product, quantity, max_cost

        @app.post("/v1/card-orders")
        async def card_order(request: Request) -> Any:
            data = await _json_body(request, placing=True)
            if isinstance(data, JSONResponse):
                return data
            fields = _order_fields(data)
            if isinstance(fields, JSONResponse):
                return fields
            key, product, quantity, max_cost = fields
            try:
                order = await sim.place(lambda: sim.place_card_order(
                    key=key, product_code=product, quantity=quantity, max_unit_cost_cents=max_cost,
                    fingerprint=(product, quantity)))
            except Refusal as exc:
                return _refused(exc)
            return _order_json(order)

        @app.post("/v1/recharge-orders")
        async def recharge_order(request: Request) -> Any:
            data = await _json_body(request, placing=True)
            if isinstance(data, JSONResponse):
                return data
            fields = _order_fields(data)
            if isinstance(fields, JSONResponse):
                return fields
            key, product, quantity, max_cost = fields
            account, callback_url = data.get("account"), data.get("callback_url")
            if not isinstance(account, str) or not (callback_url is None or isinstance(callback_url, str)):
                return _error(400, "invalid_request", "account is required")
            try:
                order = await sim.place(lambda: sim.place_recharge(
                    key=key, product_code=product, account=account, quantity=quantity, max_unit_cost_cents=max_cost,
                    notify_url=callback_url, fingerprint=(product, quantity, account)))
            except Refusal as exc:
                return _refused(exc)
            return JSONResponse(_order_json(order), status_code=202)

        @app.get("/v1/orders/{key}")
        async def query(key: str, request: Request) -> Any:
            data = await _json_body(request, placing=False)
            if isinstance(data, JSONResponse):
                return data
            order = sim.find(key)
            if order is None:
                return _error(404, "order_not_found", "no order with this idempotency key")
            return _order_json(order)

        return app

    def _signed(self, payload: dict[str, Any]) -> Outgoing:
        content = json.dumps(payload, separators=(",", ":")).encode()
        ts, nonce = str(self.sign_time()), secrets.token_hex(16)
        signature = _sign(self.credentials["secret"], "CALLBACK", ts, nonce, body=content)
        return Outgoing(content=content, headers={
            "Content-Type": "application/json", "X-Quanyi-App-Id": self.credentials["app_id"],
            "X-Quanyi-Timestamp": ts, "X-Quanyi-Nonce": nonce, "X-Quanyi-Signature": signature})

    def recharge_callback(self, order: SimOrder) -> Outgoing:
        return self._signed({
            "event_id": f"evt_{order.order_no}_{order.state}", "type": "recharge.updated",
            "data": {"idempotency_key": order.key, "order_no": order.order_no, "state": order.state,
                     "unit_cost_cents": order.unit_cost_cents, "message": order.message}})

    def stock_push(self, products: Sequence[SimProduct]) -> list[Outgoing]:
        return [self._signed({"event_id": f"evt_stock_{secrets.token_hex(8)}", "type": "stock.changed",
                              "data": {"products": [_product_json(p, full=False) for p in products]}})]

    def ack_accepted(self, status_code: int, body: bytes) -> bool:
        return 200 <= status_code < 300
