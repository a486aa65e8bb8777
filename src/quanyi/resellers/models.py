"""Reseller tables (下游对接): the reseller with its API identity, its signing secrets (rotatable, sealed), its
price list, the orders it placed (by its own order number), and the request nonces seen recently."""

from __future__ import annotations

import datetime as dt
import enum

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Index, Integer, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from quanyi.db import Base, UTCDateTime, utcnow

__all__ = ["Reseller", "ResellerStatus", "ResellerSecret", "ResellerPrice", "ResellerOrder", "ResellerNonce"]


class ResellerStatus(enum.StrEnum):
    ACTIVE = "active"
    SUSPENDED = "suspended"  # every API request refused (account_suspended); callbacks still go out


class Reseller(Base):
    """A downstream shop (下游/分销商) buying through the open API, paying from its prepaid balance (`account_id`,
    a ledger customer account). `app_id` identifies it on every signed request."""

    __tablename__ = "resellers_reseller"
    __table_args__ = (CheckConstraint("rate_limit_per_minute >= 0", name="rate_limit_not_negative"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(48), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    contact_email: Mapped[str] = mapped_column(String(254))
    app_id: Mapped[str] = mapped_column(String(64), unique=True)
    status: Mapped[str] = mapped_column(String(16), default=ResellerStatus.ACTIVE)
    account_id: Mapped[int] = mapped_column(ForeignKey("ledger_customer_account.id"), unique=True)
    # Signed requests per minute (0: no limit); counted by the shop's rate limiter (Redis when configured).
    rate_limit_per_minute: Mapped[int] = mapped_column(Integer, default=600)
    # Where order callbacks go when an order names no callback_url of its own.
    callback_url: Mapped[str | None] = mapped_column(String(500), nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class ResellerSecret(Base):
    """A signing secret, sealed (AES-256-GCM under the card-key keyring, bound to the reseller's app id): HMAC
    verification needs the secret itself, so it cannot be stored as a one-way hash. The newest is current;
    after a rotation the previous one keeps working until `expires_at` (the overlap period)."""

    __tablename__ = "resellers_secret"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    reseller_id: Mapped[int] = mapped_column(ForeignKey("resellers_reseller.id"), index=True)
    key_id: Mapped[str] = mapped_column(String(32))
    ciphertext: Mapped[bytes] = mapped_column(LargeBinary)
    hint: Mapped[str] = mapped_column(String(8))  # the last 4 characters, to tell secrets apart
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_by: Mapped[str] = mapped_column(String(64), default="admin")


class ResellerPrice(Base):
    """A reseller's own price for one SKU (its price list); SKUs without one sell at their list price."""

    __tablename__ = "resellers_price"
    __table_args__ = (UniqueConstraint("reseller_id", "sku_id"),
                      CheckConstraint("price_cents > 0", name="price_positive"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    reseller_id: Mapped[int] = mapped_column(ForeignKey("resellers_reseller.id"), index=True)
    sku_id: Mapped[int] = mapped_column(ForeignKey("catalog_sku.id"), index=True)
    price_cents: Mapped[int] = mapped_column(BigInteger)
    updated_by: Mapped[str] = mapped_column(String(64), default="admin")
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class ResellerOrder(Base):
    """An order a reseller placed, under its own order number (the protocol's idempotency_key): the same number
    with the same terms returns this order; other terms are refused. The unique key is the concurrency guard."""

    __tablename__ = "resellers_order"
    __table_args__ = (UniqueConstraint("reseller_id", "idempotency_key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    reseller_id: Mapped[int] = mapped_column(ForeignKey("resellers_reseller.id"))
    idempotency_key: Mapped[str] = mapped_column(String(64))
    # Set in the same transaction right after the row is written (the row first: a concurrent request with
    # the same number waits on the unique key instead of placing a second order).
    order_id: Mapped[int | None] = mapped_column(ForeignKey("orders_order.id"), unique=True, nullable=True)
    kind: Mapped[str] = mapped_column(String(32))  # card_key | direct_recharge
    product_code: Mapped[str] = mapped_column(String(64))
    quantity: Mapped[int] = mapped_column(Integer)
    account: Mapped[str | None] = mapped_column(String(128), nullable=True)  # direct recharge: what to credit
    callback_url: Mapped[str | None] = mapped_column(String(500), nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class ResellerNonce(Base):
    """A request nonce seen within the replay window (database store; Redis keeps them when configured)."""

    __tablename__ = "resellers_nonce"
    __table_args__ = (Index("ix_resellers_nonce_seen_at", "seen_at"),)

    reseller_id: Mapped[int] = mapped_column(ForeignKey("resellers_reseller.id"), primary_key=True)
    nonce: Mapped[str] = mapped_column(String(64), primary_key=True)
    seen_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
