"""Risk tables: rate counters, rules, the score policy, sliding-window counter events, the decision log,
one-time verification challenges, per-order signals and the review audit."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, Float, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from quanyi.db import Base, UTCDateTime, index_where_set, utcnow

__all__ = ["RateCounter", "RiskRule", "RiskPolicy", "CounterEvent", "RiskDecisionLog", "RiskChallenge",
           "OrderRiskSignals", "ReviewAction"]

BigId = BigInteger().with_variant(Integer(), "sqlite")


class RateCounter(Base):
    __tablename__ = "risk_rate_counter"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    window_start: Mapped[int] = mapped_column(BigInteger, primary_key=True)  # unix seconds
    count: Mapped[int] = mapped_column(Integer, default=0)


class RiskRule(Base):
    """One configurable rule (风控规则). `params` is validated by the Pydantic model of its `kind`."""

    __tablename__ = "risk_rule"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    kind: Mapped[str] = mapped_column(String(32))
    params: Mapped[dict[str, Any]] = mapped_column(JSON)
    stages: Mapped[list[str]] = mapped_column(JSON)  # order / payment / delivery
    action: Mapped[str] = mapped_column(String(16))  # allow (score only) / challenge / review / deny
    score: Mapped[int] = mapped_column(Integer, default=0)
    reason_code: Mapped[str] = mapped_column(String(64))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class RiskPolicy(Base):
    """Score thresholds (one row, id 1): a total score at or above a threshold yields that decision."""

    __tablename__ = "risk_policy"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    challenge_at: Mapped[int | None] = mapped_column(Integer, nullable=True)
    review_at: Mapped[int | None] = mapped_column(Integer, nullable=True)
    deny_at: Mapped[int | None] = mapped_column(Integer, nullable=True)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class CounterEvent(Base):
    """One event of a sliding-window counter (database backend). Pruned once older than the retention."""

    __tablename__ = "risk_counter_event"
    __table_args__ = (Index("ix_risk_counter_event_key_at", "key", "at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    key: Mapped[str] = mapped_column(String(200))
    member: Mapped[str] = mapped_column(String(200))
    at: Mapped[float] = mapped_column(Float)  # unix seconds


class RiskDecisionLog(Base):
    """Every evaluation that did not simply allow (风控决策日志)."""

    __tablename__ = "risk_decision"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    stage: Mapped[str] = mapped_column(String(16))
    order_id: Mapped[int | None] = mapped_column(Integer, nullable=True, index=True)
    decision: Mapped[str] = mapped_column(String(16))
    score: Mapped[int] = mapped_column(Integer)
    rules_hit: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    signals: Mapped[dict[str, Any]] = mapped_column(JSON)
    outcome: Mapped[str] = mapped_column(String(32))  # what happened: refused, challenged, verified, held ...
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)


class RiskChallenge(Base):
    """A one-time code sent to the buyer's contact (验证码). Only an HMAC of the code is stored."""

    __tablename__ = "risk_challenge"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    public_id: Mapped[str] = mapped_column(String(40), unique=True)
    contact: Mapped[str] = mapped_column(String(254))
    channel: Mapped[str] = mapped_column(String(16))
    code_hash: Mapped[str] = mapped_column(String(64))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    verified_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class OrderRiskSignals(Base):
    """What risk control knew about an order when it was placed, read again at payment and delivery."""

    __tablename__ = "risk_order_signals"
    # (ip | device | contact, at): the stock held by one client's recent unpaid orders (risk.holdings).
    __table_args__ = (Index("ix_risk_order_signals_contact_at", "contact", "at"),
                      Index("ix_risk_order_signals_ip_at", "ip", "at"),
                      Index("ix_risk_order_signals_device_at", "device", "at"),
                      index_where_set("risk_order_signals", "payer"))

    order_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ip: Mapped[str] = mapped_column(String(64))
    device: Mapped[str] = mapped_column(String(128))
    contact: Mapped[str] = mapped_column(String(254))
    sku_id: Mapped[int] = mapped_column(Integer)
    quantity: Mapped[int] = mapped_column(Integer)
    amount_cents: Mapped[int] = mapped_column(BigInteger)
    at: Mapped[float] = mapped_column(Float)  # unix seconds on the risk clock
    paid: Mapped[bool] = mapped_column(Boolean, default=False)
    review_reason: Mapped[str | None] = mapped_column(String(300), nullable=True)  # held at payment if set
    # Keyed hash of the paying account (rules.payer_hash), once paid and named by the gateway.
    payer: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # The payment's moment on the risk clock (unix seconds), when the database counters count this order's `paid`
    # from this row instead of writing `paid:<ip|device|contact>` counter events (risk.payment_stage.paid_counted_here;
    # NULL: not paid, or its events were written). Not indexed: read beside `at` through the (dimension, at) indexes.
    paid_risk_at: Mapped[float | None] = mapped_column(Float, nullable=True)


class ReviewAction(Base):
    """A staff decision on a held order (审核记录): who, what, why, when."""

    __tablename__ = "risk_review_action"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    order_id: Mapped[int] = mapped_column(Integer, index=True)
    action: Mapped[str] = mapped_column(String(16))  # approve / reject
    actor: Mapped[str] = mapped_column(String(100))
    reason: Mapped[str] = mapped_column(String(500))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
