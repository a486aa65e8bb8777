"""Loyalty tables: the programme's rules, membership levels (会员等级) with per-SKU member prices, each member's
points balance, cumulative spend and level, points lots (what was earned, what is left, when it expires) and
the points journal (积分流水).

The points' money value is in the ledger (`points_liability`): every movement here posts there in the same
transaction, so the books always say what outstanding points are worth.
"""

from __future__ import annotations

import datetime as dt
import enum

from sqlalchemy import BigInteger, Boolean, CheckConstraint, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from quanyi.db import Base, UTCDateTime, utcnow

__all__ = ["LoyaltyProgram", "MemberLevel", "LevelPrice", "MemberLoyalty", "PointsLot", "PointsKind",
           "PointsMovement"]


class LoyaltyProgram(Base):
    """The operator's points rules (one row, id 1; defaults until an operator changes them)."""

    __tablename__ = "loyalty_program"
    __table_args__ = (
        CheckConstraint("points_per_yuan >= 0", name="points_per_yuan_not_negative"),
        CheckConstraint("point_value_cents >= 1", name="point_value_positive"),
        CheckConstraint("max_points_share_bps BETWEEN 0 AND 10000", name="max_share_range"),
        CheckConstraint("expiry_years BETWEEN 1 AND 10", name="expiry_years_range"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    points_enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    points_per_yuan: Mapped[int] = mapped_column(Integer, default=1)  # earned per ¥1 paid, before the multiplier
    point_value_cents: Mapped[int] = mapped_column(Integer, default=1)  # what one point takes off when spent
    max_points_share_bps: Mapped[int] = mapped_column(Integer, default=5000)  # of an order (after coupons)
    # Points expire at the end of the calendar year this many years after the one they were earned in (1: the
    # end of next year), in the shop's time zone.
    expiry_years: Mapped[int] = mapped_column(Integer, default=1)
    updated_by: Mapped[str] = mapped_column(String(64), default="")
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class MemberLevel(Base):
    """A membership level (会员等级), reached by cumulative paid amount; its discount on every SKU (or a per-SKU
    member price, `LevelPrice`) and its points multiplier."""

    __tablename__ = "loyalty_level"
    __table_args__ = (
        CheckConstraint("min_paid_cents >= 0", name="min_paid_not_negative"),
        CheckConstraint("discount_bps BETWEEN 0 AND 9999", name="discount_range"),
        CheckConstraint("points_multiplier_bps BETWEEN 0 AND 100000", name="multiplier_range"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(64))
    min_paid_cents: Mapped[int] = mapped_column(BigInteger, unique=True)
    discount_bps: Mapped[int] = mapped_column(Integer, default=0)  # 500: 5 % off the unit price
    points_multiplier_bps: Mapped[int] = mapped_column(Integer, default=10_000)  # 15000: 1.5 x points
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class LevelPrice(Base):
    """A level's own price of one SKU (会员价), instead of the level's discount."""

    __tablename__ = "loyalty_level_price"
    __table_args__ = (UniqueConstraint("level_id", "sku_id"), CheckConstraint("price_cents >= 0", name="price_ok"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    level_id: Mapped[int] = mapped_column(ForeignKey("loyalty_level.id", ondelete="CASCADE"), index=True)
    sku_id: Mapped[int] = mapped_column(ForeignKey("catalog_sku.id"), index=True)
    price_cents: Mapped[int] = mapped_column(BigInteger)


class MemberLoyalty(Base):
    """A member's points balance, cumulative paid amount and level. The row lock serializes every change of
    one member's points (earn, spend, return, expire, claw back).

    `points_balance` is below zero only after a refund clawed back points the member had already spent
    (a stated debt: shown to the member, nothing can be spent, later earnings pay it back first)."""

    __tablename__ = "loyalty_member"

    member_id: Mapped[int] = mapped_column(ForeignKey("members_member.id"), primary_key=True)
    points_balance: Mapped[int] = mapped_column(BigInteger, default=0)
    paid_total_cents: Mapped[int] = mapped_column(BigInteger, default=0)  # delivered orders, net of refunds
    level_id: Mapped[int | None] = mapped_column(ForeignKey("loyalty_level.id", ondelete="SET NULL"), nullable=True)
    level_since: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class PointsLot(Base):
    """Points earned by one delivery, what is left of them and when they expire; spent oldest-expiring first."""

    __tablename__ = "loyalty_points_lot"
    __table_args__ = (
        CheckConstraint("remaining >= 0 AND remaining <= points", name="remaining_within_points"),
        Index("ix_loyalty_points_lot_member_expiry", "member_id", "expires_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members_member.id"))
    order_id: Mapped[int | None] = mapped_column(ForeignKey("orders_order.id"), nullable=True, index=True)
    points: Mapped[int] = mapped_column(BigInteger)
    remaining: Mapped[int] = mapped_column(BigInteger)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, index=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class PointsKind(enum.StrEnum):
    EARNED = "earned"  # on delivery: paid × points per yuan × the level's multiplier
    SPENT = "spent"  # at checkout, through the price calculation
    RETURNED = "returned"  # the order that spent them was cancelled, expired or refunded before delivery
    EXPIRED = "expired"
    CLAWED_BACK = "clawed_back"  # a refund of the order that earned them (or given back when the refund failed)
    ADJUSTED = "adjusted"  # an operator's correction, with a reason


class PointsMovement(Base):
    """One change of a member's points (积分流水), with the balance after it; `lot_id`: the lot it drew on or
    filled. Several rows of one event share its `reference` (one ledger posting)."""

    __tablename__ = "loyalty_points_movement"
    __table_args__ = (Index("ix_loyalty_points_movement_member", "member_id", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members_member.id"))
    kind: Mapped[str] = mapped_column(String(16))
    points: Mapped[int] = mapped_column(BigInteger)  # + in, - out
    balance_after: Mapped[int] = mapped_column(BigInteger)
    order_id: Mapped[int | None] = mapped_column(ForeignKey("orders_order.id"), nullable=True, index=True)
    lot_id: Mapped[int | None] = mapped_column(ForeignKey("loyalty_points_lot.id"), nullable=True, index=True)
    reference: Mapped[str] = mapped_column(String(120), index=True)
    note: Mapped[str] = mapped_column(String(500), default="")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
