"""Tables of supplier sync and the margin-floor price policy: who is pulling which supplier, each SKU's
policy, and the log of every automatic price or sale change."""

from __future__ import annotations

import datetime as dt
import enum

from sqlalchemy import BigInteger, Boolean, CheckConstraint, ForeignKey, Integer, String
from sqlalchemy import Enum as SAEnum
from sqlalchemy.orm import Mapped, mapped_column

from quanyi.db import Base, UTCDateTime, utcnow

__all__ = ["SupplierSyncState", "PricePolicy", "SkuPricePolicy", "PriceChangeAction", "SkuPriceChange"]


def _enum(kind: type[enum.Enum]) -> SAEnum:
    return SAEnum(kind, native_enum=False, length=32, values_callable=lambda e: [m.value for m in e])


class SupplierSyncState(Base):
    """Pull/push bookkeeping of one supplier. `claimed_until` is a puller's lease: a conditional UPDATE
    takes it, so several shop processes never pull the same supplier at once."""

    __tablename__ = "suppliers_sync_state"

    supplier_id: Mapped[int] = mapped_column(ForeignKey("suppliers_supplier.id"), primary_key=True)
    claimed_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    claim_token: Mapped[str | None] = mapped_column(String(32), nullable=True)
    last_pull_started_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_pull_ok_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_pull_failed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_pull_error: Mapped[str | None] = mapped_column(String(500), nullable=True)
    last_catalog_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_push_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)


class PricePolicy(enum.StrEnum):
    REPRICE = "reprice"  # raise the SKU price to keep the margin floor (调价)
    OFF_SALE = "off_sale"  # take the SKU off sale until the supplier cost falls back (下架)


class SkuPricePolicy(Base):
    """Margin floor (最低毛利) of one SKU against its cheapest usable supplier: price - cost must stay at least
    `margin_floor_cents` and at least `margin_floor_bps` of the price.

    `base_price_cents`/`auto_price_cents` remember the operator's price and the one the policy set, so the
    price comes back down when the cost falls, unless an operator has changed it since (then hands off).
    `off_sale_by_policy` marks a SKU this policy took off sale: only such a SKU is put back on sale."""

    __tablename__ = "suppliers_sku_pricing"
    __table_args__ = (
        CheckConstraint("margin_floor_cents >= 0", name="floor_cents_not_negative"),
        CheckConstraint("margin_floor_bps >= 0 AND margin_floor_bps < 10000", name="floor_bps_range"),
        CheckConstraint("markup_cents >= 0", name="markup_cents_not_negative"),
        CheckConstraint("markup_bps >= 0 AND markup_bps <= 100000", name="markup_bps_range"),
    )

    sku_id: Mapped[int] = mapped_column(ForeignKey("catalog_sku.id"), primary_key=True)
    policy: Mapped[PricePolicy] = mapped_column(_enum(PricePolicy))
    margin_floor_cents: Mapped[int] = mapped_column(BigInteger, default=0)
    margin_floor_bps: Mapped[int] = mapped_column(Integer, default=0)
    markup_cents: Mapped[int] = mapped_column(BigInteger, default=0)  # reprice: price = cost + markup (at least)
    markup_bps: Mapped[int] = mapped_column(Integer, default=0)
    max_price_cents: Mapped[int | None] = mapped_column(BigInteger, nullable=True)  # reprice never above; off sale
    base_price_cents: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    auto_price_cents: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    off_sale_by_policy: Mapped[bool] = mapped_column(Boolean, default=False)
    off_sale_reason: Mapped[str | None] = mapped_column(String(500), nullable=True)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class PriceChangeAction(enum.StrEnum):
    REPRICED = "repriced"
    PRICE_RESTORED = "price_restored"
    TAKEN_OFF_SALE = "taken_off_sale"
    BACK_ON_SALE = "back_on_sale"


class SkuPriceChange(Base):
    """Audit log of every change the price policy made on its own."""

    __tablename__ = "suppliers_price_change"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    sku_id: Mapped[int] = mapped_column(ForeignKey("catalog_sku.id"), index=True)
    action: Mapped[PriceChangeAction] = mapped_column(_enum(PriceChangeAction))
    old_price_cents: Mapped[int] = mapped_column(BigInteger)
    new_price_cents: Mapped[int] = mapped_column(BigInteger)
    supplier_cost_cents: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    supplier_product_id: Mapped[int | None] = mapped_column(ForeignKey("suppliers_product.id"), nullable=True)
    reason: Mapped[str] = mapped_column(String(500))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
