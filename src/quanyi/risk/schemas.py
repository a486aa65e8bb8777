"""Request and response shapes of the risk admin API."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from quanyi.schema_types import LongText, Name

__all__ = ["RuleCreate", "RuleUpdate", "RuleRead", "PolicyRead", "PolicyUpdate", "DecisionRead",
           "HeldOrderRead", "ReviewDecision", "ReviewActionRead", "ReviewResult"]

ActionName = Literal["allow", "challenge", "review", "deny"]
StageName = Literal["order", "payment", "delivery"]
ReasonCode = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[a-z0-9_.-]+$")]


class RuleCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Name
    kind: Annotated[str, Field(min_length=1, max_length=32, description="velocity, distinct_contacts, card_testing, "
                               "failed_payments, amount_limit, time_window, new_account, block_list, allow_list")]
    params: dict[str, Any]
    action: ActionName = Field(description="allow adds only the score; the strictest action of all hits wins")
    score: Annotated[int, Field(ge=0, le=1000)] = 0
    reason_code: ReasonCode = Field(description="Shown to staff in the decision log; buyers see a neutral message")
    stages: Annotated[list[StageName], Field(min_length=1)] = ["order"]
    enabled: bool = True


class RuleUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Name | None = None
    params: dict[str, Any] | None = None
    action: ActionName | None = None
    score: Annotated[int, Field(ge=0, le=1000)] | None = None
    reason_code: ReasonCode | None = None
    stages: Annotated[list[StageName], Field(min_length=1)] | None = None
    enabled: bool | None = None


class RuleRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    name: str
    kind: str
    params: dict[str, Any]
    action: str
    score: int
    reason_code: str
    stages: list[str]
    enabled: bool
    created_at: dt.datetime
    updated_at: dt.datetime


class PolicyUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    challenge_at: Annotated[int, Field(ge=1, le=1_000_000)] | None = None
    review_at: Annotated[int, Field(ge=1, le=1_000_000)] | None = None
    deny_at: Annotated[int, Field(ge=1, le=1_000_000)] | None = None


class PolicyRead(PolicyUpdate):
    model_config = ConfigDict(from_attributes=True)


class DecisionRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    stage: str
    order_id: int | None
    decision: str
    score: int
    rules_hit: list[dict[str, Any]]
    signals: dict[str, Any]
    outcome: str
    created_at: dt.datetime


class HeldOrderRead(BaseModel):
    order_no: str
    status: str
    product_name: str
    sku_name: str
    quantity: int
    total_cents: int
    currency: str
    contact: str
    paid_at: dt.datetime | None
    status_reason: str | None
    signals: dict[str, Any] | None
    decisions: list[DecisionRead]


class ReviewDecision(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: LongText


class ReviewResult(BaseModel):
    order_no: str
    status: str
    effect: str | None = None
    refund_no: str | None = None  # rejected: the refund of the whole payment, already sent to the gateway


class ReviewActionRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    order_id: int
    action: str
    actor: str
    reason: str
    created_at: dt.datetime
