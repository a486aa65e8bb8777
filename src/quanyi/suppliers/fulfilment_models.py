"""Fulfilment tables: one job per paid order that suppliers must fill, and every attempt at a supplier.

The attempt row is committed (state `sending`, with its unique idempotency key) before the supplier
is called, so a worker that dies mid-call leaves a record the next worker resolves by asking the
supplier with the same key, instead of buying a second time.
"""

from __future__ import annotations

import datetime as dt
import enum

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy import Enum as SAEnum
from sqlalchemy.orm import Mapped, mapped_column

from quanyi.db import Base, UTCDateTime, utcnow
from quanyi.suppliers.adapter import ProductKind
from quanyi.suppliers.attempt_state import AttemptState

__all__ = ["FulfilmentJob", "JobStatus", "SupplierAttempt"]

BigId = BigInteger().with_variant(Integer(), "sqlite")


def _enum(kind: type[enum.Enum]) -> SAEnum:
    return SAEnum(kind, native_enum=False, length=32, values_callable=lambda e: [m.value for m in e])


class JobStatus(enum.StrEnum):
    OPEN = "open"  # work left: buy, ask about an unclear attempt, or wait for a recharge
    DONE = "done"  # the order was delivered or handed to refunds


class FulfilmentJob(Base):
    """Fill one paid order from suppliers (供应商履约). Claimed by one worker at a time through a lease."""

    __tablename__ = "suppliers_fulfilment_job"
    __table_args__ = (
        UniqueConstraint("order_id"),  # one job per order, however often payment is applied
        Index("ix_suppliers_fulfilment_job_due", "status", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders_order.id"))
    kind: Mapped[ProductKind] = mapped_column(_enum(ProductKind))
    status: Mapped[JobStatus] = mapped_column(_enum(JobStatus), default=JobStatus.OPEN)
    next_attempt_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    locked_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    lease_owner: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # delivered | refund_pending | abandoned (the order left "paid" by another way, e.g. refunded by hand)
    outcome: Mapped[str | None] = mapped_column(String(16), nullable=True)
    rounds: Mapped[int] = mapped_column(Integer, default=0)  # claims so far (backoff of unclear attempts)
    last_error: Mapped[str | None] = mapped_column(String(500), nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)


class SupplierAttempt(Base):
    """One purchase or recharge sent (or about to be sent) to one supplier for one order."""

    __tablename__ = "suppliers_attempt"
    __table_args__ = (
        # The supplier dedupes on this key: the same key can never become two purchases there,
        # and here it can never name two attempts.
        UniqueConstraint("idempotency_key"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("suppliers_fulfilment_job.id"), index=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders_order.id"), index=True)
    supplier_id: Mapped[int] = mapped_column(ForeignKey("suppliers_supplier.id"), index=True)
    supplier_product_id: Mapped[int] = mapped_column(ForeignKey("suppliers_product.id"))
    product_code: Mapped[str] = mapped_column(String(128))
    kind: Mapped[ProductKind] = mapped_column(_enum(ProductKind))
    idempotency_key: Mapped[str] = mapped_column(String(64))
    state: Mapped[AttemptState] = mapped_column(_enum(AttemptState), default=AttemptState.SENDING)
    quantity: Mapped[int] = mapped_column(Integer)
    max_unit_cost_cents: Mapped[int] = mapped_column(BigInteger)
    unit_cost_cents: Mapped[int | None] = mapped_column(BigInteger, nullable=True)  # what the supplier charged
    charged_cents: Mapped[int] = mapped_column(BigInteger, default=0)  # debited from its prepaid balance
    supplier_order_no: Mapped[str | None] = mapped_column(String(128), nullable=True)
    codes_received: Mapped[int] = mapped_column(Integer, default=0)
    codes_duplicate: Mapped[int] = mapped_column(Integer, default=0)  # codes we already had: not delivered
    batch_id: Mapped[int | None] = mapped_column(ForeignKey("inventory_import_batch.id"), nullable=True)
    recharge_account: Mapped[str | None] = mapped_column(String(128), nullable=True)
    error: Mapped[str | None] = mapped_column(String(500), nullable=True)
    checks: Mapped[int] = mapped_column(Integer, default=0)  # queries sent about it
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
