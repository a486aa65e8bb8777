"""Notification shapes for the admin API. Payloads are shown: they never hold card keys."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel, ConfigDict

__all__ = ["NotificationRead"]


class NotificationRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    channel: str
    recipient: str
    kind: str
    locale: str
    status: str
    attempts: int
    next_attempt_at: dt.datetime
    locked_until: dt.datetime | None
    lease_owner: str | None
    last_error: str | None
    provider_message_id: str | None
    order_id: int | None
    dedupe_key: str
    payload: dict[str, Any]
    created_at: dt.datetime
    sent_at: dt.datetime | None
