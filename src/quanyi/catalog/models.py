"""Catalog tables: categories, products (with redemption guide), SKUs (what is actually sold)."""

from __future__ import annotations

import datetime as dt
import enum

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    ForeignKey,
    ForeignKeyConstraint,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy import Enum as SAEnum
from sqlalchemy.orm import Mapped, mapped_column, relationship

from quanyi.db import Base, UTCDateTime, utcnow
from quanyi.merchants.models import Merchant
from quanyi.scope import owner_column

__all__ = ["Category", "Product", "Sku", "DeliveryType"]


class DeliveryType(enum.StrEnum):
    """How a paid SKU reaches the buyer."""

    CARD_KEY = "card_key"  # 卡密: a stored code is handed over instantly
    DIRECT_RECHARGE = "direct_recharge"  # 直充: a supplier credits the buyer's account (needs suppliers)
    MANUAL = "manual"  # fulfilled by the operator by hand
    SHARED_CODE = "shared_code"  # 循环卡密: one code sold to many buyers, up to its sale limit


# Catalog ids are never handed out twice (AUTOINCREMENT on SQLite; PostgreSQL sequences never go back): coupon
# targets and order snapshots name catalog ids without a foreign key, and must never come to mean a newer row.
NEVER_REUSE_IDS = {"sqlite_autoincrement": True}


class Category(Base):
    __tablename__ = "catalog_category"
    __table_args__ = NEVER_REUSE_IDS

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    slug: Mapped[str] = mapped_column(String(80), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    sort_order: Mapped[int] = mapped_column(Integer, default=0)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    products: Mapped[list[Product]] = relationship(back_populates="category")


class Product(Base):
    """A product of one merchant (商户商品); categories are the platform's, shared by every merchant."""

    __tablename__ = "catalog_product"
    # Target of the SKUs' (product_id, merchant_id) foreign key: a SKU always belongs to its product's merchant.
    __table_args__ = (UniqueConstraint("id", "merchant_id"), NEVER_REUSE_IDS)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    merchant_id: Mapped[int] = owner_column()
    category_id: Mapped[int] = mapped_column(ForeignKey("catalog_category.id"), index=True)
    slug: Mapped[str] = mapped_column(String(80), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    # 兑换说明: Markdown, rendered safely on the product and order pages.
    redemption_guide: Mapped[str] = mapped_column(Text, default="")
    cover_image_url: Mapped[str | None] = mapped_column(String(500), nullable=True)
    sort_order: Mapped[int] = mapped_column(Integer, default=0)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    category: Mapped[Category] = relationship(back_populates="products")
    # Always joined (a tiny table): whether its merchant sells (not suspended) is part of "can this be bought",
    # and the storefront names the shop; no extra round trip on the checkout path.
    merchant: Mapped[Merchant] = relationship(lazy="joined", innerjoin=True)
    # Joined on the product id alone (not the composite key), so a SKU finds its product in the identity map.
    skus: Mapped[list[Sku]] = relationship(back_populates="product", order_by="Sku.sort_order, Sku.id",
                                           primaryjoin="Product.id == foreign(Sku.product_id)")


class Sku(Base):
    __tablename__ = "catalog_sku"
    __table_args__ = (
        CheckConstraint("price_cents >= 0", name="price_not_negative"),
        CheckConstraint("face_value_cents >= 0", name="face_value_not_negative"),
        CheckConstraint("min_quantity >= 1 AND max_quantity >= min_quantity", name="quantity_bounds"),
        CheckConstraint("pick_surcharge_cents IS NULL OR pick_surcharge_cents >= 0",
                        name="pick_surcharge_not_negative"),
        # The SKU's merchant is its product's (the database refuses anything else); card keys, batches and
        # orders point at (sku id, merchant id) in turn, so goods of two merchants can never mix.
        ForeignKeyConstraint(["product_id", "merchant_id"], ["catalog_product.id", "catalog_product.merchant_id"]),
        UniqueConstraint("id", "merchant_id"),
        NEVER_REUSE_IDS,
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    product_id: Mapped[int] = mapped_column(Integer, index=True)
    merchant_id: Mapped[int] = owner_column()
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    face_value_cents: Mapped[int] = mapped_column(BigInteger, default=0)
    price_cents: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3), default="CNY")
    delivery_type: Mapped[DeliveryType] = mapped_column(
        SAEnum(DeliveryType, native_enum=False, length=32, values_callable=lambda e: [m.value for m in e])
    )
    min_quantity: Mapped[int] = mapped_column(Integer, default=1)
    max_quantity: Mapped[int] = mapped_column(Integer, default=10)
    on_sale: Mapped[bool] = mapped_column(Boolean, default=True)
    sort_order: Mapped[int] = mapped_column(Integer, default=0)
    # 自选卡密: set (even 0) = buyers may pick one specific card key from the list of labelled keys (the label the
    # operator gave, never the code) for this much more per unit; None = keys are handed out in stock order only.
    pick_surcharge_cents: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    @property
    def buyers_pick(self) -> bool:
        """A 自选卡密 SKU: buyers may choose which card key they get."""
        return self.pick_surcharge_cents is not None and self.delivery_type is DeliveryType.CARD_KEY

    product: Mapped[Product] = relationship(back_populates="skus", primaryjoin="foreign(Sku.product_id) == Product.id")
