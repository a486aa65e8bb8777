"""TEST PEER — HTTP control calls of a supplier simulator (not production code, no authentication).

For the demo and for tests in other processes: change a product's cost or stock, or make the simulator push
stock/price to a URL, without the Python handle.

    POST /_control/cost        {"product_code": "GIFT-100", "cost_cents": 9700}
    POST /_control/stock       {"product_code": "GIFT-100", "stock": 0}          (null: not counted)
    POST /_control/push-stock  {"product_codes": ["GIFT-100"], "url": "http://..."}  (both optional)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from pydantic import BaseModel

if TYPE_CHECKING:
    from quanyi.testpeers.suppliers.core import SupplierSimulator

__all__ = ["add_control_routes"]


class _Cost(BaseModel):
    product_code: str
    cost_cents: int


class _Stock(BaseModel):
    product_code: str
    stock: int | None


class _Push(BaseModel):
    product_codes: list[str] | None = None
    url: str | None = None


def add_control_routes(app: FastAPI, sim: SupplierSimulator) -> None:
    def unknown(code: str) -> JSONResponse:
        return JSONResponse({"error": f"no product {code!r}"}, status_code=404)

    @app.post("/_control/cost")
    async def set_cost(body: _Cost) -> Any:
        if body.product_code not in sim.products:
            return unknown(body.product_code)
        sim.set_cost(body.product_code, body.cost_cents)
        return {"ok": True}

    @app.post("/_control/stock")
    async def set_stock(body: _Stock) -> Any:
        if body.product_code not in sim.products:
            return unknown(body.product_code)
        sim.set_stock(body.product_code, body.stock)
        return {"ok": True}

    @app.post("/_control/push-stock")
    async def push_stock(body: _Push) -> Any:
        missing = [c for c in body.product_codes or [] if c not in sim.products]
        if missing:
            return unknown(missing[0])
        if not (body.url or sim.push_url):
            return JSONResponse({"error": "no push URL configured"}, status_code=400)
        try:
            records = await sim.apush_stock(body.product_codes, url=body.url)
        except NotImplementedError as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        return {"sent": [{"status_code": r.status_code, "accepted": r.accepted} for r in records]}
