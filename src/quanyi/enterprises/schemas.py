"""Request/response shapes of the enterprise admin API (企业客户)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictInt, StringConstraints

from quanyi.schema_types import reject_control_chars

__all__ = ["EnterpriseCreate", "EnterpriseUpdate", "EnterpriseRead", "Invoice", "ContactCreate", "ContactRead",
           "TopUp", "TopUpRequestRead", "TopUpRefuse", "BalanceRead", "TierIn", "TiersSet", "SkuPriceRead", "QuoteRead",
           "Name", "EnterpriseCode", "Cents"]


Name = Annotated[str, StringConstraints(min_length=1, max_length=200, strip_whitespace=True),
                 AfterValidator(reject_control_chars)]
EnterpriseCode = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,47}$")]
Cents = Annotated[StrictInt, Field(ge=0, le=10_000_000_000)]
_Short = Annotated[str, StringConstraints(max_length=40), AfterValidator(reject_control_chars)]
_Long = Annotated[str, StringConstraints(max_length=300), AfterValidator(reject_control_chars)]


class Invoice(BaseModel):
    """开票信息: title (抬头), taxpayer id (纳税人识别号), address and phone, bank and account, e-mail."""

    model_config = ConfigDict(extra="forbid")
    invoice_title: _Long = ""
    tax_number: Annotated[str, StringConstraints(max_length=20)] = ""
    invoice_address: _Long = ""
    invoice_phone: _Short = ""
    bank_name: _Long = ""
    bank_account: _Short = ""
    invoice_email: Annotated[str, StringConstraints(max_length=254)] = ""


class EnterpriseCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    code: EnterpriseCode
    name: Name
    credit_limit_cents: Cents = 0
    invoice: Invoice = Field(default_factory=Invoice)


class EnterpriseUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Name | None = None
    status: Literal["active", "suspended"] | None = None
    credit_limit_cents: Cents | None = None
    invoice: Invoice | None = None


class ContactCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Annotated[str, StringConstraints(min_length=1, max_length=100), AfterValidator(reject_control_chars)]
    role: Literal["purchasing", "finance", "hr", "it", "other"]
    email: Annotated[str, StringConstraints(max_length=254)] = ""
    phone: Annotated[str, StringConstraints(max_length=32)] = ""


class ContactRead(BaseModel):
    id: int
    name: str
    role: str
    email: str
    phone: str


class EnterpriseRead(BaseModel):
    code: str
    name: str
    status: str
    account_code: str
    balance_cents: int
    credit_limit_cents: int
    currency: str
    invoice: Invoice
    contacts: list[ContactRead]
    created_at: dt.datetime


class TopUp(BaseModel):
    model_config = ConfigDict(extra="forbid")
    amount_cents: Annotated[StrictInt, Field(ge=1, le=10_000_000_000)]
    note: Annotated[str, StringConstraints(min_length=1, max_length=500), AfterValidator(reject_control_chars)]


class TopUpRequestRead(BaseModel):
    """A top-up an enterprise's admin asked for in the portal (充值申请)."""

    request_no: str
    amount_cents: int
    currency: str
    method: str = Field(description="bank_transfer (an operator confirms) | online (the gateway's notification)")
    payer_reference: str
    gateway: str | None
    gateway_trade_no: str | None
    note: str
    status: str = Field(description="pending | credited | refused")
    requested_by: str
    requested_at: dt.datetime
    decided_by: str | None
    decided_at: dt.datetime | None
    refusal_reason: str
    changed: bool = Field(default=False, description="true: this call credited or refused it")


class TopUpRefuse(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: Annotated[str, StringConstraints(min_length=1, max_length=500), AfterValidator(reject_control_chars)]


class BalanceRead(BaseModel):
    account_code: str
    balance_cents: int
    credit_limit_cents: int
    currency: str
    created: bool = Field(description="false: this Idempotency-Key was used before, nothing was credited again")


class TierIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    min_quantity: Annotated[StrictInt, Field(ge=1, le=1_000_000)]
    unit_price_cents: Annotated[StrictInt, Field(ge=1, le=10_000_000_000)]


class TiersSet(BaseModel):
    model_config = ConfigDict(extra="forbid")
    tiers: Annotated[list[TierIn], Field(min_length=1, max_length=20)]


class SkuPriceRead(BaseModel):
    sku_code: str
    list_price_cents: int
    currency: str
    tiers: list[TierIn]


class QuoteRead(BaseModel):
    sku_code: str
    quantity: int
    unit_price_cents: int
    total_cents: int
    currency: str
    list_price_cents: int


# ---------------------------------------------------------------- bulk purchases

class PurchaseCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    sku_code: Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")]
    quantity: Annotated[StrictInt, Field(ge=1, le=100_000)]
    max_unit_price_cents: Annotated[StrictInt, Field(ge=1, le=10_000_000_000)] | None = Field(
        default=None, description="refuse (409) if the enterprise's price for this quantity is above it")


class PurchaseRead(BaseModel):
    purchase_no: str
    enterprise_code: str
    sku_code: str
    quantity: int
    unit_price_cents: int
    total_cents: int
    currency: str
    status: str = Field(description="queued | running | paused | completed | cancelled")
    placed_quantity: int = Field(description="codes bought and paid so far")
    delivered_quantity: int = Field(description="codes delivered (downloadable) so far")
    orders: int
    progress_percent: int
    error_code: str | None
    error: str | None
    created_at: dt.datetime
    finished_at: dt.datetime | None


class LinkCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ttl_minutes: Annotated[StrictInt, Field(ge=1, le=7 * 24 * 60)] = 24 * 60
    max_downloads: Annotated[StrictInt, Field(ge=1, le=20)] = 3


class LinkRead(BaseModel):
    id: int
    expires_at: dt.datetime
    max_downloads: int
    downloads: int
    revoked: bool
    csv_url: str | None = Field(default=None, description="only in the answer that created the link")
    xlsx_url: str | None = None


# ---------------------------------------------------------------- benefit campaigns

_SkuCode = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")]


class CampaignCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Name
    name_en: Annotated[str, StringConstraints(max_length=200), AfterValidator(reject_control_chars)] = ""
    greeting: Annotated[str, StringConstraints(max_length=500), AfterValidator(reject_control_chars)] = ""
    sku_codes: Annotated[list[_SkuCode], Field(min_length=1, max_length=30)]
    budget_per_employee_cents: Annotated[StrictInt, Field(ge=1, le=10_000_000_000)] | None = Field(
        default=None, description="omitted: one item of the employee's choice (the dearest option's price)")
    starts_at: dt.datetime
    ends_at: dt.datetime
    allow_wecom: bool = False
    allow_dingtalk: bool = False


class EmployeeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    employee_no: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]
    name: Annotated[str, StringConstraints(min_length=1, max_length=100), AfterValidator(reject_control_chars)]
    phone: Annotated[str, StringConstraints(max_length=32)] = ""
    email: Annotated[str, StringConstraints(max_length=254)] = ""
    wecom_userid: Annotated[str, StringConstraints(max_length=64), AfterValidator(reject_control_chars)] = ""
    dingtalk_union_id: Annotated[str, StringConstraints(max_length=64), AfterValidator(reject_control_chars)] = ""


class EmployeesAdd(BaseModel):
    model_config = ConfigDict(extra="forbid")
    employees: Annotated[list[EmployeeIn], Field(min_length=1, max_length=5000)]


class EmployeeIssued(BaseModel):
    employee_no: str
    name: str
    claim_code: str = Field(description="shown in this answer only")
    claim_url: str


class OptionRead(BaseModel):
    sku_code: str
    unit_price_cents: int


class CampaignRead(BaseModel):
    campaign_no: str
    enterprise_code: str
    name: str
    name_en: str
    status: str = Field(description="draft | active | ended")
    budget_per_employee_cents: int
    currency: str
    starts_at: dt.datetime
    ends_at: dt.datetime
    allow_wecom: bool
    allow_dingtalk: bool
    claim_url: str
    options: list[OptionRead]
    employees: int
    claimed: int
    claimed_cents: int
    funded_cents: int
    returned_cents: int
    balance_cents: int = Field(description="still in the campaign's account")
    claims_by_option: dict[str, int]
    claims_by_channel: dict[str, int]


class LoginAppSet(BaseModel):
    """An enterprise's WeCom app (corp id, AgentId, secret) or DingTalk app (client id = AppKey, client secret)."""

    model_config = ConfigDict(extra="forbid")
    app_id: Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")]
    agent_id: Annotated[str, StringConstraints(max_length=32, pattern=r"^[0-9]*$")] = ""
    secret: Annotated[str, StringConstraints(min_length=8, max_length=256, pattern=r"^[\x21-\x7e]+$")]


class LoginAppRead(BaseModel):
    provider: str
    app_id: str
    agent_id: str
    secret_hint: str = Field(description="the secret's last 4 characters; the secret itself is never shown")
    updated_at: dt.datetime


# ---------------------------------------------------------------- enterprise portal users (企业门户账号)

_Role = Literal["admin", "purchaser", "viewer"]
_Password = Annotated[str, StringConstraints(min_length=10, max_length=1024)]


class EnterpriseUserCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    username: Annotated[str, StringConstraints(min_length=2, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]+$")]
    password: _Password
    role: _Role
    display_name: Annotated[str, StringConstraints(max_length=100), AfterValidator(reject_control_chars)] = ""


class EnterpriseUserUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    role: _Role | None = None
    active: bool | None = None
    display_name: Annotated[str, StringConstraints(max_length=100), AfterValidator(reject_control_chars)] | None = None
    password: _Password | None = Field(default=None, description="A new password: ends every session of the user")


class EnterpriseUserRead(BaseModel):
    username: str
    display_name: str
    role: str
    active: bool
    second_factor: bool
    created_by: str
    created_at: dt.datetime
    last_login_at: dt.datetime | None
