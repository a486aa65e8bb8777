"""Product mapping (商品映射): which supplier products can fill a platform SKU, in which order.

A SKU sold as card keys (卡密) can only be filled by supplier products that hand over codes, and a
direct-recharge (直充) SKU only by products that credit an account: a mismatch would deliver the wrong
kind of goods, so it is refused when the mapping is made.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from quanyi.catalog import service as catalog_service
from quanyi.catalog.models import DeliveryType, Sku
from quanyi.errors import Conflict, InvalidInput, NotFound
from quanyi.scope import PLATFORM, Scope
from quanyi.suppliers.adapter import ProductKind
from quanyi.suppliers.models import SkuSupplierMapping, Supplier, SupplierProduct, SupplierStatus
from quanyi.suppliers.pricing import apply_price_policies
from quanyi.suppliers.records import get_supplier_by_code
from quanyi.suppliers.schemas import MappingCreate, MappingRead, MappingUpdate, SupplierProductRead

__all__ = [
    "MappingNotFound", "MappingExists", "MappingKindMismatch", "MappingMerchantMismatch", "SupplierProductNotFound",
    "create_mapping", "update_mapping", "delete_mapping", "list_mappings", "list_supplier_mappings", "describe_product",
    "list_supplier_products",
    "get_supplier_product", "find_mapping_id",
]

# Which supplier product kind fills which SKU delivery type.
_KIND_FOR_DELIVERY = {DeliveryType.CARD_KEY: ProductKind.CARD_KEY,
                      DeliveryType.DIRECT_RECHARGE: ProductKind.DIRECT_RECHARGE}


class MappingNotFound(NotFound):
    code = "mapping_not_found"


class MappingExists(Conflict):
    code = "mapping_exists"


class MappingKindMismatch(InvalidInput):
    code = "mapping_kind_mismatch"


class MappingMerchantMismatch(InvalidInput):
    code = "mapping_merchant_mismatch"


class SupplierProductNotFound(NotFound):
    code = "supplier_product_not_found"


async def get_supplier_product(*, session: AsyncSession, supplier: Supplier, product_code: str) -> SupplierProduct:
    product = await session.scalar(select(SupplierProduct).where(
        SupplierProduct.supplier_id == supplier.id, SupplierProduct.product_code == product_code))
    if product is None:
        raise SupplierProductNotFound(
            f"supplier {supplier.code} has no product {product_code!r} (sync its catalog first)")
    return product


def _check_kind(sku: Sku, product: SupplierProduct, supplier: Supplier) -> None:
    wanted = _KIND_FOR_DELIVERY.get(sku.delivery_type)
    if wanted is None:
        raise MappingKindMismatch(f"SKU {sku.code} is delivered by hand ({sku.delivery_type.value}); "
                                  "suppliers cannot fill it", sku_delivery_type=sku.delivery_type.value)
    if product.kind is not wanted:
        raise MappingKindMismatch(
            f"SKU {sku.code} is {sku.delivery_type.value} but {supplier.code}/{product.product_code} is "
            f"{product.kind.value}", sku_delivery_type=sku.delivery_type.value, product_kind=product.kind.value)
    if product.currency != sku.currency:
        raise MappingKindMismatch(f"SKU {sku.code} is sold in {sku.currency} but the supplier product costs "
                                  f"{product.currency}", sku_currency=sku.currency, product_currency=product.currency)


async def create_mapping(*, session: AsyncSession, sku_id: int, data: MappingCreate,
                         scope: Scope = PLATFORM) -> SkuSupplierMapping:
    """Let a supplier product fill a SKU (lower priority number wins a cost tie). The SKU and the supplier account
    must be the same merchant's: a merchant's goods are bought with its own supplier accounts."""
    sku = await catalog_service.get_sku(session=session, sku_id=sku_id, scope=scope)
    supplier = await get_supplier_by_code(session=session, code=data.supplier_code, scope=scope)
    if supplier.merchant_id != sku.merchant_id:
        raise MappingMerchantMismatch(f"supplier {supplier.code} is another merchant's account than SKU {sku.code}'s",
                                  sku_merchant_id=sku.merchant_id, supplier_merchant_id=supplier.merchant_id)
    product = await get_supplier_product(session=session, supplier=supplier, product_code=data.product_code)
    _check_kind(sku, product, supplier)
    exists = await session.scalar(select(SkuSupplierMapping.id).where(
        SkuSupplierMapping.sku_id == sku.id, SkuSupplierMapping.supplier_product_id == product.id))
    if exists is not None:
        raise MappingExists(f"SKU {sku.code} is already mapped to {supplier.code}/{product.product_code}",
                            mapping_id=exists)
    mapping = SkuSupplierMapping(sku_id=sku.id, supplier_product_id=product.id, priority=data.priority,
                                 enabled=data.enabled)
    session.add(mapping)
    await session.flush()
    await apply_price_policies(session=session, sku_ids=[sku.id])
    return mapping


async def _get_mapping(session: AsyncSession, mapping_id: int, scope: Scope) -> SkuSupplierMapping:
    mapping = await session.scalar(select(SkuSupplierMapping).join(Sku, Sku.id == SkuSupplierMapping.sku_id)
                                   .where(SkuSupplierMapping.id == mapping_id, scope.where(Sku.merchant_id)))
    if mapping is None:
        raise MappingNotFound(f"mapping {mapping_id} does not exist")
    return mapping


async def update_mapping(*, session: AsyncSession, mapping_id: int, data: MappingUpdate,
                         scope: Scope = PLATFORM, supplier_code: str | None = None) -> SkuSupplierMapping:
    """Change a mapping's priority or enable/disable it (`supplier_code`: only if it maps that supplier's product,
    as the console's supplier page asks)."""
    mapping = await _get_mapping(session, mapping_id, scope)
    if supplier_code is not None:
        owner = await session.scalar(select(Supplier.code).join(SupplierProduct).where(
            SupplierProduct.id == mapping.supplier_product_id))
        if owner != supplier_code:
            raise MappingNotFound(f"mapping {mapping_id} does not exist")
    for field, value in data.model_dump(exclude_unset=True).items():
        if value is None:
            raise InvalidInput(f"{field} cannot be null")
        setattr(mapping, field, value)
    await session.flush()
    await apply_price_policies(session=session, sku_ids=[mapping.sku_id])
    return mapping


async def delete_mapping(*, session: AsyncSession, mapping_id: int, scope: Scope = PLATFORM) -> int:
    """Remove a mapping; returns its SKU id. Orders already routed keep their own records."""
    mapping = await _get_mapping(session, mapping_id, scope)
    sku_id = mapping.sku_id
    await session.delete(mapping)
    await session.flush()
    await apply_price_policies(session=session, sku_ids=[sku_id])
    return sku_id


async def find_mapping_id(*, session: AsyncSession, sku_id: int, supplier_code: str, product_code: str,
                          scope: Scope = PLATFORM) -> int:
    supplier = await get_supplier_by_code(session=session, code=supplier_code, scope=scope)
    product = await get_supplier_product(session=session, supplier=supplier, product_code=product_code)
    found = await session.scalar(select(SkuSupplierMapping.id).where(
        SkuSupplierMapping.sku_id == sku_id, SkuSupplierMapping.supplier_product_id == product.id))
    if found is None:
        raise MappingNotFound(f"SKU {sku_id} is not mapped to {supplier.code}/{product_code}")
    return found


def describe_product(product: SupplierProduct, supplier: Supplier,
                     mapped_skus: Sequence[int] = ()) -> SupplierProductRead:
    return SupplierProductRead(
        id=product.id, supplier_code=supplier.code, product_code=product.product_code, name=product.name,
        kind=product.kind, face_value_cents=product.face_value_cents, cost_cents=product.cost_cents,
        currency=product.currency, stock=product.stock, available=product.available,
        last_synced_at=product.last_synced_at, last_sync_source=product.last_sync_source,
        mapped_skus=list(mapped_skus),
    )


def _usable(mapping: SkuSupplierMapping, product: SupplierProduct, supplier: Supplier) -> bool:
    return (mapping.enabled and product.available and supplier.status is SupplierStatus.ACTIVE
            and (product.stock is None or product.stock > 0))


async def list_mappings(*, session: AsyncSession, sku_id: int, scope: Scope = PLATFORM) -> list[MappingRead]:
    """A SKU's supplier products, preferred first, with each one's cost, stock and last sync."""
    sku = await catalog_service.get_sku(session=session, sku_id=sku_id, scope=scope)
    rows = (await session.execute(
        select(SkuSupplierMapping, SupplierProduct, Supplier)
        .join(SupplierProduct, SupplierProduct.id == SkuSupplierMapping.supplier_product_id)
        .join(Supplier, Supplier.id == SupplierProduct.supplier_id)
        .where(SkuSupplierMapping.sku_id == sku.id)
        .order_by(SkuSupplierMapping.priority, SupplierProduct.cost_cents, SkuSupplierMapping.id)
    )).all()
    return [MappingRead(id=m.id, sku_id=sku.id, sku_code=sku.code, priority=m.priority, enabled=m.enabled,
                        supplier_code=s.code, supplier_status=s.status, product=describe_product(p, s),
                        usable=_usable(m, p, s)) for m, p, s in rows]


async def list_supplier_mappings(*, session: AsyncSession, code: str,
                                 scope: Scope = PLATFORM) -> list[MappingRead]:
    """Every SKU a supplier fills, by SKU then preference, with cost, stock, last sync and whether it is usable."""
    supplier = await get_supplier_by_code(session=session, code=code, scope=scope)
    rows = (await session.execute(
        select(SkuSupplierMapping, SupplierProduct, Sku)
        .join(SupplierProduct, SupplierProduct.id == SkuSupplierMapping.supplier_product_id)
        .join(Sku, Sku.id == SkuSupplierMapping.sku_id)
        .where(SupplierProduct.supplier_id == supplier.id, scope.where(Sku.merchant_id))
        .order_by(Sku.code, SkuSupplierMapping.priority, SkuSupplierMapping.id)
    )).all()
    return [MappingRead(id=m.id, sku_id=sku.id, sku_code=sku.code, priority=m.priority, enabled=m.enabled,
                        supplier_code=supplier.code, supplier_status=supplier.status,
                        product=describe_product(p, supplier), usable=_usable(m, p, supplier)) for m, p, sku in rows]


async def list_supplier_products(*, session: AsyncSession, code: str, unmapped_only: bool = False,
                                 scope: Scope = PLATFORM) -> list[SupplierProductRead]:
    """A supplier's synced catalog, with the SKUs each product is mapped to."""
    supplier = await get_supplier_by_code(session=session, code=code, scope=scope)
    products = (await session.scalars(select(SupplierProduct).where(SupplierProduct.supplier_id == supplier.id)
                                      .order_by(SupplierProduct.product_code))).all()
    mapped: dict[int, list[int]] = {}
    if products:
        for product_id, sku_id in (await session.execute(
                select(SkuSupplierMapping.supplier_product_id, SkuSupplierMapping.sku_id)
                .where(SkuSupplierMapping.supplier_product_id.in_([p.id for p in products])))).all():
            mapped.setdefault(product_id, []).append(sku_id)
    return [describe_product(p, supplier, mapped.get(p.id, [])) for p in products
            if not (unmapped_only and p.id in mapped)]
