"""The sandbox gateway's own records (what a real gateway keeps on its side)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import BigInteger, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from quanyi.db import Base, UTCDateTime, utcnow

__all__ = ["SandboxTrade", "SandboxRefund"]


class SandboxTrade(Base):
    __tablename__ = "payments_sandbox_trade"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    trade_no: Mapped[str] = mapped_column(String(64), unique=True)
    payment_no: Mapped[str] = mapped_column(String(32), unique=True)  # one trade per merchant payment
    amount_cents: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    subject: Mapped[str] = mapped_column(String(300))
    notify_url: Mapped[str] = mapped_column(String(1000))
    return_url: Mapped[str] = mapped_column(String(1000))
    paid_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    notify_status: Mapped[str] = mapped_column(String(16), default="pending")  # pending|acknowledged|failed
    notify_attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_notify_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    last_error: Mapped[str | None] = mapped_column(String(500), nullable=True)


class SandboxRefund(Base):
    """A refund the sandbox made on a trade; refund_no is the merchant's idempotency key."""

    __tablename__ = "payments_sandbox_refund"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    refund_no: Mapped[str] = mapped_column(String(40), unique=True)  # the merchant's out_request_no
    gateway_refund_no: Mapped[str] = mapped_column(String(64), unique=True)
    trade_id: Mapped[int] = mapped_column(ForeignKey("payments_sandbox_trade.id"), index=True)
    amount_cents: Mapped[int] = mapped_column(BigInteger)
    reason: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
