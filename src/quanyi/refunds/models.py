"""Refund tables: the refund (also the outbox row its gateway call is executed from), its audit trail,
and the card keys it took back from the buyer."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from quanyi.db import Base, UTCDateTime, utcnow

__all__ = ["Refund", "RefundEvent", "RefundKey"]

BigId = BigInteger().with_variant(Integer(), "sqlite")


class Refund(Base):
    """One refund of (part of) one payment. `refund_no` is ours and is the gateway's idempotency key:
    every attempt for this refund, however many and by whichever worker, sends the same number."""

    __tablename__ = "refunds_refund"
    __table_args__ = (
        CheckConstraint("amount_cents > 0", name="amount_positive"),
        CheckConstraint("quantity >= 0", name="quantity_not_negative"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    refund_no: Mapped[str] = mapped_column(String(32), unique=True)
    # The admin's Idempotency-Key: the same request sent twice creates one refund.
    request_key: Mapped[str | None] = mapped_column(String(64), unique=True, nullable=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders_order.id"), index=True)
    payment_id: Mapped[int] = mapped_column(ForeignKey("payments_payment.id"), index=True)
    gateway: Mapped[str] = mapped_column(String(32))
    amount_cents: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    quantity: Mapped[int] = mapped_column(Integer, default=0)  # card keys withdrawn by this refund
    reason: Mapped[str] = mapped_column(String(500))
    requested_by: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), index=True)
    gateway_refund_no: Mapped[str | None] = mapped_column(String(64), nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True, index=True)
    # A worker owns the gateway call until then (see service.claim_refund); after that it counts as crashed.
    lease_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_error: Mapped[str | None] = mapped_column(String(500), nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    completed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)


class RefundEvent(Base):
    """Audit trail of a refund: who moved it, from what to what, why, when."""

    __tablename__ = "refunds_refund_event"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    refund_id: Mapped[int] = mapped_column(ForeignKey("refunds_refund.id"), index=True)
    from_status: Mapped[str | None] = mapped_column(String(16), nullable=True)
    to_status: Mapped[str] = mapped_column(String(16))
    actor: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(String(500))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class RefundKey(Base):
    """A card key a refund took back from its buyer (the key's status is REFUNDED)."""

    __tablename__ = "refunds_refund_key"

    refund_id: Mapped[int] = mapped_column(ForeignKey("refunds_refund.id"), primary_key=True)
    card_key_id: Mapped[int] = mapped_column(ForeignKey("inventory_card_key.id"), primary_key=True, unique=True)
