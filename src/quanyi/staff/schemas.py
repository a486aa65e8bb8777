"""Request/response shapes of staff login."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from quanyi.schema_types import reject_control_chars

__all__ = ["LoginRequest", "LoginResponse", "StaffMe", "StaffCreate", "StaffRolesWrite", "StaffRead"]


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
    merchant_id: int | None = Field(default=None, description="Your merchant (商户), or null: platform staff")
    permissions: list[str] = Field(description="Effective permissions: granted directly and through roles")
    roles: list[str] = []


class StaffCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    username: Annotated[str, StringConstraints(strip_whitespace=True, to_lower=True, min_length=2, max_length=64,
                                               pattern=r"^[a-z0-9][a-z0-9._-]*$")]
    password: Annotated[str, StringConstraints(min_length=10, max_length=1024)]
    roles: Annotated[list[Annotated[str, StringConstraints(max_length=64)]], Field(max_length=20)] = []
    merchant_code: Annotated[str, StringConstraints(strip_whitespace=True, to_lower=True, min_length=1,
                                                    max_length=32)] | None = Field(
        default=None, description="Platform staff: make a staff member of this merchant (default: platform staff). "
                                  "A merchant's owner always adds staff of their own merchant.")


class StaffRolesWrite(BaseModel):
    model_config = ConfigDict(extra="forbid")
    roles: Annotated[list[Annotated[str, StringConstraints(max_length=64)]], Field(max_length=20)]


class StaffRead(BaseModel):
    username: str
    merchant_id: int | None
    roles: list[str]
    permissions: list[str] = Field(description="Effective permissions: granted directly and through roles")
    active: bool
    second_factor: bool
    created_at: dt.datetime
