"""Request/response shapes of the payments admin API."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["GatewayConfigUpdate", "GatewayConfigRead"]


class GatewayConfigUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    enabled: bool = True
    config: dict[str, Any] = Field(
        default_factory=dict, max_length=64,
        description="The gateway's account settings. Fields left out, or sent as '********', keep their stored "
                    "value, so secrets need not be re-entered to change something else.")


class GatewayConfigRead(BaseModel):
    name: str
    title: str
    configured: bool
    enabled: bool
    active: bool = Field(description="Taking payments in this server process right now")
    config: dict[str, Any] | None = Field(description="Stored settings with every secret masked")
    problem: str | None = Field(description="Why a stored configuration cannot be used, if it cannot")
    updated_at: dt.datetime | None
    updated_by: str | None
