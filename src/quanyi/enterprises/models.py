"""Enterprise customer tables (企业客户, B2B): the enterprise with its invoice data and prepaid account (a ledger
customer account, `enterprise:<code>`, the same mechanism resellers pay from), its contacts, and its negotiated
prices: tiers by quantity (阶梯价)."""

from __future__ import annotations

import datetime as dt
import enum

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from quanyi.db import Base, UTCDateTime, utcnow

__all__ = ["Enterprise", "EnterpriseStatus", "EnterpriseContact", "EnterprisePriceTier"]


class EnterpriseStatus(enum.StrEnum):
    ACTIVE = "active"
    SUSPENDED = "suspended"  # its account is frozen: no purchase, no claim is paid while suspended


class Enterprise(Base):
    """An enterprise customer (企业客户) buying benefits for its employees, paying from `account_id`."""

    __tablename__ = "enterprises_enterprise"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(48), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16), default=EnterpriseStatus.ACTIVE)
    account_id: Mapped[int] = mapped_column(ForeignKey("ledger_customer_account.id"), unique=True)
    # Invoice data (开票信息) for the VAT invoice of each top-up: title (抬头), taxpayer id (纳税人识别号) ...
    invoice_title: Mapped[str] = mapped_column(String(200), default="")
    tax_number: Mapped[str] = mapped_column(String(20), default="")
    invoice_address: Mapped[str] = mapped_column(String(300), default="")
    invoice_phone: Mapped[str] = mapped_column(String(40), default="")
    bank_name: Mapped[str] = mapped_column(String(200), default="")
    bank_account: Mapped[str] = mapped_column(String(64), default="")
    invoice_email: Mapped[str] = mapped_column(String(254), default="")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class EnterpriseContact(Base):
    """A person at the enterprise we deal with (purchasing, finance, HR): who orders, who gets the files."""

    __tablename__ = "enterprises_contact"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    enterprise_id: Mapped[int] = mapped_column(ForeignKey("enterprises_enterprise.id"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    role: Mapped[str] = mapped_column(String(32))  # purchasing | finance | hr | it | other
    email: Mapped[str] = mapped_column(String(254), default="")
    phone: Mapped[str] = mapped_column(String(32), default="")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class EnterprisePriceTier(Base):
    """One tier of an enterprise's price of a SKU (阶梯价): from `min_quantity` items in one purchase on, each
    costs `unit_price_cents`. A negotiated flat price is a single tier from 1. Below the lowest tier, and for
    SKUs without tiers, the list price applies (enterprises.pricing.unit_price)."""

    __tablename__ = "enterprises_price_tier"
    __table_args__ = (UniqueConstraint("enterprise_id", "sku_id", "min_quantity"),
                      CheckConstraint("min_quantity >= 1", name="min_quantity_positive"),
                      CheckConstraint("unit_price_cents > 0", name="price_positive"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    enterprise_id: Mapped[int] = mapped_column(ForeignKey("enterprises_enterprise.id"), index=True)
    sku_id: Mapped[int] = mapped_column(ForeignKey("catalog_sku.id"), index=True)
    min_quantity: Mapped[int] = mapped_column(Integer)
    unit_price_cents: Mapped[int] = mapped_column(BigInteger)
    updated_by: Mapped[str] = mapped_column(String(64), default="admin")
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

