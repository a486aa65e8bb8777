"""Coupon tables: the coupon (a campaign's rules and counts), what it applies to, the coupons handed out (a
member's coupon or a single-use code), each order's use of a coupon, and per-member tallies."""

from __future__ import annotations

import datetime as dt
import enum

from sqlalchemy import BigInteger, Boolean, CheckConstraint, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from quanyi.db import Base, UTCDateTime, utcnow
from quanyi.scope import owner_column

__all__ = ["CouponKind", "CouponTargetKind", "Distribution", "GrantStatus", "RedemptionStatus", "Coupon",
           "CouponTarget", "CouponGrant", "CouponRedemption", "CouponTally", "CouponCodeBatch", "CouponLevelGift",
           "CouponLevelReward"]


class CouponKind(enum.StrEnum):
    AMOUNT_OFF = "amount_off"  # 满减: amount_off_cents off once the line reaches threshold_cents
    PERCENT_OFF = "percent_off"  # 折扣券: percent_off_bps off, at most max_discount_cents
    FIXED_PRICE = "fixed_price"  # 一口价: each unit of the SKUs in scope costs fixed_price_cents


class CouponTargetKind(enum.StrEnum):
    CATEGORY = "category"
    PRODUCT = "product"
    SKU = "sku"


class Distribution(enum.StrEnum):
    CODE = "code"  # a public code anyone may type at checkout (total_quantity: uses)
    CLAIM = "claim"  # claimed by members in the claim centre (领券中心) (total_quantity: coupons handed out)
    ISSUED = "issued"  # handed to members by an operator or a rule, e.g. the sign-up gift (total: handed out)
    CODES = "codes"  # batches of unique single-use codes for partners (total_quantity: codes made)


class GrantStatus(enum.StrEnum):
    AVAILABLE = "available"
    RESERVED = "reserved"  # on an unpaid order
    USED = "used"  # on a paid order
    VOID = "void"  # withdrawn by an operator


class RedemptionStatus(enum.StrEnum):
    RESERVED = "reserved"  # the order is placed and unpaid: counted, given back if it is never paid
    USED = "used"  # the order is paid
    RELEASED = "released"  # the order was cancelled or expired unpaid: the coupon went back
    RETURNED = "returned"  # the order was refunded in full before delivery: the coupon went back

LIVE_REDEMPTIONS = (RedemptionStatus.RESERVED.value, RedemptionStatus.USED.value)


class Coupon(Base):
    """A coupon (优惠券) of a merchant or the platform: applies only to its owner's goods.
    `taken_count` is what `total_quantity` limits (uses, coupons handed out or codes made; see Distribution); it is
    raised by a conditional UPDATE, so concurrent checkouts and claims never exceed the total."""

    __tablename__ = "coupons_coupon"
    __table_args__ = (
        CheckConstraint("taken_count >= 0 AND (total_quantity IS NULL OR taken_count <= total_quantity)",
                        name="taken_within_total"),
        CheckConstraint("total_quantity IS NULL OR total_quantity >= 0", name="total_not_negative"),
        CheckConstraint("per_member_limit IS NULL OR per_member_limit >= 1", name="per_member_limit_positive"),
        CheckConstraint("threshold_cents >= 0", name="threshold_not_negative"),
        CheckConstraint(
            "(kind = 'amount_off' AND amount_off_cents > 0) OR "
            "(kind = 'percent_off' AND percent_off_bps > 0 AND percent_off_bps < 10000) OR "
            "(kind = 'fixed_price' AND fixed_price_cents >= 1)", name="kind_has_its_amount"),
        CheckConstraint("max_discount_cents IS NULL OR max_discount_cents >= 1", name="cap_positive"),
        CheckConstraint("ends_at > starts_at", name="window_not_empty"),
        Index("ix_coupons_coupon_merchant_created", "merchant_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    merchant_id: Mapped[int] = owner_column(index=False)
    name: Mapped[str] = mapped_column(String(100))
    description: Mapped[str] = mapped_column(String(500), default="")
    kind: Mapped[str] = mapped_column(String(16))
    amount_off_cents: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    percent_off_bps: Mapped[int | None] = mapped_column(Integer, nullable=True)
    max_discount_cents: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    fixed_price_cents: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    threshold_cents: Mapped[int] = mapped_column(BigInteger, default=0)
    currency: Mapped[str] = mapped_column(String(3), default="CNY")
    applies_to_all: Mapped[bool] = mapped_column(Boolean, default=True)  # else: its CouponTarget rows
    starts_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    ends_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    total_quantity: Mapped[int | None] = mapped_column(Integer, nullable=True)  # None: no limit
    taken_count: Mapped[int] = mapped_column(Integer, default=0)
    per_member_limit: Mapped[int | None] = mapped_column(Integer, nullable=True)
    new_members_only: Mapped[bool] = mapped_column(Boolean, default=False)
    stackable: Mapped[bool] = mapped_column(Boolean, default=False)
    distribution: Mapped[str] = mapped_column(String(16))
    code: Mapped[str | None] = mapped_column(String(32), unique=True, nullable=True)  # Distribution.CODE only
    signup_gift: Mapped[bool] = mapped_column(Boolean, default=False)  # issued to every new member
    active: Mapped[bool] = mapped_column(Boolean, default=True)  # paused coupons cannot be claimed or used
    created_by: Mapped[str] = mapped_column(String(64), default="admin")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class CouponTarget(Base):
    """What a scoped coupon applies to: categories, products or SKUs (of the coupon's merchant)."""

    __tablename__ = "coupons_target"

    coupon_id: Mapped[int] = mapped_column(ForeignKey("coupons_coupon.id"), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    target_id: Mapped[int] = mapped_column(Integer, primary_key=True)


class CouponCodeBatch(Base):
    """A batch of single-use codes made for a partner (exported as CSV)."""

    __tablename__ = "coupons_code_batch"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    coupon_id: Mapped[int] = mapped_column(ForeignKey("coupons_coupon.id"), index=True)
    size: Mapped[int] = mapped_column(Integer)
    note: Mapped[str] = mapped_column(String(200), default="")
    created_by: Mapped[str] = mapped_column(String(64), default="admin")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class CouponGrant(Base):
    """One usable coupon: a member's own (claimed, issued, sign-up gift) or a single-use code of a batch.
    Used at most once: its status moves available -> reserved -> used by conditional UPDATEs."""

    __tablename__ = "coupons_grant"
    __table_args__ = (
        CheckConstraint("member_id IS NOT NULL OR code IS NOT NULL", name="held_by_member_or_code"),
        Index("ix_coupons_grant_member_status", "member_id", "status"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer(), "sqlite"), primary_key=True)
    coupon_id: Mapped[int] = mapped_column(ForeignKey("coupons_coupon.id"), index=True)
    member_id: Mapped[int | None] = mapped_column(ForeignKey("members_member.id"), nullable=True)
    code: Mapped[str | None] = mapped_column(String(32), unique=True, nullable=True)
    batch_id: Mapped[int | None] = mapped_column(ForeignKey("coupons_code_batch.id"), nullable=True, index=True)
    source: Mapped[str] = mapped_column(String(16))  # claim | issued | signup | code
    status: Mapped[str] = mapped_column(String(16), default=GrantStatus.AVAILABLE.value)
    order_id: Mapped[int | None] = mapped_column(ForeignKey("orders_order.id"), nullable=True)
    issued_by: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class CouponRedemption(Base):
    """A coupon on an order, with the discount it gave. RESERVED/USED rows are what the coupon counts."""

    __tablename__ = "coupons_redemption"
    __table_args__ = (
        UniqueConstraint("order_id", "coupon_id"),
        CheckConstraint("discount_cents >= 0", name="discount_not_negative"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer(), "sqlite"), primary_key=True)
    coupon_id: Mapped[int] = mapped_column(ForeignKey("coupons_coupon.id"), index=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders_order.id"), index=True)
    grant_id: Mapped[int | None] = mapped_column(ForeignKey("coupons_grant.id"), nullable=True)
    member_id: Mapped[int | None] = mapped_column(ForeignKey("members_member.id"), nullable=True)
    discount_cents: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(16), default=RedemptionStatus.RESERVED.value)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class CouponTally(Base):
    """How many of a coupon one member holds or has on live orders (what per_member_limit limits); raised by a
    conditional UPDATE / upsert so two concurrent checkouts of one member cannot both pass the limit."""

    __tablename__ = "coupons_tally"
    __table_args__ = (CheckConstraint("taken >= 0", name="taken_not_negative"),)

    coupon_id: Mapped[int] = mapped_column(ForeignKey("coupons_coupon.id"), primary_key=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members_member.id"), primary_key=True)
    taken: Mapped[int] = mapped_column(Integer, default=0)


class CouponLevelGift(Base):
    """A coupon handed to a member on reaching a membership level (升级礼券); an operator sets each level's."""

    __tablename__ = "coupons_level_gift"

    level_id: Mapped[int] = mapped_column(ForeignKey("loyalty_level.id", ondelete="CASCADE"), primary_key=True)
    coupon_id: Mapped[int] = mapped_column(ForeignKey("coupons_coupon.id"), primary_key=True, index=True)
    created_by: Mapped[str] = mapped_column(String(64), default="admin")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class CouponLevelReward(Base):
    """A member was given a level's gifts: the primary key makes it once per member and level, whatever the number
    of deliveries (concurrent or repeated) and re-evaluations that reach the level. A removed level takes its rows."""

    __tablename__ = "coupons_level_reward"

    member_id: Mapped[int] = mapped_column(ForeignKey("members_member.id"), primary_key=True)
    level_id: Mapped[int] = mapped_column(ForeignKey("loyalty_level.id", ondelete="CASCADE"), primary_key=True,
                                          index=True)
    issued: Mapped[int] = mapped_column(Integer, default=0)  # coupons handed out (sold out / limited ones skipped)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
