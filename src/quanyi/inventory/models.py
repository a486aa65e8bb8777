"""Card-key stock tables: import batches, the encrypted keys themselves, and the reveal audit log."""

from __future__ import annotations

import datetime as dt
import enum

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    LargeBinary,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from quanyi.db import Base, UTCDateTime, index_where_set, utcnow
from quanyi.scope import owner_column

__all__ = ["CardKey", "CardKeyStatus", "ImportBatch", "ImportJob", "ImportJobStatus", "ImportProblem", "KeyReveal",
           "LeakReport", "SharedCode", "SharedCodeUse"]

# SQLite only auto-increments an "INTEGER PRIMARY KEY"; PostgreSQL gets a 64-bit id.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class CardKeyStatus(enum.StrEnum):
    AVAILABLE = "available"  # in stock, can be reserved
    RESERVED = "reserved"  # held for a pending order until it is paid or expires
    SOLD = "sold"  # delivered to an order; never changes hands again
    VOIDED = "voided"  # withdrawn by the operator (batch voided)
    # Taken back from its buyer by a refund (退款收回): terminal, never resold, never revealed again.
    REFUNDED = "refunded"
    # 循环卡密: one code handed to many buyers (inventory_shared_code counts them); never reserved or sold itself.
    SHARED = "shared"


class ImportBatch(Base):
    """One import of card keys (导入批次); the unit an operator can void."""

    __tablename__ = "inventory_import_batch"
    # Always its SKU's merchant (the SKU's (id, merchant_id) is the target).
    __table_args__ = (ForeignKeyConstraint(["sku_id", "merchant_id"], ["catalog_sku.id", "catalog_sku.merchant_id"]),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    sku_id: Mapped[int] = mapped_column(Integer, index=True)
    merchant_id: Mapped[int] = owner_column()
    source_name: Mapped[str] = mapped_column(String(200), default="")
    imported_by: Mapped[str] = mapped_column(String(64), default="")
    added_count: Mapped[int] = mapped_column(Integer, default=0)
    duplicate_count: Mapped[int] = mapped_column(Integer, default=0)
    invalid_count: Mapped[int] = mapped_column(Integer, default=0)
    voided_count: Mapped[int] = mapped_column(Integer, default=0)
    void_reason: Mapped[str | None] = mapped_column(String(500), nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    voided_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # Ledger: what one key of this batch cost the shop (cost of goods on delivery); None = unknown, counted as 0.
    unit_cost_cents: Mapped[int | None] = mapped_column(BigInteger, nullable=True)


class CardKey(Base):
    """One card key (卡密). The code exists only as ciphertext; `fingerprint` dedupes without decrypting."""

    __tablename__ = "inventory_card_key"
    __table_args__ = (
        # A code can exist once on the whole platform, whatever its status and whichever merchant holds it:
        # a sold code re-imported (or the same file imported into two SKUs, or sold to two merchants by one
        # supplier) would otherwise be delivered twice.
        UniqueConstraint("fingerprint"),
        Index("ix_inventory_card_key_stock", "sku_id", "status", "expires_at"),
        # Keys on sale have no order, and almost none a leak report: no entry for them (section 23).
        index_where_set("inventory_card_key", "order_id"),
        index_where_set("inventory_card_key", "leak_report_id"),
        # A key always belongs to its SKU's merchant: keys of two merchants can never mix.
        ForeignKeyConstraint(["sku_id", "merchant_id"], ["catalog_sku.id", "catalog_sku.merchant_id"]),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    sku_id: Mapped[int] = mapped_column(Integer)
    merchant_id: Mapped[int] = owner_column(index=False)  # the stock index leads with sku_id, which implies it
    batch_id: Mapped[int] = mapped_column(ForeignKey("inventory_import_batch.id"), index=True)
    status: Mapped[str] = mapped_column(String(16), default=CardKeyStatus.AVAILABLE)
    order_id: Mapped[int | None] = mapped_column(ForeignKey("orders_order.id"), nullable=True)
    fingerprint: Mapped[bytes] = mapped_column(LargeBinary(32))
    key_id: Mapped[str] = mapped_column(String(32))
    ciphertext: Mapped[bytes] = mapped_column(LargeBinary)
    expires_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    reserved_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    sold_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    voided_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # Reported leaked (泄露) by a leak trace: never sold afterwards, whatever its status.
    leaked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    leak_report_id: Mapped[int | None] = mapped_column(ForeignKey("inventory_leak_report.id"), nullable=True)
    # 自选卡密: what buyers see of this key when they pick one (e.g. "账号 #12 · 80级"), given by the operator;
    # never derived from the code. None: not offered for picking (still sold in stock order).
    public_label: Mapped[str | None] = mapped_column(String(100), nullable=True)


class LeakReport(Base):
    """One leak trace run (泄露追查): who submitted which leaked codes, and what was found."""

    __tablename__ = "inventory_leak_report"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # Whose staff ran the trace (the platform's store for platform staff); a merchant's trace sees only its keys.
    merchant_id: Mapped[int] = owner_column()
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    submitted_count: Mapped[int] = mapped_column(Integer, default=0)
    found_count: Mapped[int] = mapped_column(Integer, default=0)
    withdrawn_count: Mapped[int] = mapped_column(Integer, default=0)  # unsold leaked keys taken out of stock
    voided_batch_ids: Mapped[str] = mapped_column(String(500), default="")  # comma-separated


class KeyReveal(Base):
    """Audit row: someone was shown the plaintext of a card key.

    Buyer reveals (channel api/web/email) carry the order; staff reveals (channel "staff") carry the staff
    member (`actor`) and why (`reason`), and the order only if the key was sold.
    """

    __tablename__ = "inventory_key_reveal"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    card_key_id: Mapped[int] = mapped_column(ForeignKey("inventory_card_key.id"), index=True)
    order_id: Mapped[int | None] = mapped_column(ForeignKey("orders_order.id"), nullable=True, index=True)
    revealed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    channel: Mapped[str] = mapped_column(String(16))
    ip: Mapped[str] = mapped_column(String(64), default="")
    user_agent: Mapped[str] = mapped_column(String(512), default="")
    actor: Mapped[str | None] = mapped_column(String(64), nullable=True)
    reason: Mapped[str | None] = mapped_column(String(500), nullable=True)


class ImportJobStatus(enum.StrEnum):
    QUEUED = "queued"  # uploaded, waiting for a worker
    RUNNING = "running"  # a worker holds the lease and imports chunk by chunk
    DONE = "done"
    FAILED = "failed"  # `error_code` says why; keys of chunks already committed stay (in the job's batch)


class ImportJob(Base):
    """A streamed import (导入任务): the upload sits encrypted in a spool file, a worker imports it in chunks,
    each chunk one short transaction that also advances the counters here, so a crash resumes after the last
    committed chunk and no chunk is imported twice."""

    __tablename__ = "inventory_import_job"
    __table_args__ = (ForeignKeyConstraint(["sku_id", "merchant_id"], ["catalog_sku.id", "catalog_sku.merchant_id"]),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    sku_id: Mapped[int] = mapped_column(Integer, index=True)
    merchant_id: Mapped[int] = owner_column()
    status: Mapped[str] = mapped_column(String(16), default=ImportJobStatus.QUEUED, index=True)
    source_name: Mapped[str] = mapped_column(String(200), default="")
    imported_by: Mapped[str] = mapped_column(String(64), default="")
    unit_cost_cents: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    batch_id: Mapped[int | None] = mapped_column(ForeignKey("inventory_import_batch.id"), nullable=True)
    # The spool: file name in QUANYI_IMPORT_SPOOL_DIR, its per-job key sealed by the card-key cipher, encoding.
    spool_name: Mapped[str] = mapped_column(String(64))
    spool_key_id: Mapped[str] = mapped_column(String(32))
    spool_key: Mapped[bytes] = mapped_column(LargeBinary)
    encoding: Mapped[str] = mapped_column(String(16), default="utf-8")
    bytes_total: Mapped[int] = mapped_column(BigInteger, default=0)
    # Progress, committed with each chunk: the plaintext offset after the last whole line imported.
    bytes_done: Mapped[int] = mapped_column(BigInteger, default=0)
    lines_read: Mapped[int] = mapped_column(Integer, default=0)
    added: Mapped[int] = mapped_column(Integer, default=0)
    duplicates: Mapped[int] = mapped_column(Integer, default=0)
    invalid: Mapped[int] = mapped_column(Integer, default=0)
    content_seen: Mapped[bool] = mapped_column(Boolean, default=False)  # past the line that may be a header
    error_code: Mapped[str | None] = mapped_column(String(64), nullable=True)
    error: Mapped[str | None] = mapped_column(String(500), nullable=True)
    lease_owner: Mapped[str | None] = mapped_column(String(100), nullable=True)
    lease_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)


class ImportProblem(Base):
    """A duplicate or invalid line of an import job (the first MAX_REPORTED_LINES of each kind)."""

    __tablename__ = "inventory_import_problem"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("inventory_import_job.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # "duplicate" | "invalid"
    line: Mapped[int] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(String(500))


class SharedCode(Base):
    """循环卡密: one code (a shared account, a universal code) sold to many buyers, up to `sale_limit` units.
    The code itself is a CardKey row (status `shared`: encrypted, fingerprinted, leak-traceable, reveals audited)."""

    __tablename__ = "inventory_shared_code"
    __table_args__ = (
        # Last line of defence behind the conditional UPDATE that claims units: never sold past the limit.
        CheckConstraint("sold_count >= 0 AND sold_count <= sale_limit", name="sold_within_limit"),
        CheckConstraint("sale_limit >= 1", name="sale_limit_positive"),
        ForeignKeyConstraint(["sku_id", "merchant_id"], ["catalog_sku.id", "catalog_sku.merchant_id"]),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    sku_id: Mapped[int] = mapped_column(Integer, index=True)
    merchant_id: Mapped[int] = owner_column(index=False)
    card_key_id: Mapped[int] = mapped_column(ForeignKey("inventory_card_key.id"), unique=True)
    sale_limit: Mapped[int] = mapped_column(Integer)
    # Units held by unpaid orders and sold: what is left to sell is sale_limit - sold_count.
    sold_count: Mapped[int] = mapped_column(Integer, default=0)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_by: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class SharedCodeUse(Base):
    """The units of a shared code one order holds (reserved until paid, then sold; released if it never pays)."""

    __tablename__ = "inventory_shared_code_use"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    shared_code_id: Mapped[int] = mapped_column(ForeignKey("inventory_shared_code.id"), index=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders_order.id"), unique=True)
    quantity: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16))  # reserved | sold | released
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    sold_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
