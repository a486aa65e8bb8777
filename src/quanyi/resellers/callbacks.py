"""Callbacks to resellers (异步通知): what the outbox worker sends when a reseller's order moves on.

The notifications feature enqueues one outbox message per event of an account customer's order (delivered,
could not be delivered, refunded); at send time this module turns it into a signed request (§2.2 of
docs/supplier-protocol.md) to the order's callback_url, else the reseller's, with the current secret. The body
describes the order's state at send time, so a retry that comes late still tells the truth. None: nothing to
send (not a reseller's order, or no callback URL).
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from quanyi.inventory.crypto import CardKeyCipher
from quanyi.openapi_client import H_APP, H_NONCE, H_SIG, H_TS, callback_signature
from quanyi.orders import service as orders_service
from quanyi.resellers import service as resellers_service
from quanyi.resellers.models import Reseller, ResellerOrder
from quanyi.resellers.ordering import wire_state

__all__ = ["CallbackRequest", "build_callback"]


@dataclass(frozen=True, slots=True)
class CallbackRequest:
    url: str
    body: bytes
    headers: dict[str, str]


async def build_callback(*, session: AsyncSession, cipher: CardKeyCipher, order_id: int, event: str
                         ) -> CallbackRequest | None:
    """The signed callback for `event` (order_delivered, delivery_failed, order_refunded) of an order."""
    row = await session.scalar(select(ResellerOrder).where(ResellerOrder.order_id == order_id))
    if row is None:
        return None
    reseller = await session.get(Reseller, row.reseller_id)
    url = row.callback_url or (reseller.callback_url if reseller else None)
    if reseller is None or not url:
        return None
    order = await orders_service.get_order_by_id(session=session, order_id=order_id)
    state = wire_state(order)
    data = {"idempotency_key": row.idempotency_key, "order_no": order.order_no, "kind": row.kind,
            "product_code": row.product_code, "state": state, "quantity": order.quantity,
            "unit_cost_cents": order.unit_price_cents, "refunded_cents": order.refunded_cents,
            "message": (order.status_reason or "") if state == "failed" else ""}
    if event == "order_refunded":
        kind, event_id = "order.refunded", f"evt_{order.order_no}_refunded_{order.refunded_cents}"
    elif row.kind == "direct_recharge":
        kind, event_id = "recharge.updated", f"evt_{order.order_no}_{state}"
    else:
        kind, event_id = "order.updated", f"evt_{order.order_no}_{state}"
    body = json.dumps({"event_id": event_id, "type": kind, "data": data}, separators=(",", ":"),
                      ensure_ascii=False).encode()
    secret = await resellers_service.current_secret(session=session, cipher=cipher, reseller=reseller)
    if secret is None:
        raise ValueError(f"reseller {reseller.code} has no readable secret to sign callbacks with")
    timestamp, nonce = str(int(time.time())), secrets.token_hex(16)
    signature = callback_signature(secret, timestamp=timestamp, nonce=nonce, body=body)
    return CallbackRequest(url=url, body=body, headers={
        "Content-Type": "application/json", H_APP: reseller.app_id, H_TS: timestamp, H_NONCE: nonce, H_SIG: signature})
