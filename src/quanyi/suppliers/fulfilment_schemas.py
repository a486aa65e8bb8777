"""Admin view of supplier fulfilment: a paid order's job and every attempt at a supplier."""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel

__all__ = ["AttemptRead", "OrderFulfilmentRead"]


class AttemptRead(BaseModel):
    id: int
    supplier_code: str
    product_code: str
    kind: str
    idempotency_key: str
    state: str
    quantity: int
    max_unit_cost_cents: int
    unit_cost_cents: int | None
    charged_cents: int
    supplier_order_no: str | None
    codes_received: int
    codes_duplicate: int
    batch_id: int | None
    error: str | None
    checks: int
    created_at: dt.datetime
    updated_at: dt.datetime
    finished_at: dt.datetime | None


class OrderFulfilmentRead(BaseModel):
    order_no: str
    order_status: str
    job_status: str | None
    job_outcome: str | None
    job_next_attempt_at: dt.datetime | None
    job_last_error: str | None
    attempts: list[AttemptRead]
