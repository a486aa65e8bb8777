"""Request/response shapes of the member API (/api/members/...)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from quanyi.orders.schemas import ContactText, OrderRead
from quanyi.schema_types import reject_control_chars

__all__ = ["CodeRequest", "CodeSentRead", "CodeLogin", "PasswordLogin", "SignedInRead", "MemberRead",
           "PasswordChange", "ContactCodeRequest", "ContactVerify", "ContactAdded", "MemberOrderPage",
           "SessionRead", "LoggedOut", "MemberAdminRead", "MemberAdminPage", "MemberDisable"]

CodeId = Annotated[str, StringConstraints(pattern=r"^mc_[A-Za-z0-9_-]{10,37}$")]
CodeText = Annotated[str, StringConstraints(pattern=r"^\s*\d{6}\s*$")]
Password = Annotated[str, StringConstraints(min_length=1, max_length=128), AfterValidator(reject_control_chars)]
Locale = Literal["zh-CN", "en"]


class CodeRequest(BaseModel):
    """Ask for a one-time code to log in or sign up: the answer is the same whether the contact has an account."""
    model_config = ConfigDict(extra="forbid")
    contact: ContactText = Field(description="E-mail address or mobile number")
    locale: Locale | None = None


class CodeSentRead(BaseModel):
    code_id: str = Field(description="Send it back with the code")
    expires_in_seconds: int
    channel: Literal["email", "sms"]


class CodeLogin(BaseModel):
    model_config = ConfigDict(extra="forbid")
    code_id: CodeId
    code: CodeText = Field(description="The six digits sent to the contact")
    locale: Locale | None = None


class PasswordLogin(BaseModel):
    model_config = ConfigDict(extra="forbid")
    contact: Annotated[str, StringConstraints(min_length=1, max_length=254), AfterValidator(reject_control_chars)]
    password: Password


class MemberRead(BaseModel):
    id: int
    email: str | None
    phone: str | None
    has_password: bool
    locale: str
    orders: int = Field(description="How many orders the account has")


class SignedInRead(BaseModel):
    member: MemberRead
    token: str = Field(description="The session token: apps send it as X-Member-Token (browsers get the "
                                   "HttpOnly qy_member cookie and need not keep it)")
    created: bool = Field(description="A new account was made (sign-up)")
    attached_orders: int = Field(description="Guest orders of the proved contact now on the account")


class PasswordChange(BaseModel):
    model_config = ConfigDict(extra="forbid")
    password: Password
    current_password: Password | None = Field(
        default=None, description="Needed when a password is set, unless this session was opened with a code "
                                  "in the last 15 minutes")


class ContactCodeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    contact: ContactText
    locale: Locale | None = None


class ContactVerify(BaseModel):
    model_config = ConfigDict(extra="forbid")
    code_id: CodeId
    code: CodeText


class ContactAdded(BaseModel):
    member: MemberRead
    attached_orders: int


class MemberOrderPage(BaseModel):
    orders: list[OrderRead]
    next_before_id: int | None = Field(description="Pass as before_id for the next page; null on the last page")


class SessionRead(BaseModel):
    id: int
    current: bool
    method: Literal["code", "password"]
    created_at: dt.datetime
    last_seen_at: dt.datetime | None
    expires_at: dt.datetime
    ip: str
    user_agent: str


class LoggedOut(BaseModel):
    sessions_ended: int


class MemberAdminRead(BaseModel):
    id: int
    email: str | None
    phone: str | None
    status: Literal["active", "disabled"]
    has_password: bool
    created_at: dt.datetime
    last_login_at: dt.datetime | None
    disabled_reason: str | None
    orders: int


class MemberAdminPage(BaseModel):
    members: list[MemberAdminRead]
    total: int


class MemberDisable(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: Annotated[str, StringConstraints(min_length=1, max_length=500), AfterValidator(reject_control_chars)]
