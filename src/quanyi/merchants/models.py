"""Merchant tables: the merchants selling on the platform (商户), the platform's own store among them."""

from __future__ import annotations

import datetime as dt
import enum

from sqlalchemy import BigInteger, Boolean, CheckConstraint, Date, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from quanyi.db import Base, UTCDateTime, utcnow
from quanyi.scope import owner_column

__all__ = ["Merchant", "MerchantStatus", "MerchantApplication", "ApplicationStatus", "CommissionRule", "Withdrawal",
           "WithdrawalStatus", "MerchantStatement"]


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


class ApplicationStatus(enum.StrEnum):
    PENDING = "pending"  # waiting for the platform's review
    APPROVED = "approved"  # a merchant and its owner account were created
    REJECTED = "rejected"  # refused, with the reason the applicant is told


class MerchantApplication(Base):
    """An application to sell on the platform (入驻申请). The platform approves it (the merchant and its owner's
    staff account are created from it) or rejects it with a reason; the decision, who and when stay on the row.

    The applicant chooses the owner's login at application time; only its argon2 hash is kept, and only until
    the decision (approval moves it to the staff account, rejection erases it)."""

    __tablename__ = "merchants_application"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    application_no: Mapped[str] = mapped_column(String(20), unique=True)
    status: Mapped[str] = mapped_column(String(16), default=ApplicationStatus.PENDING, index=True)
    code: Mapped[str] = mapped_column(String(32))  # the merchant code asked for
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    contact_name: Mapped[str] = mapped_column(String(100), default="")
    contact_email: Mapped[str] = mapped_column(String(254))
    contact_phone: Mapped[str] = mapped_column(String(32), default="")
    owner_username: Mapped[str] = mapped_column(String(64))
    owner_password_hash: Mapped[str] = mapped_column(String(200), default="")
    locale: Mapped[str] = mapped_column(String(8), default="zh-CN")
    ip: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    reviewed_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    reviewed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    review_reason: Mapped[str | None] = mapped_column(String(500), nullable=True)
    merchant_id: Mapped[int | None] = mapped_column(ForeignKey("merchants_merchant.id"), nullable=True)


class CommissionRule(Base):
    """A merchant's commission for one category (类目佣金), overriding the merchant's own rate."""

    __tablename__ = "merchants_commission_rule"
    __table_args__ = (
        UniqueConstraint("merchant_id", "category_id"),
        CheckConstraint("commission_bps >= 0 AND commission_bps <= 10000", name="commission_bps_range"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants_merchant.id"))
    category_id: Mapped[int] = mapped_column(ForeignKey("catalog_category.id"))
    commission_bps: Mapped[int] = mapped_column(Integer)
    updated_by: Mapped[str] = mapped_column(String(64), default="")
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class WithdrawalStatus(enum.StrEnum):
    REQUESTED = "requested"  # the merchant asked; the amount is reserved from its available balance
    APPROVED = "approved"  # the platform agreed; still reserved until the payout is recorded
    PAID = "paid"  # paid out (打款): the ledger moved it from merchant_payable to platform_cash
    REJECTED = "rejected"  # refused with a reason; the amount is available again


class Withdrawal(Base):
    """A merchant's request to be paid its earnings (提现), the platform's decision and the payout record."""

    __tablename__ = "merchants_withdrawal"
    __table_args__ = (CheckConstraint("amount_cents > 0", name="amount_positive"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    withdrawal_no: Mapped[str] = mapped_column(String(20), unique=True)
    merchant_id: Mapped[int] = owner_column()
    # The requester's Idempotency-Key: the same request sent twice asks once.
    request_key: Mapped[str | None] = mapped_column(String(80), unique=True, nullable=True)
    amount_cents: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    status: Mapped[str] = mapped_column(String(16), default=WithdrawalStatus.REQUESTED, index=True)
    note: Mapped[str] = mapped_column(String(500), default="")
    requested_by: Mapped[str] = mapped_column(String(64))
    requested_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    reviewed_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    reviewed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    review_reason: Mapped[str | None] = mapped_column(String(500), nullable=True)
    paid_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    paid_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    payout_reference: Mapped[str | None] = mapped_column(String(128), nullable=True)  # bank transfer number


class MerchantStatement(Base):
    """A merchant's settlement statement (商户对账单) for one closed period, issued once and kept as issued.
    Its lines are read from the ledger, whose entries for a closed period never change."""

    __tablename__ = "merchants_statement"
    __table_args__ = (UniqueConstraint("merchant_id", "cycle", "period_start", "currency"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    statement_no: Mapped[str] = mapped_column(String(40), unique=True)
    merchant_id: Mapped[int] = owner_column()
    cycle: Mapped[str] = mapped_column(String(16))  # daily | weekly | monthly
    period_start: Mapped[dt.date] = mapped_column(Date)
    period_end: Mapped[dt.date] = mapped_column(Date)  # exclusive
    currency: Mapped[str] = mapped_column(String(3))
    opening_cents: Mapped[int] = mapped_column(BigInteger)
    gross_cents: Mapped[int] = mapped_column(BigInteger)  # what buyers paid for delivered orders
    fees_cents: Mapped[int] = mapped_column(BigInteger)  # the platform's commission (and distributor shares)
    net_sales_cents: Mapped[int] = mapped_column(BigInteger)  # gross - fees: credited to the merchant
    refunds_cents: Mapped[int] = mapped_column(BigInteger)  # taken back for refunds (net of refused ones)
    withdrawals_cents: Mapped[int] = mapped_column(BigInteger)  # paid out
    closing_cents: Mapped[int] = mapped_column(BigInteger)
    orders: Mapped[int] = mapped_column(Integer)
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
