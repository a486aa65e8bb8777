"""Request/response shapes of the merchants API."""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from quanyi.merchants.models import MerchantStatus
from quanyi.schema_types import LongText, Name, reject_control_chars

__all__ = ["MERCHANT_CODE", "MerchantCode", "MerchantCreate", "MerchantUpdate", "MerchantRead", "Bps", "HoldDays",
           "ContactEmail", "ContactPhone", "ShortName"]


# Lowercase, because it is part of a URL (/m/<code>) and of ledger account codes.
MERCHANT_CODE = re.compile(r"^[a-z0-9][a-z0-9-]{1,31}$")


def _merchant_code(value: str) -> str:
    value = value.lower()
    if not MERCHANT_CODE.match(value):
        raise ValueError("use 2-32 lowercase letters, digits and '-', starting with a letter or digit")
    return value


MerchantCode = Annotated[str, StringConstraints(strip_whitespace=True, min_length=2, max_length=32),
                         AfterValidator(_merchant_code)]
Bps = Annotated[int, Field(ge=0, le=10_000, description="basis points: 100 = 1%")]
HoldDays = Annotated[int, Field(ge=0, le=365)]
ShortName = Annotated[str, StringConstraints(strip_whitespace=True, max_length=100),
                      AfterValidator(reject_control_chars)]
ContactEmail = Annotated[str, StringConstraints(strip_whitespace=True, max_length=254),
                         AfterValidator(reject_control_chars)]
ContactPhone = Annotated[str, StringConstraints(strip_whitespace=True, max_length=32, pattern=r"^[0-9+\- ]*$")]


class MerchantCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    code: MerchantCode
    name: Name
    commission_bps: Bps = 0
    hold_days: HoldDays | None = None
    description: LongText = ""
    contact_name: ShortName = ""
    contact_email: ContactEmail = ""
    contact_phone: ContactPhone = ""


class MerchantUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Name | None = None
    status: MerchantStatus | None = None
    commission_bps: Bps | None = None
    hold_days: HoldDays | None = None
    description: LongText | None = None
    contact_name: ShortName | None = None
    contact_email: ContactEmail | None = None
    contact_phone: ContactPhone | None = None


class MerchantRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    code: str
    name: str
    status: str
    self_operated: bool
    commission_bps: int
    hold_days: int | None
    description: str
    contact_name: str
    contact_email: str
    contact_phone: str
    created_at: dt.datetime
    updated_at: dt.datetime
