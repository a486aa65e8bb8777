"""The notification outbox: one row per message to send, written in the transaction of the state change."""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any

from sqlalchemy import JSON, BigInteger, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from quanyi.db import Base, UTCDateTime, utcnow
from quanyi.scope import owner_column

__all__ = ["OutboxMessage", "MessageStatus", "Channel", "Kind"]

BigId = BigInteger().with_variant(Integer(), "sqlite")


class Channel(enum.StrEnum):
    EMAIL = "email"
    SMS = "sms"
    WECOM = "wecom"  # 企业微信群机器人
    DINGTALK = "dingtalk"  # 钉钉群机器人
    WEBHOOK = "webhook"  # signed callback to an account customer's server (reseller open API)


class Kind(enum.StrEnum):
    ORDER_DELIVERED = "order_delivered"  # to the buyer
    ORDER_PAID = "order_paid"  # merchant: new paid order
    LOW_STOCK = "low_stock"  # merchant: a SKU fell below the threshold
    DELIVERY_FAILED = "delivery_failed"  # merchant: paid but not delivered, refund needed
    RISK_HOLD = "risk_hold"  # merchant: an order is held for review
    VERIFICATION_CODE = "verification_code"  # to the buyer: one-time code to confirm a checkout (risk control)
    MEMBER_CODE = "member_code"  # to a buyer: one-time code to log in / sign up / add a contact (members)
    ORDER_REFUNDED = "order_refunded"  # account customer: money of its order went back to its balance
    ENTERPRISE_TOP_UP_REQUESTED = "enterprise_top_up_requested"  # operators: a bank transfer to check and confirm
    ENTERPRISE_TOP_UP_PAID_TWICE = "enterprise_top_up_paid_twice"  # operators: refund a second payment at the gateway
    REFUND_AWAITING_STAFF = "refund_awaiting_staff"  # the order's merchant: a refund refused or stalled (退款待处理)


class MessageStatus(enum.StrEnum):
    PENDING = "pending"  # waiting for its next_attempt_at
    SENDING = "sending"  # claimed by a worker until locked_until
    SENT = "sent"
    DEAD = "dead"  # gave up: permanent error or out of attempts; an operator may retry it
    DISCARDED = "discarded"  # a dead message an operator decided not to send (never retried, kept on record)


class OutboxMessage(Base):
    """One message to send (发件箱). Never holds card-key plaintext: keys are decrypted at send time."""

    __tablename__ = "notifications_outbox"
    __table_args__ = (
        # The same event enqueued twice (a retried transaction, two hooks) makes one message.
        UniqueConstraint("dedupe_key"),
        # The worker's claim query: due pending rows and expired leases.
        Index("ix_notifications_outbox_due", "status", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    channel: Mapped[str] = mapped_column(String(16))
    recipient: Mapped[str] = mapped_column(String(254))
    kind: Mapped[str] = mapped_column(String(32))
    locale: Mapped[str] = mapped_column(String(8))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    dedupe_key: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16), default=MessageStatus.PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    locked_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    lease_owner: Mapped[str | None] = mapped_column(String(64), nullable=True)
    last_error: Mapped[str | None] = mapped_column(String(1000), nullable=True)
    provider_message_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    order_id: Mapped[int | None] = mapped_column(Integer, nullable=True, index=True)
    # Whose message: the order's or SKU's merchant; platform messages (one-time codes) are the platform store's.
    merchant_id: Mapped[int] = owner_column()
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
