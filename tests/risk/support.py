"""Helpers for the risk tests: rules through the admin API, checkouts from chosen addresses and devices."""

from __future__ import annotations

import datetime as dt
from typing import Any

import httpx
from sqlalchemy import select

from quanyi.catalog import service as catalog_service
from quanyi.notifications.models import Kind, OutboxMessage
from quanyi.risk.device import DEVICE_COOKIE, sign_device_id

SHANGHAI = dt.timezone(dt.timedelta(hours=8))


async def add_rule(shop: Any, kind: str, params: dict[str, Any], *, action: str = "deny", score: int = 0,
                   stages: list[str] | None = None, name: str | None = None, enabled: bool = True) -> dict[str, Any]:
    response = await shop.client.post("/api/admin/risk/rules", headers=shop.admin, json={
        "name": name or f"{kind}-{len(params)}-{action}-{score}-{id(params)}", "kind": kind, "params": params,
        "action": action, "score": score, "reason_code": f"test_{kind}", "stages": stages or ["order"],
        "enabled": enabled})
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


async def checkout(shop: Any, sku_id: int, *, ip: str = "198.51.100.7", device: str | None = None,
                   device_cookie: str | None = None, contact: str = "buyer@example.com", quantity: int = 1,
                   **extra: Any) -> httpx.Response:
    """POST /api/orders as if from `ip` (the ASGI client address) with an optional X-Device-Id header
    and an optional device cookie value (signed by the shop: `issued_cookie`; anything else is forged)."""
    app = shop.client._transport.app  # the app under test
    headers = {"X-Device-Id": device} if device else {}
    if device_cookie:
        headers["Cookie"] = f"{DEVICE_COOKIE}={device_cookie}"
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app, client=(ip, 40000)),
                                 base_url="http://test") as client:
        return await client.post("/api/orders", headers=headers,
                                 json={"sku_id": sku_id, "quantity": quantity, "contact": contact, **extra})


async def checkout_answering(shop: Any, sku_id: int, **kwargs: Any) -> httpx.Response:
    """`checkout`, answering the one-time code if one is asked for (review and challenge decisions ask for it)."""
    response = await checkout(shop, sku_id, **kwargs)
    if response.status_code == 403 and response.json().get("code") == "verification_required":
        code = (await sent_codes(shop))[-1].payload["code"]
        response = await checkout(shop, sku_id, challenge_id=response.json()["challenge_id"],
                                  verification_code=code, **kwargs)
    return response


def issued_cookie(shop: Any, device_id: str) -> str:
    """The device cookie value the shop issues for `device_id` ("d" + 16 to 64 URL-safe characters)."""
    return sign_device_id(shop.ctx.risk.device_key, device_id)


async def product_slug(shop: Any, sku: Any) -> str:
    async with shop.ctx.db.read_session() as session:
        return (await catalog_service.get_product(session=session, product_id=sku.product_id,
                                                  active_only=False)).slug


def set_clock(shop: Any, when: dt.datetime) -> None:
    shop.ctx.risk.clock = lambda: when


async def sent_codes(shop: Any) -> list[OutboxMessage]:
    async with shop.ctx.db.read_session() as session:
        return list((await session.scalars(select(OutboxMessage).where(
            OutboxMessage.kind == Kind.VERIFICATION_CODE).order_by(OutboxMessage.id))).all())


async def decisions(shop: Any) -> list[dict[str, Any]]:
    """The decision log (everything not plainly allowed), newest first."""
    response = await shop.client.get("/api/admin/risk/decisions", headers=shop.admin)
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def reason_codes(decision: dict[str, Any]) -> list[str]:
    return [hit["reason_code"] for hit in decision["rules_hit"]]


def refused(response: Any) -> bool:
    """The checkout was refused by a deny rule (neutral message to the buyer)."""
    return response.status_code == 403 and response.json()["code"] == "order_refused"  # type: ignore[no-any-return]
