"""Deleting catalog rows: only what nothing refers to (catalog/references.py: rows with a foreign key to the SKU,
and coupons that have not ended whose scope names the category, product or SKU); otherwise InUse says what does
and what to do instead (remove it, end the coupons, or take the goods off sale)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from quanyi.catalog import references, service
from quanyi.catalog.models import Product, Sku
from quanyi.db import utcnow
from quanyi.errors import Conflict
from quanyi.scope import PLATFORM, Scope

__all__ = ["InUse", "delete_sku", "delete_product", "delete_category"]


class InUse(Conflict):
    code = "in_use"


async def _refuse_if_referenced(session: AsyncSession, sku: Sku, *, subject: str = "",
                                instead: str = references.SKU_INSTEAD) -> None:
    """InUse naming what still refers to the SKU (and what to do), before the database's foreign keys would;
    coupons that have not ended and name the SKU in their scope count too."""
    found = await references.references_to_sku(session, sku.id)
    coupons = await references.coupons_naming(session, [("sku", sku.id)], utcnow())
    if coupons is not None:
        found.append(coupons)
    if found:
        message = references.describe_references(sku.code, sku.id, found, subject=subject, instead=instead)
        raise InUse(message, sku_code=sku.code,
                    references=[{"kind": ref.kind, "count": ref.count, "removable": ref.removable}
                                for ref in found], **_named_coupons(coupons))


def _named_coupons(coupons: references.Reference | None) -> dict[str, list[str]]:
    return {"coupons": list(coupons.names)} if coupons is not None else {}


async def delete_sku(*, session: AsyncSession, sku_id: int, scope: Scope = PLATFORM) -> None:
    """Delete a SKU nothing refers to; otherwise InUse says what does (remove that, or take it off sale)."""
    sku = await service.get_sku(session=session, sku_id=sku_id, scope=scope)
    await _refuse_if_referenced(session, sku)
    await session.delete(sku)
    await session.flush()


async def delete_product(*, session: AsyncSession, product_id: int, scope: Scope = PLATFORM) -> None:
    """Delete a product whose SKUs nothing refers to, in no running coupon's scope; otherwise InUse says what
    does (or deactivate it)."""
    product = await service.get_product(session=session, product_id=product_id, active_only=False, scope=scope)
    for sku in product.skus:
        await _refuse_if_referenced(session, sku, subject=f"product {product.slug}",
                                    instead=references.PRODUCT_INSTEAD)
    coupons = await references.coupons_naming(session, [("product", product.id)], utcnow())
    if coupons is not None:
        raise InUse(references.describe_coupons(f"product {product.slug}", coupons,
                                                instead=references.PRODUCT_INSTEAD), **_named_coupons(coupons))
    for sku in list(product.skus):
        await session.delete(sku)
    await session.delete(product)
    await session.flush()


async def delete_category(*, session: AsyncSession, category_id: int) -> None:
    """Delete an empty category in no running coupon's scope."""
    category = await service.get_category(session=session, category_id=category_id)
    if await session.scalar(select(Product.id).where(Product.category_id == category.id).limit(1)) is not None:
        raise InUse(f"category {category.slug} still has products; move or delete them first")
    coupons = await references.coupons_naming(session, [("category", category.id)], utcnow())
    if coupons is not None:
        raise InUse(references.describe_coupons(f"category {category.slug}", coupons,
                                                instead=references.CATEGORY_INSTEAD), **_named_coupons(coupons))
    await session.delete(category)
    await session.flush()
