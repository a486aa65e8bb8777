"""Helpers for refund and reconciliation tests: pay through the sandbox cashier (so the sandbox holds a
real trade to refund), lose the sandbox's notifications, build refund_pending orders, ask for refunds."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlparse

import httpx
from sqlalchemy import select

from helpers import Shop, with_csrf
from quanyi.inventory import service as inventory_service
from quanyi.inventory.models import ImportBatch
from quanyi.payments.sandbox.gateway import SandboxGateway


class Unreachable(httpx.AsyncBaseTransport):
    """Every request fails as if the other side were down."""

    def __init__(self) -> None:
        self.calls = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.calls += 1
        raise httpx.ConnectError("peer unreachable", request=request)


class SecondSandbox(SandboxGateway):
    """The same sandbox under another name: a buyer who opened two cashiers pays two payments."""

    name = "sandbox2"


def lose_notifications(shop: Shop) -> None:
    """The sandbox's notifications go out on ctx.http; the shop's own gateway client stays connected."""
    shop.ctx.http = httpx.AsyncClient(transport=Unreachable())


async def open_cashier(shop: Shop, order: dict[str, Any], gateway: str = "sandbox") -> tuple[dict[str, Any], str]:
    """Start a payment at `gateway` and open its cashier page; returns the payment and the cashier ticket."""
    response = await shop.client.post(f"/api/orders/{order['order_no']}/payments", headers=shop.auth(order),
                                      json={"gateway": gateway})
    assert response.status_code == 201, response.text
    payment = response.json()
    url = urlparse(payment["cashier_url"])
    page = await shop.client.get(f"{url.path}?{url.query}")
    token = re.search(r'name="t" value="([^"]+)"', page.text)
    assert token is not None, page.text
    return payment, token.group(1)


async def press_pay(shop: Shop, ticket: str) -> None:
    paid = await shop.client.post("/sandbox/cashier/pay", data=await with_csrf(shop.client, {"t": ticket}))
    assert paid.status_code == 303, paid.text


async def cashier_pay(shop: Shop, order: dict[str, Any], gateway: str = "sandbox") -> dict[str, Any]:
    """Start a payment at `gateway` and pay it on the sandbox cashier; returns the payment."""
    payment, ticket = await open_cashier(shop, order, gateway)
    await press_pay(shop, ticket)
    return payment


async def void_stock(shop: Shop, sku_id: int) -> None:
    """Withdraw every unsold key of the SKU (reserved ones too): a paid order then cannot be delivered."""
    async with shop.ctx.db.read_session() as session:
        ids = (await session.scalars(select(ImportBatch.id).where(ImportBatch.sku_id == sku_id))).all()
    for batch_id in ids:
        async with shop.ctx.db.transaction() as session:
            await inventory_service.void_batch(session=session, batch_id=batch_id, reason="test: stock gone")


async def refund_pending_order(shop: Shop, sku: Any) -> dict[str, Any]:
    order = await shop.create_order(sku.id)
    await void_stock(shop, sku.id)
    await cashier_pay(shop, order)
    assert (await shop.get_order(order))["status"] == "refund_pending"
    return order


async def delivered_order(shop: Shop, sku: Any, quantity: int = 1) -> dict[str, Any]:
    order = await shop.create_order(sku.id, quantity=quantity)
    await cashier_pay(shop, order)
    assert (await shop.get_order(order))["status"] == "delivered"
    return order


async def ask_refund(shop: Shop, order: dict[str, Any], *, key: str | None = None, **body: Any) -> httpx.Response:
    headers = {**shop.admin, **({"Idempotency-Key": key} if key else {})}
    return await shop.client.post(f"/api/admin/orders/{order['order_no']}/refunds", headers=headers,
                                  json={"reason": "buyer asked", **body})
