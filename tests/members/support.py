"""Helpers of the member tests: ask for a code, read it from the outbox, log in."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from quanyi.notifications.models import Kind, OutboxMessage
from quanyi.orders.contact import normalize_contact


async def last_code(shop: Any, contact: str) -> str:
    """The code of the newest member code message to `contact` (as the buyer reads it in their mailbox)."""
    contact = normalize_contact(contact)[1]
    async with shop.ctx.db.read_session() as session:
        message = await session.scalar(
            select(OutboxMessage)
            .where(OutboxMessage.kind == Kind.MEMBER_CODE.value, OutboxMessage.recipient == contact)
            .order_by(OutboxMessage.id.desc()).limit(1))
    assert message is not None, f"no code was sent to {contact}"
    return str(message.payload["code"])


async def ask_code(client: Any, contact: str, **extra: Any) -> dict[str, Any]:
    response = await client.post("/api/members/codes", json={"contact": contact, **extra})
    assert response.status_code == 202, response.text
    return dict(response.json())


async def sign_in(shop: Any, contact: str = "member@example.com", client: Any = None) -> dict[str, Any]:
    """Sign up / log in by code through the API; the client keeps the qy_member cookie. The answer's body."""
    client = client or shop.client
    sent = await ask_code(client, contact)
    response = await client.post("/api/members/sessions",
                                 json={"code_id": sent["code_id"], "code": await last_code(shop, contact)})
    assert response.status_code == 201, response.text
    return dict(response.json())
