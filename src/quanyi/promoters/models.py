"""Distribution (分销) tables: the programme's settings, promoters (推广员), which promoter brought each order,
member bindings and promoters' withdrawals (佣金提现).

Commission amounts are never stored here: they live in the ledger (`distributor_commission:<code>`), posted on
delivery and taken back pro rata by refunds, so a promoter's balance is always what the books say.
"""

from __future__ import annotations

import datetime as dt
import enum

from sqlalchemy import BigInteger, Boolean, CheckConstraint, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from quanyi.db import Base, UTCDateTime, utcnow

__all__ = ["PromoterProgram", "PromoterStatus", "Promoter", "OrderAttribution", "AttributionSource",
           "PromoterBinding", "PromoterWithdrawalStatus", "PromoterWithdrawal"]


class PromoterProgram(Base):
    """The operator's rules of the programme (one row, id 1; defaults until an operator changes them)."""

    __tablename__ = "promoters_program"
    __table_args__ = (
        CheckConstraint("levels IN (1, 2)", name="levels_one_or_two"),
        CheckConstraint("attribution_days BETWEEN 1 AND 365", name="attribution_days_range"),
        CheckConstraint("hold_days BETWEEN 0 AND 365", name="hold_days_range"),
        CheckConstraint("max_margin_share_bps BETWEEN 0 AND 10000", name="margin_share_range"),
        CheckConstraint("min_withdrawal_cents >= 1", name="min_withdrawal_positive"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    auto_approve: Mapped[bool] = mapped_column(Boolean, default=False)  # applications approved at once
    levels: Mapped[int] = mapped_column(Integer, default=1)  # 1: the referrer; 2: also whoever recruited them
    attribution_days: Mapped[int] = mapped_column(Integer, default=30)  # cookie and member binding last this long
    hold_days: Mapped[int] = mapped_column(Integer, default=7)  # commission withdrawable this long after delivery
    # Margin rule: an order's commission (both levels) is at most this share of the seller's margin on it
    # (what the seller keeps of the payment less the goods' cost). 10000: never more than the whole margin.
    max_margin_share_bps: Mapped[int] = mapped_column(Integer, default=10_000)
    min_withdrawal_cents: Mapped[int] = mapped_column(BigInteger, default=100)
    updated_by: Mapped[str] = mapped_column(String(64), default="")
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class PromoterStatus(enum.StrEnum):
    PENDING = "pending"  # applied, waiting for the operator
    APPROVED = "approved"  # earns commission on orders it brings
    REJECTED = "rejected"  # application refused (with a reason)
    SUSPENDED = "suspended"  # no new attributions; commission already earned stays withdrawable


class Promoter(Base):
    """A promoter (推广员): a member who applied, or a partner the operator added. `code` is its link (/r/CODE)
    and its ledger account (`distributor_commission:<code>`); `parent_id` recruited it (level 2)."""

    __tablename__ = "promoters_promoter"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    # Normalized like an order's contact: a promoter's own orders (same contact) earn it nothing.
    contact: Mapped[str] = mapped_column(String(254), index=True)
    member_id: Mapped[int | None] = mapped_column(ForeignKey("members_member.id"), nullable=True, unique=True)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("promoters_promoter.id"), nullable=True, index=True)
    status: Mapped[str] = mapped_column(String(16), default=PromoterStatus.PENDING, index=True)
    note: Mapped[str] = mapped_column(String(500), default="")  # the applicant's words
    created_by: Mapped[str] = mapped_column(String(64), default="")
    applied_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    reviewed_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    reviewed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    review_reason: Mapped[str | None] = mapped_column(String(500), nullable=True)


class AttributionSource(enum.StrEnum):
    CODE = "code"  # the checkout named the promoter (API `distributor_code`)
    LINK = "link"  # the buyer's browser came through /r/CODE within the window (cookie)
    BINDING = "binding"  # the buyer's member account is bound to the promoter


class OrderAttribution(Base):
    """Which promoter brought an order (and, with two levels, who recruited that promoter), fixed at checkout.
    The level-1 code is also on the order (`orders_order.distributor_code`)."""

    __tablename__ = "promoters_attribution"

    order_id: Mapped[int] = mapped_column(ForeignKey("orders_order.id"), primary_key=True)
    promoter_id: Mapped[int] = mapped_column(ForeignKey("promoters_promoter.id"), index=True)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("promoters_promoter.id"), nullable=True, index=True)
    source: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class PromoterBinding(Base):
    """A member bound to the promoter who brought them (锁粉), until `expires_at` (the attribution window)."""

    __tablename__ = "promoters_binding"

    member_id: Mapped[int] = mapped_column(ForeignKey("members_member.id"), primary_key=True)
    promoter_id: Mapped[int] = mapped_column(ForeignKey("promoters_promoter.id"), index=True)
    bound_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class PromoterWithdrawalStatus(enum.StrEnum):
    REQUESTED = "requested"  # reserved from the available commission
    APPROVED = "approved"  # the operator agreed; still reserved until paid
    PAID = "paid"  # paid out: the ledger moved it from distributor_commission to platform_cash
    REJECTED = "rejected"  # refused with a reason; available again


class PromoterWithdrawal(Base):
    """A promoter's request to be paid its commission (佣金提现), the operator's decision and the payout record."""

    __tablename__ = "promoters_withdrawal"
    __table_args__ = (CheckConstraint("amount_cents > 0", name="amount_positive"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    withdrawal_no: Mapped[str] = mapped_column(String(20), unique=True)
    promoter_id: Mapped[int] = mapped_column(ForeignKey("promoters_promoter.id"), index=True)
    request_key: Mapped[str | None] = mapped_column(String(80), unique=True, nullable=True)
    amount_cents: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    payout_account: Mapped[str] = mapped_column(String(200))  # where to pay it (e.g. an Alipay account)
    status: Mapped[str] = mapped_column(String(16), default=PromoterWithdrawalStatus.REQUESTED, index=True)
    requested_by: Mapped[str] = mapped_column(String(64))
    requested_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    reviewed_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    reviewed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    review_reason: Mapped[str | None] = mapped_column(String(500), nullable=True)
    paid_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    paid_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    payout_reference: Mapped[str | None] = mapped_column(String(128), nullable=True)
