"""Payment attempts of orders, as the shop records them."""

from __future__ import annotations

import datetime as dt
import enum

from sqlalchemy import BigInteger, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from quanyi.db import Base, UTCDateTime, utcnow

__all__ = ["Payment", "PaymentStatus", "GatewayEvent"]


class PaymentStatus(enum.StrEnum):
    CREATED = "created"  # buyer sent to the cashier
    SUCCEEDED = "succeeded"  # gateway confirmed the money; the order was paid by this payment
    # Money arrived for an order another payment had already paid: kept on record for a refund.
    DUPLICATE = "duplicate"


class Payment(Base):
    __tablename__ = "payments_payment"
    __table_args__ = (
        # One gateway transaction can pay for exactly one of our payments.
        UniqueConstraint("gateway", "gateway_trade_no"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    payment_no: Mapped[str] = mapped_column(String(32), unique=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders_order.id"), index=True)
    gateway: Mapped[str] = mapped_column(String(32))
    amount_cents: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    status: Mapped[str] = mapped_column(String(16), default=PaymentStatus.CREATED)
    gateway_trade_no: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # The gateway's id for the checkout it opened (e.g. a Stripe checkout session), for active queries.
    gateway_session_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    paid_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    # Active trade queries (主动查单) of an unconfirmed payment: how often, when last, when next.
    query_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    last_queried_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    next_query_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True, index=True)


class GatewayEvent(Base):
    """Gateway events (notifications with an id of their own, e.g. Stripe's) already processed.

    Written in the same transaction as the event's effect: a replayed event finds its row and changes
    nothing; an event whose processing rolled back left no row and is processed when it comes again.
    """

    __tablename__ = "payments_gateway_event"
    __table_args__ = (UniqueConstraint("gateway", "event_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    gateway: Mapped[str] = mapped_column(String(32))
    event_id: Mapped[str] = mapped_column(String(128))
    payment_no: Mapped[str | None] = mapped_column(String(32), nullable=True)
    received_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
