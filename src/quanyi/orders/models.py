"""Order tables: the order with its price snapshot, and its status history."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, ForeignKeyConstraint, Index, Integer, String
from sqlalchemy import Enum as SAEnum
from sqlalchemy.orm import Mapped, mapped_column

from quanyi.db import Base, UTCDateTime, index_where_set, utcnow
from quanyi.orders.state import OrderStatus
from quanyi.scope import owner_column

__all__ = ["Order", "OrderEvent"]

BigId = BigInteger().with_variant(Integer(), "sqlite")


class Order(Base):
    __tablename__ = "orders_order"
    __table_args__ = (
        CheckConstraint("quantity >= 1", name="quantity_positive"),
        # The payable is the price calculation's last step (quanyi/pricing): list total less every discount.
        CheckConstraint("total_cents = unit_price_cents * quantity - member_discount_cents - coupon_discount_cents"
                        " - points_discount_cents", name="total_matches"),
        CheckConstraint("member_discount_cents >= 0 AND coupon_discount_cents >= 0 AND points_discount_cents >= 0"
                        " AND points_used >= 0 AND total_cents >= 0", name="discounts_not_negative"),
        # Money handed back can never exceed what was paid (refunds of duplicate payments are not counted here).
        CheckConstraint("refunded_cents >= 0 AND refunded_cents <= total_cents", name="refunded_within_total"),
        # An order is its SKU's merchant's (商户订单); payments, refunds, fulfilment and risk rows follow the order.
        ForeignKeyConstraint(["sku_id", "merchant_id"], ["catalog_sku.id", "catalog_sku.merchant_id"]),
        Index("ix_orders_order_merchant_created", "merchant_id", "created_at"),
        # One index for the status queues (review, refunds due, manual delivery, the dashboard's counts) and the
        # expiry sweeper (pending_payment, expires_at <= now, oldest first): the status leads.
        Index("ix_orders_order_status_expires_at", "status", "expires_at"),
        # Guest orders (most of them, all of a flash sale's) have neither: no index entry (section 23).
        index_where_set("orders_order", "customer_account_id"),
        index_where_set("orders_order", "member_id"),
        # The console's search by contact and a new member's guest orders (orders.search, orders.member_orders):
        # 2 entries a purchase (insert, delivery); the sales reports' paid_at ranges (orders.reports): 1, set at
        # payment (docs/PERFORMANCE.md section 30).
        Index("ix_orders_order_contact", "contact"),
        index_where_set("orders_order", "paid_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    order_no: Mapped[str] = mapped_column(String(20), unique=True)
    status: Mapped[OrderStatus] = mapped_column(
        SAEnum(OrderStatus, native_enum=False, length=32, values_callable=lambda e: [m.value for m in e]),
    )
    sku_id: Mapped[int] = mapped_column(Integer, index=True)
    merchant_id: Mapped[int] = owner_column(index=False)
    # Snapshot of what was bought, at the price it was bought for.
    product_id: Mapped[int] = mapped_column(Integer)
    product_name: Mapped[str] = mapped_column(String(200))
    sku_name: Mapped[str] = mapped_column(String(200))
    sku_code: Mapped[str] = mapped_column(String(64))
    delivery_type: Mapped[str] = mapped_column(String(32))
    unit_price_cents: Mapped[int] = mapped_column(BigInteger)
    quantity: Mapped[int] = mapped_column(Integer)
    # The price breakdown (quanyi/pricing): unit_price_cents is the price source's (list or an account customer's
    # price list); total_cents is the payable = unit_price_cents x quantity - member - coupon - points discounts.
    price_source: Mapped[str] = mapped_column(String(16), default="list", server_default="list")
    member_discount_cents: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    coupon_discount_cents: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    points_used: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    points_discount_cents: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    total_cents: Mapped[int] = mapped_column(BigInteger)
    refunded_cents: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    currency: Mapped[str] = mapped_column(String(3))
    contact_kind: Mapped[str] = mapped_column(String(8))  # email | phone
    contact: Mapped[str] = mapped_column(String(254))
    query_password_hash: Mapped[str | None] = mapped_column(String(200), nullable=True)
    locale: Mapped[str] = mapped_column(String(8), default="zh-CN")
    created_ip: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    paid_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    delivered_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    cancelled_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    status_reason: Mapped[str | None] = mapped_column(String(500), nullable=True)
    # Direct recharge (直充) only: the phone number or account the supplier credits.
    recharge_account: Mapped[str | None] = mapped_column(String(128), nullable=True)
    # Ledger: the distributor (分销商) who brought this order; earns a commission on delivery when set.
    distributor_code: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # Placed by an account customer (a reseller through the open API, an enterprise) and paid from its prepaid
    # balance (ledger_customer_account): it is told by the account's callbacks, not by buyer e-mail or SMS.
    customer_account_id: Mapped[int | None] = mapped_column(
        ForeignKey("ledger_customer_account.id"), nullable=True)
    # The buyer's account (会员, members feature): set at checkout when they are logged in, or later when the member
    # proves this order's contact (a guest order attached to the account). None: a guest order.
    member_id: Mapped[int | None] = mapped_column(ForeignKey("members_member.id"), nullable=True)
    # 自选卡密: the card key the buyer picked (and paid the surcharge for); delivery hands over exactly this one.
    picked_card_key_id: Mapped[int | None] = mapped_column(BigId, nullable=True)


class OrderEvent(Base):
    """Every status change of an order, with why: the audit trail support reads first."""

    __tablename__ = "orders_order_event"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders_order.id"), index=True)
    from_status: Mapped[str | None] = mapped_column(String(32), nullable=True)
    to_status: Mapped[str] = mapped_column(String(32))
    reason: Mapped[str] = mapped_column(String(500))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
