"""Ledger tables: accounts, postings (journal transactions) with their entries, supplier prepaid charges,
and profit-sharing rules (分润规则).

Sign convention: an entry's `amount_cents` is positive for a debit and negative for a credit, so the
entries of every posting sum to zero per currency (checked by `ledger.postings.post`, the only writer).
Entries are never updated or deleted: a correction is a new, reversing posting.
"""

from __future__ import annotations

import datetime as dt
import enum

from sqlalchemy import BigInteger, CheckConstraint, Date, ForeignKey, Index, Integer, String, UniqueConstraint, event
from sqlalchemy.orm import Mapped, mapped_column

from quanyi.db import Base, UTCDateTime, index_where_set, utcnow

__all__ = [
    "AccountKind", "LedgerAccount", "LedgerPosting", "LedgerEntry", "SupplierCharge", "SupplierChargeStatus",
    "ProfitShareRule", "ImmutableLedgerRow", "DeferredPosting", "CustomerAccount", "CustomerAccountStatus",
    "CustomerCharge", "GatewayPayout",
]

BigId = BigInteger().with_variant(Integer(), "sqlite")


class AccountKind(enum.StrEnum):
    ASSET = "asset"  # debit balance is normal (money we hold or are owed)
    LIABILITY = "liability"  # credit balance is normal (money we owe)
    REVENUE = "revenue"
    EXPENSE = "expense"


class LedgerAccount(Base):
    """An account, created on demand; `code` names it, e.g. `gateway_clearing:alipay`, `supplier_prepaid:3`."""

    __tablename__ = "ledger_account"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(128), unique=True)
    kind: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class LedgerPosting(Base):
    """One journal transaction (记账凭证): what caused it and its idempotency reference.

    `reference` is unique: the same event (a payment, a delivery, a refund step, a supplier charge) retried or
    delivered twice finds its posting already there and posts nothing new.
    """

    __tablename__ = "ledger_posting"
    # Only refund postings name a refund and only supplier charges a supplier: no entry for the others (section 23).
    __table_args__ = (index_where_set("ledger_posting", "refund_no"), index_where_set("ledger_posting", "supplier_id"))

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    reference: Mapped[str] = mapped_column(String(160), unique=True)
    kind: Mapped[str] = mapped_column(String(32))  # not indexed: no query selects postings by kind alone
    order_id: Mapped[int | None] = mapped_column(ForeignKey("orders_order.id"), nullable=True, index=True)
    supplier_id: Mapped[int | None] = mapped_column(ForeignKey("suppliers_supplier.id"), nullable=True)
    payment_no: Mapped[str | None] = mapped_column(String(32), nullable=True)
    refund_no: Mapped[str | None] = mapped_column(String(32), nullable=True)
    attempt_key: Mapped[str | None] = mapped_column(String(128), nullable=True)
    memo: Mapped[str] = mapped_column(String(500), default="")
    actor: Mapped[str] = mapped_column(String(64), default="system")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)


class LedgerEntry(Base):
    """One line of a posting: debit (> 0) or credit (< 0) of one account, integer cents."""

    __tablename__ = "ledger_entry"
    __table_args__ = (
        CheckConstraint("amount_cents <> 0", name="amount_not_zero"),
        Index("ix_ledger_entry_account_posting", "account_id", "posting_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    posting_id: Mapped[int] = mapped_column(ForeignKey("ledger_posting.id"), index=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("ledger_account.id"))
    amount_cents: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))


class SupplierChargeStatus(enum.StrEnum):
    CHARGED = "charged"  # debited from the supplier's prepaid balance for one purchase attempt
    RELEASED = "released"  # the purchase definitely failed: credited back


class SupplierCharge(Base):
    """A debit of a supplier's prepaid balance (预付扣款) for one purchase attempt, keyed by its idempotency key."""

    __tablename__ = "ledger_supplier_charge"
    __table_args__ = (CheckConstraint("amount_cents > 0", name="amount_positive"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    reference: Mapped[str] = mapped_column(String(128), unique=True)
    supplier_id: Mapped[int] = mapped_column(ForeignKey("suppliers_supplier.id"), index=True)
    order_id: Mapped[int | None] = mapped_column(ForeignKey("orders_order.id"), nullable=True, index=True)
    amount_cents: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    status: Mapped[str] = mapped_column(String(16), default=SupplierChargeStatus.CHARGED)
    balance_after_cents: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    released_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    release_reason: Mapped[str | None] = mapped_column(String(500), nullable=True)


class CustomerAccountStatus(enum.StrEnum):
    ACTIVE = "active"  # may pay from its balance
    FROZEN = "frozen"  # refunds and top-ups still land; no new payments


class CustomerAccount(Base):
    """A customer's prepaid balance (客户预存款): a reseller (下游) or an enterprise (企业客户) pays orders from it.

    `code` names the owner (`reseller:R001`, `enterprise:ACME`). The balance may go down to
    `-credit_limit_cents` (授信; 0 = pure prepaid); the CHECK is the last line of defence, payments debit it
    with one conditional UPDATE (`ledger.customer_accounts.charge_customer`) so it is never overdrawn.
    """

    __tablename__ = "ledger_customer_account"
    __table_args__ = (
        CheckConstraint("credit_limit_cents >= 0", name="credit_limit_not_negative"),
        CheckConstraint("balance_cents >= -credit_limit_cents", name="balance_within_credit"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    currency: Mapped[str] = mapped_column(String(3), default="CNY")
    status: Mapped[str] = mapped_column(String(16), default=CustomerAccountStatus.ACTIVE)
    balance_cents: Mapped[int] = mapped_column(BigInteger, default=0)
    credit_limit_cents: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class CustomerCharge(Base):
    """One payment taken from a customer's balance (余额扣款), keyed by the payment it paid; refunds of that
    payment credit it back, never more than it took."""

    __tablename__ = "ledger_customer_charge"
    __table_args__ = (
        CheckConstraint("amount_cents > 0", name="amount_positive"),
        CheckConstraint("refunded_cents >= 0 AND refunded_cents <= amount_cents", name="refunded_within_amount"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    payment_no: Mapped[str] = mapped_column(String(32), unique=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("ledger_customer_account.id"), index=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders_order.id"), unique=True)
    amount_cents: Mapped[int] = mapped_column(BigInteger)
    refunded_cents: Mapped[int] = mapped_column(BigInteger, default=0)
    currency: Mapped[str] = mapped_column(String(3))
    balance_after_cents: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)


class ProfitShareRule(Base):
    """How an order's revenue is shared (分润), in basis points of what the buyer paid.

    `scope` is `default` or `sku:<id>`; a SKU's own rule wins over the default. The merchant's share goes to
    `merchant_payable:<merchant_code>`; the distributor commission (分销佣金) to the promoter who brought the order
    (`distributor_bps`) and, in a two-level programme, to the promoter who recruited them (`distributor_l2_bps`),
    capped by the programme's margin rule (see `quanyi.promoters`).
    """

    __tablename__ = "ledger_profit_share_rule"
    __table_args__ = (
        CheckConstraint("merchant_bps >= 0 AND distributor_bps >= 0 AND distributor_l2_bps >= 0",
                        name="bps_not_negative"),
        CheckConstraint("merchant_bps + distributor_bps + distributor_l2_bps <= 10000", name="bps_within_whole"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    scope: Mapped[str] = mapped_column(String(32), unique=True)
    sku_id: Mapped[int | None] = mapped_column(ForeignKey("catalog_sku.id"), nullable=True)
    merchant_code: Mapped[str] = mapped_column(String(64), default="")
    merchant_bps: Mapped[int] = mapped_column(Integer, default=0)
    distributor_bps: Mapped[int] = mapped_column(Integer, default=0)
    distributor_l2_bps: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    updated_by: Mapped[str] = mapped_column(String(64), default="admin")
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class GatewayPayout(Base):
    """A gateway's settlement paid into the shop's bank (渠道结算/打款), from its statement: the net that arrived,
    the fee it kept, the refunds it netted out. Booked by `ledger.gateway_payouts.record_gateway_payout` in the same
    transaction as its posting; one row per (gateway, settlement number), never changed."""

    __tablename__ = "ledger_gateway_payout"
    __table_args__ = (
        UniqueConstraint("gateway", "settlement_no"),  # the gateway's statement is booked once
        CheckConstraint("net_cents > 0", name="net_positive"),
        CheckConstraint("fee_cents >= 0 AND refunds_cents >= 0", name="fee_refunds_not_negative"),
        CheckConstraint("period_from <= period_to", name="period_ordered"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    gateway: Mapped[str] = mapped_column(String(32))
    settlement_no: Mapped[str] = mapped_column(String(64))  # the gateway's settlement id / statement reference
    period_from: Mapped[dt.date] = mapped_column(Date)  # shop days, both included
    period_to: Mapped[dt.date] = mapped_column(Date)
    currency: Mapped[str] = mapped_column(String(3))
    net_cents: Mapped[int] = mapped_column(BigInteger)  # paid into the bank
    fee_cents: Mapped[int] = mapped_column(BigInteger)  # kept by the gateway (手续费)
    # Refunds the gateway netted out of the period's takings: already booked out of clearing when each was paid,
    # so recorded for the statement's sake only.
    refunds_cents: Mapped[int] = mapped_column(BigInteger, default=0)
    note: Mapped[str] = mapped_column(String(500), default="")
    posting_id: Mapped[int] = mapped_column(ForeignKey("ledger_posting.id"))
    recorded_by: Mapped[str] = mapped_column(String(64))
    recorded_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)


class ImmutableLedgerRow(RuntimeError):
    """Raised when code tries to change or delete a written posting or entry."""


def _refuse_change(_mapper: object, _connection: object, target: object) -> None:
    raise ImmutableLedgerRow(f"{type(target).__name__} rows are immutable; post a reversing posting instead")


for _model in (LedgerPosting, LedgerEntry):
    event.listen(_model, "before_update", _refuse_change)
    event.listen(_model, "before_delete", _refuse_change)


class DeferredPosting(Base):
    """A confirmed payment whose postings (payment received, then what the order's new status means) wait for
    the ledger worker. Written in the payment's own transaction, so a committed payment always has either its
    postings or this row; the worker deletes the row in the transaction that writes the postings."""

    __tablename__ = "ledger_deferred_posting"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders_order.id"), index=True)
    payment_id: Mapped[int] = mapped_column(ForeignKey("payments_payment.id"))
    order_status: Mapped[str] = mapped_column(String(32))  # the order's status right after the payment
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
