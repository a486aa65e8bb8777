"""Helpers of the coupon tests: make a coupon through the admin API."""

from __future__ import annotations

import datetime as dt
from typing import Any


def window(days_before: int = 1, days_after: int = 30) -> dict[str, str]:
    now = dt.datetime.now(dt.UTC)
    return {"starts_at": (now - dt.timedelta(days=days_before)).isoformat(),
            "ends_at": (now + dt.timedelta(days=days_after)).isoformat()}


async def make_coupon(shop: Any, **fields: Any) -> dict[str, Any]:
    body = {"name": "Coupon", "kind": "amount_off", "amount_off_cents": 300, "distribution": "code",
            "code": "SAVE3", **window(), **fields}
    response = await shop.client.post("/api/admin/coupons", json=body, headers=shop.admin)
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


async def coupon(shop: Any, coupon_id: int) -> dict[str, Any]:
    response = await shop.client.get(f"/api/admin/coupons/{coupon_id}", headers=shop.admin)
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


async def try_order(shop: Any, sku_id: int, quantity: int = 1, headers: dict[str, str] | None = None,
                    **extra: Any) -> Any:
    return await shop.client.post("/api/orders", headers=headers, json={"sku_id": sku_id, "quantity": quantity,
                                                                        "contact": "buyer@example.com", **extra})
