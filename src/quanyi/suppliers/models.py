"""Supplier tables: the supplier and its contract, its synced catalog, and which SKUs it can fill."""

from __future__ import annotations

import datetime as dt
import enum

from sqlalchemy import BigInteger, Boolean, CheckConstraint, ForeignKey, Integer, LargeBinary, String, UniqueConstraint
from sqlalchemy import Enum as SAEnum
from sqlalchemy.orm import Mapped, mapped_column

from quanyi.db import Base, UTCDateTime, utcnow
from quanyi.scope import owner_column
from quanyi.suppliers.adapter import ProductKind, SupplierDialect

__all__ = ["Supplier", "SupplierStatus", "SettlementCycle", "SupplierProduct", "SkuSupplierMapping"]


def _enum(kind: type[enum.Enum]) -> SAEnum:
    return SAEnum(kind, native_enum=False, length=32, values_callable=lambda e: [m.value for m in e])


class SupplierStatus(enum.StrEnum):
    ACTIVE = "active"  # routed to and synced
    PAUSED = "paused"  # kept in sync, not routed to (operator's choice)
    DISABLED = "disabled"  # neither synced nor routed to


class SettlementCycle(enum.StrEnum):
    PER_ORDER = "per_order"  # 单结: each purchase settled on its own
    DAILY = "daily"  # 日结
    WEEKLY = "weekly"  # 周结


class Supplier(Base):
    """A supplier (供应商) with its contract terms and API endpoint.

    Prepaid suppliers (预付) are paid in advance: `balance_cents` goes down with each purchase and may
    go as low as `-credit_limit_cents` (授信额度; 0 = pure prepaid). The CHECK below is the last line of
    defence; purchases debit it with one conditional UPDATE so concurrent orders never overdraw it.
    """

    __tablename__ = "suppliers_supplier"
    __table_args__ = (
        CheckConstraint("credit_limit_cents >= 0", name="credit_limit_not_negative"),
        CheckConstraint("balance_cents >= -credit_limit_cents", name="balance_within_credit"),
        CheckConstraint("timeout_ms > 0", name="timeout_positive"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # The merchant whose supplier account this is (its products, mappings, charges and sync follow it). Codes
    # stay unique on the whole platform: they name the supplier's callback URLs.
    merchant_id: Mapped[int] = owner_column()
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    dialect: Mapped[SupplierDialect] = mapped_column(_enum(SupplierDialect))
    base_url: Mapped[str] = mapped_column(String(500))
    # Dialect-specific API credentials as JSON, AES-GCM encrypted with the card-key keyring (see credentials.py).
    credentials_key_id: Mapped[str] = mapped_column(String(32))
    credentials_ciphertext: Mapped[bytes] = mapped_column(LargeBinary)
    status: Mapped[SupplierStatus] = mapped_column(_enum(SupplierStatus), default=SupplierStatus.ACTIVE)
    settlement_cycle: Mapped[SettlementCycle] = mapped_column(_enum(SettlementCycle), default=SettlementCycle.DAILY)
    currency: Mapped[str] = mapped_column(String(3), default="CNY")
    balance_cents: Mapped[int] = mapped_column(BigInteger, default=0)
    credit_limit_cents: Mapped[int] = mapped_column(BigInteger, default=0)
    timeout_ms: Mapped[int] = mapped_column(Integer, default=5000)
    # Health, kept by routing and sync: consecutive failures open the circuit until circuit_open_until.
    consecutive_failures: Mapped[int] = mapped_column(Integer, default=0)
    circuit_open_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_success_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_failure_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_error: Mapped[str | None] = mapped_column(String(500), nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class SupplierProduct(Base):
    """One product of a supplier's catalog as last synced (by pull or push)."""

    __tablename__ = "suppliers_product"
    __table_args__ = (
        UniqueConstraint("supplier_id", "product_code"),
        CheckConstraint("cost_cents >= 0", name="cost_not_negative"),
        CheckConstraint("stock IS NULL OR stock >= 0", name="stock_not_negative"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    supplier_id: Mapped[int] = mapped_column(ForeignKey("suppliers_supplier.id"), index=True)
    product_code: Mapped[str] = mapped_column(String(128))
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[ProductKind] = mapped_column(_enum(ProductKind))
    face_value_cents: Mapped[int] = mapped_column(BigInteger, default=0)
    cost_cents: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3), default="CNY")
    stock: Mapped[int | None] = mapped_column(Integer, nullable=True)  # None: not counted (direct recharge)
    available: Mapped[bool] = mapped_column(Boolean, default=True)
    last_synced_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_sync_source: Mapped[str] = mapped_column(String(16), default="pull")  # pull | push | purchase


class SkuSupplierMapping(Base):
    """A platform SKU can be filled by this supplier product (lower priority number = preferred on a cost tie)."""

    __tablename__ = "suppliers_sku_mapping"
    __table_args__ = (UniqueConstraint("sku_id", "supplier_product_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    sku_id: Mapped[int] = mapped_column(ForeignKey("catalog_sku.id"), index=True)
    supplier_product_id: Mapped[int] = mapped_column(ForeignKey("suppliers_product.id"), index=True)
    priority: Mapped[int] = mapped_column(Integer, default=100)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
