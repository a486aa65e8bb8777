"""Payment attempts of orders, as the shop records them."""

from __future__ import annotations

import datetime as dt
import enum

from sqlalchemy import BigInteger, Boolean, ForeignKey, Index, Integer, LargeBinary, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from quanyi.db import Base, UTCDateTime, index_where_set, utcnow

__all__ = ["Payment", "PaymentStatus", "GatewayEvent", "GatewayConfig", "OPEN_PAYMENT_KEY", "OPEN_PAYMENT_WHERE"]


class PaymentStatus(enum.StrEnum):
    CREATED = "created"  # buyer sent to the cashier
    SUCCEEDED = "succeeded"  # gateway confirmed the money; the order was paid by this payment
    # Money arrived for an order another payment had already paid: kept on record for a refund.
    DUPLICATE = "duplicate"


# An order has at most one open payment at a gateway for an amount: two starts of its payment that race (separate
# connections; on PostgreSQL the second one's statement cannot see the first one's row, committed after its snapshot)
# meet on this index, and the second one answers the first one's payment (payments.service, ON CONFLICT).
OPEN_PAYMENT_KEY = ("order_id", "gateway", "amount_cents")
OPEN_PAYMENT_WHERE = f"status = '{PaymentStatus.CREATED.value}' AND raced_with IS NULL"


class Payment(Base):
    __tablename__ = "payments_payment"
    __table_args__ = (
        # One gateway transaction can pay for exactly one of our payments.
        UniqueConstraint("gateway", "gateway_trade_no"),
        Index("uq_payments_payment_open", *OPEN_PAYMENT_KEY, unique=True,
              postgresql_where=text(OPEN_PAYMENT_WHERE), sqlite_where=text(OPEN_PAYMENT_WHERE)),
        # Set only once a trade query was scheduled (payments.reconciliation): no entry for the others (section 23).
        index_where_set("payments_payment", "next_query_at"),
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
    # What the buyer scans when the gateway's checkout is a QR code (Alipay precreate, WeChat Native).
    checkout_qr_code: Mapped[str | None] = mapped_column(String(1000), nullable=True)
    # A DUPLICATE recorded from a second real transaction of an already paid payment (two checkout sessions
    # paid): the payment number the gateway knows that transaction under. Refunds and queries use it.
    duplicate_of: Mapped[str | None] = mapped_column(String(32), nullable=True)

    # Only on an open payment that a racing start created beside another one before the index above existed
    # (migration 5b0c3f1e9a27): the payment it raced. It stays payable; the index leaves it out.
    raced_with: Mapped[str | None] = mapped_column(String(32), nullable=True)

    @property
    def gateway_payment_no(self) -> str:
        """Our reference as the gateway knows it (its out_trade_no / metadata)."""
        return self.duplicate_of or self.payment_no
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    paid_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    # Active trade queries (主动查单) of an unconfirmed payment: how often, when last, when next.
    query_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    last_queried_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    next_query_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)


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


class GatewayConfig(Base):
    """A shop's account at a payment gateway (merchant id, keys, secrets), encrypted at rest.

    The whole configuration is one AES-256-GCM ciphertext under the shop's keyring (key id per row, so the
    keyring can rotate), with the gateway's name bound in as associated data: a row copied onto another
    gateway fails to decrypt instead of configuring it.
    """

    __tablename__ = "payments_gateway_config"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    gateway: Mapped[str] = mapped_column(String(32), unique=True)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    key_id: Mapped[str] = mapped_column(String(32))
    ciphertext: Mapped[bytes] = mapped_column(LargeBinary)
    updated_by: Mapped[str] = mapped_column(String(64), default="admin")
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
