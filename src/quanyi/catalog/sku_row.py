"""A SKU as a checkout reads it (下单读 SKU): one row of the SKU, its product, category and merchant, as plain
read-only objects with the attribute names of the ORM models (`sku.product.name`, `sku.product.category_id`,
`sku.product.merchant.status`), so the checkout's checks and snapshot (catalog.service.check_orderable,
orders.checkout), the member's read (orders.member_checkout), pricing (the member price, the coupons' scope by
SKU, product and category, points: pricing.service.price_order) take either.

No ORM object is built, loaded into the session or tracked: the checkout only reads these columns. The statement is
built once and runs on the driver on PostgreSQL (quanyi.db_direct). A guest's and a member's checkout (member
price, coupons, points) in one transaction both read it (orders.placing); a checkout screened by order-stage risk
rules first keeps the ORM `Sku` the screening read (catalog.service.get_sku).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from quanyi import db_direct
from quanyi.catalog.models import Category, DeliveryType, Product, Sku
from quanyi.merchants.models import Merchant

__all__ = ["SKU_ROW_SUBQUERY", "SkuRow", "read_sku_row", "sku_row_of"]


@dataclass(frozen=True, slots=True)
class CategoryRow:
    id: int
    is_active: bool


@dataclass(frozen=True, slots=True)
class MerchantRow:
    id: int
    status: str


@dataclass(frozen=True, slots=True)
class ProductRow:
    id: int
    merchant_id: int
    category_id: int
    name: str
    is_active: bool
    category: CategoryRow
    merchant: MerchantRow


@dataclass(frozen=True, slots=True)
class SkuRow:
    """The columns of a SKU a checkout uses, with its product (and the product's category and merchant)."""

    id: int
    product_id: int
    merchant_id: int
    code: str
    name: str
    face_value_cents: int
    price_cents: int
    currency: str
    delivery_type: DeliveryType
    min_quantity: int
    max_quantity: int
    on_sale: bool
    pick_surcharge_cents: int | None
    product: ProductRow

    @property
    def buyers_pick(self) -> bool:
        """As `Sku.buyers_pick`."""
        return self.pick_surcharge_cents is not None and self.delivery_type is DeliveryType.CARD_KEY


_SELECT = (
    select(Sku.id, Sku.product_id, Sku.merchant_id, Sku.code, Sku.name, Sku.face_value_cents, Sku.price_cents,
           Sku.currency, Sku.delivery_type, Sku.min_quantity, Sku.max_quantity, Sku.on_sale, Sku.pick_surcharge_cents,
           Product.merchant_id, Product.category_id, Product.name, Product.is_active, Category.is_active,
           Merchant.status)
    # Inner joins, as the ORM read's: a SKU always has its product (foreign key), a product its category and merchant.
    .join(Product, Product.id == Sku.product_id)
    .join(Category, Category.id == Product.category_id)
    .join(Merchant, Merchant.id == Product.merchant_id)
    .where(Sku.id == bindparam("b_sku_id")))
_SKU_ROW = db_direct.Direct(_SELECT)
# The same read as a subquery (bind parameter b_sku_id), to ride in another statement of the checkout's (risk.gate's
# count); `sku_row_of` reads its columns back.
SKU_ROW_SUBQUERY = _SELECT.subquery("sku_row")


async def read_sku_row(session: AsyncSession, sku_id: int) -> SkuRow | None:
    """The SKU with its product, category and merchant, or None when there is no such SKU."""
    row = await db_direct.fetch_one(session, _SKU_ROW, {"b_sku_id": sku_id})
    return None if row is None else sku_row_of(row)


def sku_row_of(row: Sequence[Any]) -> SkuRow:
    """The SKU of a row of `read_sku_row`'s columns (or `SKU_ROW_SUBQUERY`'s), in their order."""
    (sku_id, product_id, merchant_id, code, name, face_value, price, currency, delivery_type, min_quantity,
     max_quantity, on_sale, surcharge, product_merchant_id, category_id, product_name, product_active,
     category_active, merchant_status) = row
    product = ProductRow(id=product_id, merchant_id=product_merchant_id, category_id=category_id, name=product_name,
                         is_active=product_active, category=CategoryRow(id=category_id, is_active=category_active),
                         merchant=MerchantRow(id=product_merchant_id, status=merchant_status))
    return SkuRow(id=sku_id, product_id=product_id, merchant_id=merchant_id, code=code, name=name,
                  face_value_cents=face_value, price_cents=price, currency=currency, delivery_type=delivery_type,
                  min_quantity=min_quantity, max_quantity=max_quantity, on_sale=on_sale,
                  pick_surcharge_cents=surcharge, product=product)
