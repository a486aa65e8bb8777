"""TEST PEER — a wholesale card-key platform (卡密平台) speaking the `card_platform` dialect; not production code.

Form-encoded requests signed `upper(md5("k1=v1&...&key=SECRET"))` (checked here with its own code), JSON
answers `{"code", "msg", "data"}` with numeric codes, synchronous card purchase handing out card number +
password pairs, order query by out_trade_no, and signed stock pushes (form) answered with `ok`.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlencode

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from quanyi.testpeers.suppliers.core import Outgoing, Refusal, SimCode, SimOrder, SimProduct, SupplierSimulator

__all__ = ["CardPlatformSimulator"]

_WINDOW = 300
_CODES = {"unavailable": 9999, "unknown_product": 2001, "wrong_kind": 2001, "product_unavailable": 2002,
          "out_of_stock": 2003, "price_changed": 2005, "idempotency_conflict": 2006, "insufficient_balance": 3001,
          "invalid_request": 1003, "invalid_account": 1003}
_TRADE_NO = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")


def _sign(secret: str, params: dict[str, str]) -> str:
    text = "&".join(f"{k}={params[k]}" for k in sorted(params) if k != "sign" and params[k] != "")
    return hashlib.md5(f"{text}&key={secret}".encode()).hexdigest().upper()  # noqa: S324 (the platform's choice)


def _yuan(cents: int) -> str:
    return f"{cents // 100}.{cents % 100:02d}"


def _cents(text: str) -> int:
    whole, _, frac = text.partition(".")
    if not whole.isdigit() or len(frac) > 2 or (frac and not frac.isdigit()):
        raise ValueError(text)
    return int(whole) * 100 + int((frac or "0").ljust(2, "0"))


def _answer(code: int, msg: str, data: Any = None) -> JSONResponse:
    return JSONResponse({"code": code, "msg": msg, "data": data})


def _goods(p: SimProduct) -> dict[str, Any]:
    return {"goods_id": p.code, "goods_name": p.name, "face_value": _yuan(p.face_value_cents),
            "price": _yuan(p.cost_cents), "stock": -1 if p.stock is None else p.stock, "status": int(p.available)}


def _card(code: SimCode) -> dict[str, str]:
    return {"card_no": code.number, "card_pwd": code.password,
            "expire_date": code.expires_at.date().isoformat() if code.expires_at else ""}


def _order(order: SimOrder) -> dict[str, Any]:
    return {"order_no": order.order_no, "out_trade_no": order.key, "goods_id": order.product_code,
            "quantity": order.quantity, "price": _yuan(order.unit_cost_cents),
            "status": "success" if order.state == "succeeded" else order.state,
            "cards": [_card(c) for c in order.codes]}


class CardPlatformSimulator(SupplierSimulator):
    dialect = "card_platform"
    code_prefix = "CP"

    def build_app(self) -> FastAPI:
        app = FastAPI(title="card platform simulator (TEST PEER)", openapi_url=None)
        sim = self

        async def _params(request: Request, *, placing: bool) -> dict[str, str] | JSONResponse:
            form = await request.form()
            params = {k: v for k, v in form.items() if isinstance(v, str)}
            if params.get("customer_id") != sim.credentials["customer_id"]:
                return _answer(1004, "customer unknown")
            ts = params.get("timestamp", "")
            if not ts.isdigit() or abs(time.time() - int(ts)) > _WINDOW:
                return _answer(1002, "timestamp expired")
            if not hmac.compare_digest(_sign(sim.credentials["secret"], params), params.get("sign", "")):
                return _answer(1001, "sign error")
            try:
                await sim.gate(placing=placing)
            except Refusal as exc:
                return _answer(_CODES[exc.reason], exc.message)
            return params

        @app.post("/api/goods/list")
        async def goods_list(request: Request) -> Any:
            params = await _params(request, placing=False)
            if isinstance(params, JSONResponse):
                return params
            with sim._lock:
                return _answer(0, "ok", [_goods(p) for p in sim.products.values()])

        @app.post("/api/goods/stock")
        async def goods_stock(request: Request) -> Any:
            params = await _params(request, placing=False)
            if isinstance(params, JSONResponse):
                return params
            wanted = [c for c in params.get("goods_ids", "").split(",") if c]
            with sim._lock:
                return _answer(0, "ok", [_goods(sim.products[c]) for c in wanted if c in sim.products])

        @app.post("/api/order/buy")
        async def buy(request: Request) -> Any:
            params = await _params(request, placing=True)
            if isinstance(params, JSONResponse):
                return params
            try:
                key, goods = params["out_trade_no"], params["goods_id"]
                quantity = int(params["quantity"])
                max_cost = _cents(params["max_price"]) if params.get("max_price") else None
            except (KeyError, ValueError):
                return _answer(1003, "out_trade_no, goods_id and quantity are required")
            if not _TRADE_NO.match(key):
                return _answer(1003, "out_trade_no must be 1-64 characters [A-Za-z0-9_.:-]")
            try:
                order = await sim.place(lambda: sim.place_card_order(
                    key=key, product_code=goods, quantity=quantity, max_unit_cost_cents=max_cost,
                    fingerprint=(goods, quantity)))
            except Refusal as exc:
                data = {"price": _yuan(exc.unit_cost_cents)} if exc.unit_cost_cents is not None else None
                return _answer(_CODES[exc.reason], exc.message, data)
            return _answer(0, "ok", _order(order))

        @app.post("/api/order/query")
        async def query(request: Request) -> Any:
            params = await _params(request, placing=False)
            if isinstance(params, JSONResponse):
                return params
            order = sim.find(params.get("out_trade_no", ""))
            if order is None:
                return _answer(2004, "order not found")
            return _answer(0, "ok", _order(order))

        return app

    def recharge_callback(self, order: SimOrder) -> Outgoing:
        raise NotImplementedError("a card platform has no direct recharge")

    def stock_push(self, products: Sequence[SimProduct]) -> list[Outgoing]:
        messages = []
        for p in products:  # one push per goods, the way these platforms do it
            fields = {"customer_id": self.credentials["customer_id"], "goods_id": p.code,
                      "price": _yuan(p.cost_cents), "stock": str(-1 if p.stock is None else p.stock),
                      "status": str(int(p.available)), "timestamp": str(self.sign_time())}
            fields["sign"] = _sign(self.credentials["secret"], fields)
            messages.append(Outgoing(content=urlencode(fields).encode(),
                                     headers={"Content-Type": "application/x-www-form-urlencoded"}))
        return messages

    def ack_accepted(self, status_code: int, body: bytes) -> bool:
        return status_code == 200 and body == b"ok"
