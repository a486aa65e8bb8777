"""Request/response shapes of the card-key stock API."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, StringConstraints

from quanyi.schema_types import reject_control_chars

__all__ = ["ImportReport", "LineProblem", "BatchRead", "BatchVoid", "StockSummary", "RevealedKey"]

MAX_REPORTED_LINES = 1000


class LineProblem(BaseModel):
    line: int
    reason: str


class ImportReport(BaseModel):
    """What an import did. Line lists are capped at 1000 entries; the counts are always complete."""

    batch_id: int | None
    sku_id: int
    lines_read: int
    added: int
    duplicates: int
    invalid: int
    duplicate_lines: list[LineProblem]
    invalid_lines: list[LineProblem]
    truncated: bool


class BatchRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    sku_id: int
    source_name: str
    imported_by: str
    added_count: int
    duplicate_count: int
    invalid_count: int
    voided_count: int
    void_reason: str | None
    created_at: dt.datetime
    voided_at: dt.datetime | None
    unit_cost_cents: int | None = None


class BatchVoid(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: Annotated[
        str,
        StringConstraints(strip_whitespace=True, min_length=1, max_length=500),
        AfterValidator(reject_control_chars),
    ]


class StockSummary(BaseModel):
    sku_id: int
    available: int
    reserved: int
    sold: int
    voided: int
    expired: int


class RevealedKey(BaseModel):
    card_no: str | None
    code: str
    expires_at: dt.datetime | None
