"""Request/response shapes of staff login."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from quanyi.schema_types import reject_control_chars

__all__ = ["LoginRequest", "LoginResponse", "StaffMe"]


class LoginRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    username: Annotated[str, StringConstraints(min_length=1, max_length=64), AfterValidator(reject_control_chars)]
    password: Annotated[str, StringConstraints(min_length=1, max_length=1024)]
    otp: Annotated[str, StringConstraints(min_length=1, max_length=32)] | None = Field(
        default=None, description="The authenticator's current code (or a recovery code) when the account has a "
                                  "second factor")


class LoginResponse(BaseModel):
    token: str
    token_type: str = "bearer"  # noqa: S105 - the OAuth token type, not a secret
    expires_at: dt.datetime
    username: str
    permissions: list[str]
    roles: list[str] = []


class StaffMe(BaseModel):
    username: str
    permissions: list[str] = Field(description="Effective permissions: granted directly and through roles")
    roles: list[str] = []
