"""Merchant tables: the merchants selling on the platform (商户), the platform's own store among them."""

from __future__ import annotations

import datetime as dt
import enum

from sqlalchemy import Boolean, CheckConstraint, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from quanyi.db import Base, UTCDateTime, utcnow

__all__ = ["Merchant", "MerchantStatus"]


class MerchantStatus(enum.StrEnum):
    ACTIVE = "active"  # sells; its staff work
    SUSPENDED = "suspended"  # 暂停: its goods are off sale and its staff cannot log in; nothing is deleted


class Merchant(Base):
    """A merchant (商户) on the platform. Row 1 (`platform`, self_operated) is the platform's own store (自营),
    created by the migration; every other merchant is admitted through an approved application.

    `code` is public and permanent: the storefront page `/m/<code>` and the ledger account
    `merchant_payable:<code>` are named after it."""

    __tablename__ = "merchants_merchant"
    __table_args__ = (
        CheckConstraint("commission_bps >= 0 AND commission_bps <= 10000", name="commission_bps_range"),
        CheckConstraint("hold_days IS NULL OR (hold_days >= 0 AND hold_days <= 365)", name="hold_days_range"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16), default=MerchantStatus.ACTIVE)
    # 自营: the platform's own store, whose revenue is the platform's (no commission, no statements to pay out).
    self_operated: Mapped[bool] = mapped_column(Boolean, default=False)
    # Platform commission (佣金) in basis points of what the buyer paid, unless a category rule says otherwise.
    commission_bps: Mapped[int] = mapped_column(Integer, default=0)
    # Days a delivered order's earnings stay held for refunds before they can be withdrawn; None: the setting.
    hold_days: Mapped[int | None] = mapped_column(Integer, nullable=True)
    description: Mapped[str] = mapped_column(Text, default="")
    contact_name: Mapped[str] = mapped_column(String(100), default="")
    contact_email: Mapped[str] = mapped_column(String(254), default="")
    contact_phone: Mapped[str] = mapped_column(String(32), default="")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
