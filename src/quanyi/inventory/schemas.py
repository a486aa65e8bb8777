"""Request/response shapes of the card-key stock API."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from quanyi.schema_types import reject_control_chars

__all__ = ["ImportReport", "LineProblem", "BatchRead", "BatchVoid", "StockSummary", "RevealedKey",
           "StaffRevealRequest", "StaffRevealedKey", "MaskedKey", "LeakTraceRequest", "LeakTraceItem",
           "LeakTraceReport", "TracedBatch", "TracedOrder", "TracedReveal"]

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


# ---------------------------------------------------------------- staff reveal, masked listing, leak tracing

class StaffRevealRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    # Why a human needs the plaintext (ticket number, buyer complaint ...); kept in the reveal audit log.
    reason: Annotated[
        str,
        StringConstraints(strip_whitespace=True, min_length=1, max_length=500),
        AfterValidator(reject_control_chars),
    ]


class StaffRevealedKey(BaseModel):
    card_key_id: int
    sku_id: int
    status: str
    order_id: int | None
    card_no: str | None
    code: str
    expires_at: dt.datetime | None
    reveal_id: int


class MaskedKey(BaseModel):
    id: int
    status: str
    card_no: str | None  # masked
    code: str  # masked
    order_id: int | None
    expires_at: dt.datetime | None
    leaked_at: dt.datetime | None


class LeakTraceRequest(BaseModel):
    """Leaked codes as a JSON list, or pasted text (one per line, the import file format), or both."""

    model_config = ConfigDict(extra="forbid")
    codes: Annotated[list[Annotated[str, StringConstraints(max_length=600)]], Field(max_length=10_000)] = []
    text: Annotated[str, StringConstraints(max_length=2_000_000)] = ""
    mark_leaked: bool = True
    void_batches: bool = False


class TracedBatch(BaseModel):
    id: int
    source_name: str
    supplier: str | None  # set for keys bought from a supplier (source "supplier:<code>...")
    imported_by: str
    created_at: dt.datetime
    voided_at: dt.datetime | None


class TracedOrder(BaseModel):
    id: int
    order_no: str
    status: str
    contact_kind: str
    contact: str
    created_at: dt.datetime
    paid_at: dt.datetime | None
    delivered_at: dt.datetime | None


class TracedReveal(BaseModel):
    channel: str
    actor: str | None
    reason: str | None
    order_id: int | None
    revealed_at: dt.datetime
    ip: str
    user_agent: str


class LeakTraceItem(BaseModel):
    line: int
    code: str  # masked
    found: bool
    card_key_id: int | None = None
    sku_id: int | None = None
    sku_code: str | None = None
    status: str | None = None  # before this trace
    already_leaked: bool = False
    withdrawn: bool = False  # an unsold key taken out of stock by this trace
    sale_stopped: bool = False  # a 循环卡密 shared code whose sale this trace stopped
    batch: TracedBatch | None = None
    order: TracedOrder | None = None
    reveals: list[TracedReveal] = []


class LeakTraceReport(BaseModel):
    report_id: int | None
    created_by: str
    submitted: int
    found: int
    withdrawn: int
    invalid_lines: list[LineProblem]
    voided_batches: list[BatchRead]
    stopped_shared_codes: list[int] = []  # ids of the 循环卡密 shared codes this trace stopped selling
    items: list[LeakTraceItem]


class ImportJobRead(BaseModel):
    """A streamed import and its progress (导入进度). `percent` follows the bytes of the file imported so far
    and is 100 only once the job is done; the line lists (first 1000 of each kind) come with the finished job."""

    id: int
    sku_id: int
    status: str  # queued | running | done | failed
    percent: int
    source_name: str
    imported_by: str
    batch_id: int | None
    bytes_total: int
    bytes_done: int
    lines_read: int
    added: int
    duplicates: int
    invalid: int
    error_code: str | None
    error: str | None
    created_at: dt.datetime
    started_at: dt.datetime | None
    finished_at: dt.datetime | None
    duplicate_lines: list[LineProblem] = []
    invalid_lines: list[LineProblem] = []
    truncated: bool = False
