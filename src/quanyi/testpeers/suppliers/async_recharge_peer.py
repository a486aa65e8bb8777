"""TEST PEER — an asynchronous direct-recharge platform (直充平台) speaking the `async_recharge` dialect;
not production code.

JSON requests signed `upper(md5(secret + k1v1k2v2... + secret))` (verified here with its own code), answers
`{"ret_code": ..}`, submit answers "accepted" and the result comes later by a form-encoded signed callback to
`notify_url`, retried until the receiver answers exactly `success`; `/api/v2/query` polls by out_trade_no.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import re
import time
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlencode

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from quanyi.testpeers.suppliers.core import Outgoing, Refusal, SimOrder, SimProduct, SupplierSimulator

__all__ = ["AsyncRechargeSimulator"]

_CST = dt.timezone(dt.timedelta(hours=8))
_WINDOW = 300
_RET = {"unavailable": "9999", "unknown_product": "2001", "wrong_kind": "2001", "product_unavailable": "2002",
        "price_changed": "2003", "invalid_account": "2004", "insufficient_balance": "2005",
        "idempotency_conflict": "2006", "out_of_stock": "2007", "invalid_request": "1003"}
_STATUS = {"processing": "1", "succeeded": "2", "failed": "3"}
_TRADE_NO = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")


def _sign(secret: str, params: dict[str, str]) -> str:
    text = secret + "".join(k + params[k] for k in sorted(params) if k != "sign" and params[k] != "") + secret
    return hashlib.md5(text.encode()).hexdigest().upper()  # noqa: S324 (the dialect's own choice)


def _yuan(cents: int) -> str:
    return f"{cents // 100}.{cents % 100:02d}"


def _cents(text: str) -> int:
    whole, _, frac = text.partition(".")
    if not whole.isdigit() or len(frac) > 2 or (frac and not frac.isdigit()):
        raise ValueError(text)
    return int(whole) * 100 + int((frac or "0").ljust(2, "0"))


def _now_cst() -> str:
    return dt.datetime.now(_CST).strftime("%Y%m%d%H%M%S")


def _answer(ret_code: str, ret_msg: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"ret_code": ret_code, "ret_msg": ret_msg, **extra})


class AsyncRechargeSimulator(SupplierSimulator):
    dialect = "async_recharge"
    code_prefix = "AR"

    def build_app(self) -> FastAPI:
        app = FastAPI(title="async recharge platform simulator (TEST PEER)", openapi_url=None)
        sim = self

        async def _params(request: Request, *, placing: bool) -> dict[str, str] | JSONResponse:
            try:
                raw = json.loads(await request.body())
            except ValueError:
                return _answer("1003", "body is not JSON")
            if not isinstance(raw, dict) or not all(isinstance(v, str) for v in raw.values()):
                return _answer("1003", "every field must be a string")
            if raw.get("merchant_id") != sim.credentials["merchant_id"]:
                return _answer("1004", "unknown merchant")
            try:
                sent = dt.datetime.strptime(raw.get("timestamp", ""), "%Y%m%d%H%M%S").replace(tzinfo=_CST)
            except ValueError:
                return _answer("1003", "timestamp must be yyyyMMddHHmmss")
            if abs(time.time() - sent.timestamp()) > _WINDOW:
                return _answer("1002", "timestamp expired")
            if not hmac.compare_digest(_sign(sim.credentials["secret"], raw), raw.get("sign", "")):
                return _answer("1001", "sign error")
            try:
                await sim.gate(placing=placing)
            except Refusal as exc:
                return _answer(_RET[exc.reason], exc.message)
            return raw

        def _product(p: SimProduct) -> dict[str, str]:
            status = "0" if not p.available else "2" if p.stock == 0 else "1"
            return {"product_id": p.code, "product_name": p.name, "face_value": _yuan(p.face_value_cents),
                    "price": _yuan(p.cost_cents), "status": status}

        def _order(order: SimOrder) -> dict[str, str]:
            return {"order_id": order.order_no, "out_trade_no": order.key, "status": _STATUS[order.state],
                    "price": _yuan(order.unit_cost_cents), "account": order.account or "",
                    "quantity": str(order.quantity)}

        @app.post("/api/v2/products")
        async def products(request: Request) -> Any:
            params = await _params(request, placing=False)
            if isinstance(params, JSONResponse):
                return params
            wanted = [c for c in params.get("product_ids", "").split(",") if c]
            with sim._lock:
                chosen = [p for p in sim.products.values() if not wanted or p.code in wanted]
                return _answer("0000", "ok", products=[_product(p) for p in chosen])

        @app.post("/api/v2/recharge")
        async def recharge(request: Request) -> Any:
            params = await _params(request, placing=True)
            if isinstance(params, JSONResponse):
                return params
            try:
                key, product, account = params["out_trade_no"], params["product_id"], params["account"]
                quantity, max_cost = int(params["quantity"]), _cents(params["max_price"])
            except (KeyError, ValueError):
                return _answer("1003", "out_trade_no, product_id, account, quantity, max_price are required")
            if not _TRADE_NO.match(key):
                return _answer("1003", "out_trade_no must be 1-64 characters [A-Za-z0-9_.:-]")
            try:
                order = await sim.place(lambda: sim.place_recharge(
                    key=key, product_code=product, account=account, quantity=quantity, max_unit_cost_cents=max_cost,
                    notify_url=params.get("notify_url") or None, fingerprint=(product, quantity, account)))
            except Refusal as exc:
                extra = {"price": _yuan(exc.unit_cost_cents)} if exc.unit_cost_cents is not None else {}
                return _answer(_RET[exc.reason], exc.message, **extra)
            # Accepted only: "0" when just taken; a duplicate submit reports where the order is now.
            return _answer("0000", "accepted", **{**_order(order), "status": "0" if order.state == "processing"
                                                   else _STATUS[order.state]})

        @app.post("/api/v2/query")
        async def query(request: Request) -> Any:
            params = await _params(request, placing=False)
            if isinstance(params, JSONResponse):
                return params
            order = sim.find(params.get("out_trade_no", ""))
            if order is None:
                return _answer("3001", "order not found")
            return _answer("0000", "ok", **_order(order))

        return app

    def _form(self, fields: dict[str, str]) -> Outgoing:
        fields = {**fields, "merchant_id": self.credentials["merchant_id"], "timestamp": _now_cst()}
        fields["sign"] = _sign(self.credentials["secret"], fields)
        return Outgoing(content=urlencode(fields).encode(),
                        headers={"Content-Type": "application/x-www-form-urlencoded"})

    def recharge_callback(self, order: SimOrder) -> Outgoing:
        return self._form({"out_trade_no": order.key, "order_id": order.order_no, "status": _STATUS[order.state],
                           "price": _yuan(order.unit_cost_cents), "account": order.account or "",
                           "quantity": str(order.quantity), "finish_time": _now_cst(), "ret_msg": order.message})

    def stock_push(self, products: Sequence[SimProduct]) -> list[Outgoing]:
        raise NotImplementedError("the async_recharge dialect has no stock push; the shop pulls /api/v2/products")

    def ack_accepted(self, status_code: int, body: bytes) -> bool:
        return status_code == 200 and body == b"success"  # exactly; anything else and the platform retries
