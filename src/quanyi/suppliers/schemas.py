"""Request/response shapes of the supplier admin API. Credentials go in, never come out: a supplier is
shown with the names of its credential fields only."""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from quanyi.catalog.schemas import Currency, MerchantRef
from quanyi.schema_types import Cents, Code, Name, reject_control_chars
from quanyi.suppliers.adapter import ProductKind, SupplierDialect
from quanyi.suppliers.models import SettlementCycle, SupplierStatus
from quanyi.suppliers.sync_models import PriceChangeAction, PricePolicy

__all__ = [
    "SupplierCreate", "SupplierUpdate", "SupplierRead", "SupplierHealth", "SupplierSyncRead", "Credentials",
    "SupplierProductRead", "MappingCreate", "MappingUpdate", "MappingRead", "PricePolicySet", "PricePolicyRead",
    "PriceChangeRead", "SyncResultRead", "SupplierSyncStatus", "PricePolicyResult", "SupplierCodeStr", "ProductCodeStr",
]

_FIELD_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]{0,63}$")


def _base_url(value: str) -> str:
    if not re.match(r"^https?://[^/\s?#]+", value):
        raise ValueError("must be an http:// or https:// URL")
    if any(c in value for c in "\"'<> \n\r\t\\"):
        raise ValueError("contains characters not allowed in a URL")
    return value.rstrip("/")


def _credentials(value: dict[str, str]) -> dict[str, str]:
    if not value:
        raise ValueError("give at least one credential field")
    if len(value) > 20:
        raise ValueError("at most 20 credential fields")
    for name, secret in value.items():
        if not _FIELD_NAME.match(name):
            raise ValueError(f"credential field names are letters, digits, '_', '.', '-' (got {name[:20]!r})")
        if not secret or len(secret) > 8192 or "\x00" in secret:
            raise ValueError(f"credential {name} must be 1 to 8192 characters without NUL")
    return value


BaseUrl = Annotated[str, StringConstraints(strip_whitespace=True, min_length=8, max_length=500),
                    AfterValidator(_base_url)]
Credentials = Annotated[dict[str, str], AfterValidator(_credentials)]
SupplierCodeStr = Code
ProductCodeStr = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=128),
                           AfterValidator(reject_control_chars)]
TimeoutMs = Annotated[int, Field(ge=100, le=120_000)]
Bps = Annotated[int, Field(ge=0, le=9_999)]


class SupplierCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    merchant_code: MerchantRef | None = Field(
        default=None, description="Platform staff: the merchant whose supplier account this is (default: the "
                                  "platform's own store). A merchant's staff always add their own.")
    code: SupplierCodeStr
    name: Name
    dialect: SupplierDialect
    base_url: BaseUrl
    credentials: Credentials
    status: SupplierStatus = SupplierStatus.ACTIVE
    settlement_cycle: SettlementCycle = SettlementCycle.DAILY
    currency: Currency = "CNY"
    credit_limit_cents: Cents = 0
    timeout_ms: TimeoutMs = 5000


class SupplierUpdate(BaseModel):
    """Fields present change; `credentials`, when given, replace the stored ones entirely."""

    model_config = ConfigDict(extra="forbid")
    name: Name | None = None
    dialect: SupplierDialect | None = None
    base_url: BaseUrl | None = None
    credentials: Credentials | None = None
    status: SupplierStatus | None = None
    settlement_cycle: SettlementCycle | None = None
    currency: Currency | None = None
    credit_limit_cents: Cents | None = None
    timeout_ms: TimeoutMs | None = None


class SupplierHealth(BaseModel):
    circuit: str  # closed | open
    circuit_open_until: dt.datetime | None
    consecutive_failures: int
    last_success_at: dt.datetime | None
    last_failure_at: dt.datetime | None
    last_error: str | None


class SupplierSyncRead(BaseModel):
    last_pull_started_at: dt.datetime | None = None
    last_pull_ok_at: dt.datetime | None = None
    last_pull_failed_at: dt.datetime | None = None
    last_pull_error: str | None = None
    last_catalog_at: dt.datetime | None = None
    last_push_at: dt.datetime | None = None
    pulling: bool = False


class SupplierRead(BaseModel):
    id: int
    merchant_id: int
    code: str
    name: str
    dialect: SupplierDialect
    base_url: str
    status: SupplierStatus
    settlement_cycle: SettlementCycle
    currency: str
    balance_cents: int  # prepaid balance (预付款), read-only here: the ledger tops it up and debits it
    credit_limit_cents: int
    timeout_ms: int
    credential_fields: list[str]  # which fields are set; values are never shown
    credentials_readable: bool
    stock_callback_path: str
    health: SupplierHealth
    sync: SupplierSyncRead
    created_at: dt.datetime
    updated_at: dt.datetime


class SupplierProductRead(BaseModel):
    id: int
    supplier_code: str
    product_code: str
    name: str
    kind: ProductKind
    face_value_cents: int
    cost_cents: int
    currency: str
    stock: int | None
    available: bool
    last_synced_at: dt.datetime
    last_sync_source: str
    mapped_skus: list[int] = []


class MappingCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    supplier_code: SupplierCodeStr
    product_code: ProductCodeStr
    priority: Annotated[int, Field(ge=0, le=10_000)] = 100
    enabled: bool = True


class MappingUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    priority: Annotated[int, Field(ge=0, le=10_000)] | None = None
    enabled: bool | None = None


class MappingRead(BaseModel):
    id: int
    sku_id: int
    sku_code: str
    priority: int
    enabled: bool
    supplier_code: str
    supplier_status: SupplierStatus
    product: SupplierProductRead
    usable: bool  # enabled, supplier active, product available with stock: checkout may count on it


class PricePolicySet(BaseModel):
    model_config = ConfigDict(extra="forbid")
    policy: PricePolicy
    margin_floor_cents: Cents = 0
    margin_floor_bps: Bps = 0
    markup_cents: Cents = 0
    markup_bps: Annotated[int, Field(ge=0, le=100_000)] = 0
    max_price_cents: Cents | None = None  # reprice never goes above this; the SKU goes off sale instead


class PricePolicyRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    sku_id: int
    policy: PricePolicy
    margin_floor_cents: int
    margin_floor_bps: int
    markup_cents: int
    markup_bps: int
    max_price_cents: int | None
    base_price_cents: int | None
    auto_price_cents: int | None
    off_sale_by_policy: bool
    off_sale_reason: str | None
    updated_at: dt.datetime


class PriceChangeRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    sku_id: int
    action: PriceChangeAction
    old_price_cents: int
    new_price_cents: int
    supplier_cost_cents: int | None
    supplier_product_id: int | None
    reason: str
    created_at: dt.datetime


class SupplierSyncStatus(BaseModel):
    supplier_code: str
    status: SupplierStatus
    sync: SupplierSyncRead
    products: list[SupplierProductRead]


class PricePolicyResult(BaseModel):
    policy: PricePolicyRead
    changes: list[PriceChangeRead]


class SyncResultRead(BaseModel):
    supplier_code: str
    ok: bool
    mode: str  # catalog | quotes | push
    products_seen: int = 0
    new_products: int = 0
    updated: int = 0
    vanished: int = 0
    stale_ignored: int = 0
    unknown_products: int = 0
    price_changes: list[PriceChangeRead] = []
    error: str | None = None

